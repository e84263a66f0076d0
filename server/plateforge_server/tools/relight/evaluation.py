"""Scoring relight and look transfer from K keyframe pairs against exact ground truth.

The shot is :func:`plateforge.shots.relit.make_relit_shot`: per frame the plate (with normal and
position AOVs), the same frame relit (a key light added, a practical switched on: local changes
no global colour transform can make) and graded (the look). For each K in :data:`KEYS`, the K
keyframes are spread evenly over the shot (the middle of K equal spans) and every method sees
only those K before -> after pairs; it is scored on every *other* frame:

* ``classical``: relight-classical's 3x4 affine fit (:func:`~plateforge_server.tools.relight.classical.fit_transform`);
* ``classical_lut``: the same refined by its 3D LUT (``method = "affine+lut"``, the defaults);
* ``learned``: a ``pairs`` net (CopyCat-style, the small UNet residual on the plate) trained on
  the K pairs, plate R, G, B -> target, run as the served model runs it (tiled, encoded);
* ``learned_aov``: the same with the plate's AOVs as extra net inputs (``input_channels``).

Figures, lower-case and JSON-ready (:data:`METRICS` says the same in words, for the bench's
settings): ``psnr`` (dB, scene-linear, peak 1, mean over the scored frames), ``psnr_tonemapped``
(dB, peak 1, on both images tonemapped per channel by ``x / (1 + x)`` after clipping negatives to
0: a display-range view of the HDR frames) and ``delta_e2000`` (mean CIEDE2000 over their pixels,
:mod:`.colour`), and for the learned methods ``train_seconds`` and ``train_steps``.
``unchanged`` (the plate itself against the target, on the same frames) is the floor every method
must clear.

**Why two PSNRs.** The relit truth is HDR: the practical's fixture glows at 6-10 and the key light
lifts plate highlights of 3-4 to 13 and more. Scene-linear PSNR (peak 1) is then decided by the
1-4 % of pixels above 1.5 (they hold about 80 % of the squared error of every method), so it
mostly measures the highlights; the tonemapped PSNR weighs shadows, midtones and highlights
alike (a highlight still counts, compressed, unlike a clip to [0, 1]). Both are reported for
every method, computed the same way.

Per method, besides the means: ``psnr_frames`` (the scene-linear PSNR of every scored frame, in
order) and ``warp_error`` (temporal stability: over consecutive scored frames, the mean
``|(r1 - W r0) - (t1 - W t0)|`` of the tonemapped R, G, B, ``W`` the exact camera motion between
them, :func:`plateforge_server.tools.matte.evaluation.warp_error`); each learned method also gets
``margin_worst_frame``: its lowest per-frame PSNR margin (dB) over the better classical method
(``classical`` or ``classical_lut``, by mean PSNR) on the same frame, negative when some frame is
below it.

Training runs through :func:`plateforge_server.training.train` on EXR files and a licence
manifest, exactly the K key pairs a user would give: the trainer holds the last one back to
choose the checkpoint (model selection, the classical transform being step 0) and trains on the
others. The training settings are the tool's defaults, those ``plateforge train --tool relight``
(or ``look``) gives a user (:data:`plateforge_server.training.defaults.TOOL_DEFAULTS` says why
each value); the trained model is loaded and run as the server serves it
(:func:`plateforge_server.tools.learned.tool_module_for`).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from plateforge.exr import write_exr
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr
from plateforge.models import ParamValue
from plateforge.shots.relit import AOV_CHANNELS, RelitShot, make_relit_shot
from plateforge_server.device import pick_device
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.inference.tiling import run_on_frame_arrays
from plateforge_server.nets.unet import UNet
from plateforge_server.tools.learned import tool_module_for
from plateforge_server.tools.matte.evaluation import warp_error
from plateforge_server.tools.relight.classical import fit_transform
from plateforge_server.tools.relight.colour import delta_e2000_image
from plateforge_server.training import TrainConfig, train

__all__ = [
    "KEYS",
    "METRICS",
    "RelightScene",
    "Target",
    "bench_look",
    "bench_pairs_shot",
    "bench_relight",
    "key_indices",
    "score",
    "tonemap",
]

#: The keyframe counts measured.
KEYS = (1, 2, 4, 8)
#: What the figures are, in words (bench/quality.py puts this in its settings).
METRICS = {
    "psnr": "dB, scene-linear R, G, B, peak 1.0, no clipping; mean over the non-key frames",
    "psnr_tonemapped": "dB, peak 1.0, on max(x, 0) / (1 + max(x, 0)) per channel; mean over the non-key frames",
    "delta_e2000": "CIEDE2000, scene-linear Rec.709 to CIELAB with 1.0 as white (L* > 100 above); mean over pixels",
}
RGB = ("R", "G", "B")
Target = Literal["relit", "look"]


def key_indices(frames: int, keys: int) -> list[int]:
    """``keys`` frame indices spread evenly over ``frames``: the middle of ``keys`` equal spans."""
    if not 1 <= keys < frames:
        raise ValueError(f"need 1 <= keys < frames to leave frames to score; got {keys} keys of {frames} frames")
    return sorted({int((j + 0.5) * frames / keys) for j in range(keys)})


def tonemap(rgb: np.ndarray) -> np.ndarray:
    """Scene-linear to a display range: ``x / (1 + x)`` per channel on ``max(x, 0)``; float64 in [0, 1)."""
    x = np.maximum(np.asarray(rgb, np.float64), 0.0)
    mapped: np.ndarray = x / (1.0 + x)
    return mapped


def _mean_psnr(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    finite = [p for p in (psnr(r, t) for r, t in pairs) if math.isfinite(p)]
    return round(float(np.mean(finite)) if finite else math.inf, 4)


def score(results: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict[str, Any]:
    """Mean PSNR (scene-linear and tonemapped), mean CIEDE2000 and the per-frame PSNRs of
    ``results`` against ``truths`` (see :data:`METRICS`)."""
    pairs = list(zip(results, truths, strict=True))
    return {
        "psnr_frames": [round(float(psnr(r, t)), 4) for r, t in pairs],
        "psnr": _mean_psnr(pairs),
        "psnr_tonemapped": _mean_psnr([(tonemap(r), tonemap(t)) for r, t in pairs]),
        "delta_e2000": round(
            float(np.mean([delta_e2000_image(r, t) for r, t in zip(results, truths, strict=True)])), 4
        ),
    }


@dataclass
class RelightScene:
    """One shot and one target (``"relit"`` or ``"look"``), as arrays, ready to fit and score."""

    shot: RelitShot
    target: Target

    def __post_init__(self) -> None:
        self.plates = [f.stack(RGB) for f in self.shot.plates]
        targets = self.shot.relits if self.target == "relit" else self.shot.looks
        self.truths = [f.stack(RGB) for f in targets]

    def others(self, keys: Sequence[int]) -> list[int]:
        return [i for i in range(len(self.plates)) if i not in keys]

    def figures(self, keys: Sequence[int], results: Sequence[np.ndarray]) -> dict[str, Any]:
        """:func:`score` and ``warp_error`` of ``results`` (one per non-key frame, in order); no
        ``warp_error`` for a shot whose camera motion is not known exactly (a rendered shot)."""
        others = self.others(keys)
        truths = [self.truths[i] for i in others]
        figures = score(results, truths)
        if len(self.shot.cameras) == len(self.plates):
            figures["warp_error"] = self.warp_error(others, results)
        return figures

    def warp_error(self, frames: Sequence[int], results: Sequence[np.ndarray]) -> float:
        """Mean warp error (tonemapped R, G, B; see the module doc) over consecutive ``frames``."""
        at = dict(zip(frames, results, strict=True))
        values = []
        for a in frames:
            if a + 1 not in at:
                continue
            to_a = np.linalg.inv(np.vstack([self.shot.cameras[a], [0.0, 0.0, 1.0]]))
            flow = (to_a @ np.vstack([self.shot.cameras[a + 1], [0.0, 0.0, 1.0]]))[:2]
            r0, r1, t0, t1 = (tonemap(x) for x in (at[a], at[a + 1], self.truths[a], self.truths[a + 1]))
            values.append(
                np.mean([warp_error([r0[..., c], r1[..., c]], [t0[..., c], t1[..., c]], [flow]) for c in range(3)])
            )
        return round(float(np.mean(values)), 6) if values else 0.0

    def unchanged(self, keys: Sequence[int]) -> dict[str, Any]:
        return self.figures(keys, [self.plates[i] for i in self.others(keys)])

    def classical(self, keys: Sequence[int], *, lut: bool = False) -> dict[str, Any]:
        transform = fit_transform(
            [self.plates[k] for k in keys], [self.truths[k] for k in keys], lut_size=17 if lut else None
        )
        return self.figures(keys, [transform.apply(self.plates[i]) for i in self.others(keys)])

    def learned(self, net: UNet, keys: Sequence[int], channels: Sequence[str], *, device: str) -> dict[str, Any]:
        """A trained pairs net on the non-key frames, fed as the served model feeds it."""
        net.to(device).eval()
        results = [
            run_on_frame_arrays(net, self.shot.plates[i].stack(tuple(channels)), tile=512, device=device)
            for i in self.others(keys)
        ]
        return self.figures(keys, results)

    def write_keys(self, folder: Path, keys: Sequence[int]) -> Path:
        """The K key pairs as EXRs (plates with their AOVs; targets) and a licence manifest; its path."""
        folder.mkdir(parents=True, exist_ok=True)
        targets = self.shot.relits if self.target == "relit" else self.shot.looks
        for k in keys:
            number = self.shot.first_frame + k
            write_exr(folder / f"plate.{number}.exr", self.shot.plates[k])
            write_exr(folder / f"{self.target}.{number}.exr", targets[k])
        roles = (("input", "plate.*.exr"), ("target", f"{self.target}.*.exr"))
        sources = [Source(glob, "CC0-1.0", "plateforge bench", ("train", "evaluate"), role) for role, glob in roles]
        manifest = write_manifest(folder / "dataset.toml", name=f"{self.target}-keys", sources=sources)
        return manifest


def _config(args: argparse.Namespace, tool: str, channels: Sequence[str]) -> TrainConfig:
    """What ``plateforge train --tool TOOL --steps N`` gives (``--param input_channels=...`` for AOVs).
    ``channels`` decide the net's inputs whatever the bench's ``--param`` says: an
    ``input_channels`` given there would otherwise turn the RGB-only run into a second AOV run."""
    params: dict[str, ParamValue] = {**(getattr(args, "params", None) or {})}
    params.pop("input_channels", None)
    if tuple(channels) != RGB:
        params["input_channels"] = ",".join(channels)
    return bench_config(tool, steps=int(args.steps), device=str(args.device), params=params)


def _train(
    args: argparse.Namespace, scene: RelightScene, keys: Sequence[int], channels: Sequence[str], folder: Path
) -> dict[str, float]:
    tool = "relight" if scene.target == "relit" else "look"
    config = _config(args, tool, channels)
    manifest = scene.write_keys(folder / "keys", keys)
    started = time.monotonic()
    result = train(config, manifest_path=manifest, out_dir=folder / "run", resume=False)
    seconds = time.monotonic() - started
    device = pick_device(args.device)
    state = tool_module_for(result.model_dir).load(device=device)
    figures = scene.learned(state.net, keys, channels, device=device)
    selection = {k: state.card.metrics.get(k) for k in ("selected_step", "selected_val_psnr", "classical_val_psnr")}
    return {**figures, **selection, "train_seconds": round(seconds, 1), "train_steps": args.steps}


def _bench(args: argparse.Namespace, seed: int, work_dir: Path, target: Target) -> dict[str, Any]:
    shot = make_relit_shot(width=args.width, height=args.height, frames=args.frames, seed=seed)
    return bench_pairs_shot(shot, target, args=args, work_dir=work_dir)


def bench_pairs_shot(shot: RelitShot, target: Target, *, args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """The figures of :func:`bench_relight` (``target`` ``"relit"``) or :func:`bench_look` (``"look"``)
    on a shot already made: an analytic one, or a rendered Cycles shot's ``.relit()``."""
    keys: Sequence[int] = getattr(args, "keys", None) or KEYS
    scene = RelightScene(shot, target)
    work = Path(work_dir)
    report: dict[str, Any] = {}
    for k in keys:
        if k >= len(shot):
            continue
        chosen = key_indices(len(shot), k)
        entry: dict[str, Any] = {
            "unchanged": scene.unchanged(chosen),
            "classical": scene.classical(chosen),
            "classical_lut": scene.classical(chosen, lut=True),
        }
        entry["learned"] = _train(args, scene, chosen, RGB, work / f"{target}-k{k}")
        entry["learned_aov"] = _train(args, scene, chosen, (*RGB, *AOV_CHANNELS), work / f"{target}-k{k}-aov")
        best = max(("classical", "classical_lut"), key=lambda name: float(entry[name]["psnr"]))
        for method in ("learned", "learned_aov"):
            margins = np.subtract(entry[method]["psnr_frames"], entry[best]["psnr_frames"])
            entry[method]["margin_worst_frame"] = round(float(margins.min()), 4)
        entry["key_frames"] = [shot.first_frame + i for i in chosen]
        report[f"k{k}"] = entry
    return report


def bench_relight(*, args: argparse.Namespace, seed: int, work_dir: Path) -> dict[str, Any]:
    """The relight figures of shot ``seed`` for every K in :data:`KEYS` (see the module doc).

    ``args`` carries what bench/quality.py parses: width, height, frames, steps, batch, crop, lr,
    size, device."""
    return _bench(args, seed, Path(work_dir), "relit")


def bench_look(*, args: argparse.Namespace, seed: int, work_dir: Path) -> dict[str, Any]:
    """The look (grade) figures of shot ``seed`` for every K in :data:`KEYS`; as :func:`bench_relight`."""
    return _bench(args, seed, Path(work_dir), "look")
