"""Scoring relight and look transfer from K keyframe pairs against exact ground truth.

The shot is :func:`plateforge.relit.make_relit_shot`: per frame the plate (with normal and
position AOVs), the same frame relit (a key light added, a practical switched on: local changes
no global colour transform can make) and graded (the look). For each K in :data:`KEYS`, the K
keyframes are spread evenly over the shot (the middle of K equal spans) and every method sees
only those K before -> after pairs; it is scored on every *other* frame:

* ``classical``: relight-classical's 3x4 affine fit (:func:`~plateforge.server.tools.relight_classical.fit_transform`);
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

Training runs through :func:`plateforge.server.training.train` on EXR files and a licence
manifest, like any job. The trainer holds the last pair of a manifest out for validation; so that
all K keys are trained on, the manifest also lists a copy of the last key pair under a later frame
number, which becomes the validation frame (a smoke check of a training frame, not an unseen
one; the score that matters is the one here, on the non-key frames). The training settings are
the tool's defaults, those ``plateforge train --tool relight`` (or ``look``) gives a user
(:data:`plateforge.server.training.defaults.TOOL_DEFAULTS` says why each value).
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
from plateforge.frames import Frame
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr
from plateforge.models import ParamValue
from plateforge.relit import AOV_CHANNELS, RelitShot, make_relit_shot
from plateforge.server.device import pick_device
from plateforge.server.evaluation.colour import delta_e2000_image
from plateforge.server.evaluation.runs import bench_config
from plateforge.server.inference.tiling import run_on_frame_arrays
from plateforge.server.modelcard import load_weights
from plateforge.server.nets.unet import UNet
from plateforge.server.tools.relight_classical import fit_transform
from plateforge.server.training import TrainConfig, net_config_for, train

__all__ = [
    "KEYS",
    "METRICS",
    "RelightScene",
    "bench_look",
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


def score(results: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean PSNR (scene-linear and tonemapped) and mean CIEDE2000 of ``results`` against ``truths``
    (see :data:`METRICS`)."""
    pairs = list(zip(results, truths, strict=True))
    return {
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

    def unchanged(self, keys: Sequence[int]) -> dict[str, float]:
        others = self.others(keys)
        return score([self.plates[i] for i in others], [self.truths[i] for i in others])

    def classical(self, keys: Sequence[int], *, lut: bool = False) -> dict[str, float]:
        transform = fit_transform(
            [self.plates[k] for k in keys], [self.truths[k] for k in keys], lut_size=17 if lut else None
        )
        others = self.others(keys)
        return score([transform.apply(self.plates[i]) for i in others], [self.truths[i] for i in others])

    def learned(self, net: UNet, keys: Sequence[int], channels: Sequence[str], *, device: str) -> dict[str, float]:
        """A trained pairs net on the non-key frames, fed as the served model feeds it."""
        net.to(device).eval()
        others = self.others(keys)
        results = [
            run_on_frame_arrays(net, self.shot.plates[i].stack(tuple(channels)), tile=512, device=device)
            for i in others
        ]
        return score(results, [self.truths[i] for i in others])

    def write_keys(self, folder: Path, keys: Sequence[int]) -> Path:
        """The K key pairs as EXRs (plates with their AOVs; targets) and a licence manifest; its path."""
        folder.mkdir(parents=True, exist_ok=True)
        targets = self.shot.relits if self.target == "relit" else self.shot.looks
        numbers = [self.shot.first_frame + k for k in keys]
        copies: list[tuple[int, Frame, Frame]] = [
            (n, self.shot.plates[k], targets[k]) for n, k in zip(numbers, keys, strict=True)
        ]
        # The validation copy of the last key (see the module doc).
        copies.append((numbers[-1] + 1000, self.shot.plates[keys[-1]], targets[keys[-1]]))
        for number, plate, target in copies:
            write_exr(folder / f"plate.{number}.exr", plate.replace(frame_number=number))
            write_exr(folder / f"{self.target}.{number}.exr", target.replace(frame_number=number))
        roles = (("input", "plate.*.exr"), ("target", f"{self.target}.*.exr"))
        sources = [Source(glob, "CC0-1.0", "plateforge bench", ("train", "evaluate"), role) for role, glob in roles]
        manifest = write_manifest(folder / "dataset.toml", name=f"{self.target}-keys", sources=sources)
        return manifest


def _config(args: argparse.Namespace, tool: str, channels: Sequence[str]) -> TrainConfig:
    """What ``plateforge train --tool TOOL --steps N`` gives (``--param input_channels=...`` for AOVs)."""
    params: dict[str, ParamValue] = {**(getattr(args, "params", None) or {})}
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
    net = UNet(net_config_for(config))
    net.load_state_dict(load_weights(result.model_dir))
    figures = scene.learned(net, keys, channels, device=pick_device(args.device))
    return {**figures, "train_seconds": round(seconds, 1), "train_steps": args.steps}


def _bench(args: argparse.Namespace, seed: int, work_dir: Path, target: Target) -> dict[str, Any]:
    keys: Sequence[int] = getattr(args, "keys", None) or KEYS
    shot = make_relit_shot(width=args.width, height=args.height, frames=args.frames, seed=seed)
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
