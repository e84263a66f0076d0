"""Scoring paint-out methods on a synthetic shot with exact ground truth.

:class:`CleanupScene` takes a :class:`~plateforge.shots.synthetic.Shot` and does the expensive shared
work once: per frame, the classical alignment and fill from the two neighbours each side (what
cleanup-classical and the learned cleanup both start from, see
:mod:`plateforge_server.tools.cleanup.guide`), the spatial-only fill (OpenCV Telea, no neighbours), and
the optical flow between consecutive *clean* frames that the temporal metric warps by. Then:

* :meth:`CleanupScene.classical`, :meth:`CleanupScene.median` and :meth:`CleanupScene.spatial` are
  the baselines' frames: cleanup-classical as served (completed-flow propagation, the global
  transform where the flow agrees, then Telea), the aligned temporal median (global transform
  only, then Telea: the classical tool before flow propagation) and OpenCV Telea alone;
* :attr:`CleanupScene.fractions` says how much of the masks (all frames pooled) each stage of the
  classical fill filled: ``flow`` (moved along completed flow), ``homography`` (placed by the
  global transform) and ``spatial`` (inpainted);
* :meth:`CleanupScene.learned` runs a trained net (a ``guided-unet``) exactly as the served
  model does: guide planes in, tiled inference, the result composited with the soft mask;
* :meth:`CleanupScene.score` gives the figures of a method's frames, lower-case and JSON-ready:
  ``psnr`` and ``ssim`` inside the mask (weighted by it), ``psnr_shown`` and ``psnr_unseen``
  inside the mask over the pixels some neighbouring frame shows and those none does (where the
  classical fill is spatial inpainting: nearly all of its error), each pooled over the shot,
  ``psnr_frame`` and ``ssim_frame`` over the whole frame, and ``warp_error``.

``warp_error`` is temporal stability: for each pair of consecutive frames, the mean absolute
difference inside the mask between a frame and the previous one warped onto it (Farneback flow
computed on the *clean* plates, so every method is warped by the same exact-content motion),
minus the same figure for the clean plates themselves (what warping alone costs). Flicker a
method adds shows as a larger number; 0 is as stable as the truth.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from plateforge.frames import Frame
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr, ssim
from plateforge.shots.synthetic import Shot, make_shot, write_shot
from plateforge_server.device import pick_device
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.inference.tiling import run_on_frame_arrays
from plateforge_server.modelcard import load_weights
from plateforge_server.nets.unet import UNet
from plateforge_server.tools.cleanup import classical as cleanup_classical
from plateforge_server.tools.cleanup.guide import SHOWN_CHANNEL, guide_planes
from plateforge_server.tools.relight.colour import display_psnr

__all__ = ["TEMPORAL_RADIUS", "CleanupScene"]

RGB = ("R", "G", "B")
#: Neighbours each side the classical fill uses (cleanup-classical's default).
TEMPORAL_RADIUS = 2


@dataclass(frozen=True)
class _Frame:
    plate: Frame
    rgb: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    planes: np.ndarray  # guide planes for the learned net
    classical: np.ndarray  # the classical fill (not yet composited)
    median: np.ndarray  # the aligned temporal median (global transform only), then Telea
    spatial: np.ndarray  # the spatial-only fill


class CleanupScene:
    """One shot, prepared for scoring (see the module doc)."""

    def __init__(self, shot: Shot) -> None:
        self.shot = shot
        plates = [p.stack(RGB) for p in shot.plates]
        masks = [cleanup_classical.mask_array(m) for m in shot.masks]
        self.frames: list[_Frame] = []
        stages: list[np.ndarray] = []
        count = len(plates)
        for k in range(count):
            near = sorted(
                (j for j in range(count) if j != k and abs(j - k) <= TEMPORAL_RADIUS), key=lambda j: (abs(j - k), j)
            )
            neighbours = [(plates[j], masks[j]) for j in near]
            matrices = cleanup_classical.align_neighbours(plates[k], masks[k], neighbours)
            fill = cleanup_classical.fill_plate(plates[k], masks[k], neighbours, matrices)
            median = cleanup_classical.fill_plate(plates[k], masks[k], neighbours, matrices, flow=False)
            stages.append(fill.stage if fill.stage is not None else np.zeros(masks[k].shape, np.uint8))
            spatial = cleanup_classical.fill_plate(plates[k], masks[k], [], [])
            self.frames.append(
                _Frame(
                    plate=shot.plates[k],
                    rgb=plates[k],
                    mask=masks[k],
                    truth=shot.cleans[k].stack(RGB),
                    planes=guide_planes(plates[k], masks[k], fill.rgb, fill.shown),
                    classical=fill.rgb,
                    median=median.rgb,
                    spatial=spatial.rgb,
                )
            )
        pooled = np.stack(stages)
        total = max(int((pooled > 0).sum()), 1)
        #: Share of the masked pixels (all frames) each classical stage filled, by stage name.
        self.fractions = {
            name: int((pooled == code).sum()) / total for code, name in cleanup_classical.STAGE_NAMES.items()
        }
        self.flows = [_flow(a.truth, b.truth) for a, b in itertools.pairwise(self.frames)]
        self.truth_warp = [
            _warp_difference(b.truth, a.truth, flow, b.mask)
            for a, b, flow in zip(self.frames[:-1], self.frames[1:], self.flows, strict=True)
        ]

    def _composite(self, k: int, fill: np.ndarray) -> np.ndarray:
        frame = self.frames[k]
        return cleanup_classical.composite(frame.plate, frame.mask, fill).stack(RGB)

    def classical(self) -> list[np.ndarray]:
        """cleanup-classical's frames: neighbours along completed flow and the global transform, then Telea."""
        return [self._composite(k, f.classical) for k, f in enumerate(self.frames)]

    def median(self) -> list[np.ndarray]:
        """The aligned temporal median: neighbours placed by the global transform only, then Telea, composited."""
        return [self._composite(k, f.median) for k, f in enumerate(self.frames)]

    def spatial(self) -> list[np.ndarray]:
        """OpenCV Telea alone (no neighbouring frames), composited: the single-frame baseline."""
        return [self._composite(k, f.spatial) for k, f in enumerate(self.frames)]

    def uncleaned(self) -> list[np.ndarray]:
        return [f.rgb for f in self.frames]

    def learned(self, net: UNet, *, device: str = "cpu") -> list[np.ndarray]:
        """A guided-unet's frames, built as the served model builds them."""
        net.to(device).eval()
        return [
            self._composite(k, run_on_frame_arrays(net, f.planes, tile=512, device=device))
            for k, f in enumerate(self.frames)
        ]

    def score(self, results: Sequence[np.ndarray]) -> dict[str, float]:
        """The figures of one method's frames (see the module doc), means over the shot."""
        inside = [psnr(r, f.truth, mask=f.mask) for r, f in zip(results, self.frames, strict=True)]
        warps = [
            _warp_difference(b, a, flow, self.frames[k + 1].mask) - self.truth_warp[k]
            for k, (a, b, flow) in enumerate(zip(results[:-1], results[1:], self.flows, strict=True))
        ]
        return {
            "psnr": _mean(inside),
            "psnr_min": float(np.min([v for v in inside if np.isfinite(v)])),
            "psnr_shown": self._pooled_psnr(results, shown=True),
            "psnr_unseen": self._pooled_psnr(results, shown=False),
            "ssim": _mean([ssim(r, f.truth, mask=f.mask) for r, f in zip(results, self.frames, strict=True)]),
            "psnr_frame": _mean([psnr(r, f.truth) for r, f in zip(results, self.frames, strict=True)]),
            "ssim_frame": _mean([ssim(r, f.truth) for r, f in zip(results, self.frames, strict=True)]),
            "warp_error": _mean(warps),
        }

    def _pooled_psnr(self, results: Sequence[np.ndarray], *, shown: bool) -> float:
        """PSNR inside the masks (weighted) over the pixels a neighbour showed (or none did), all frames pooled."""
        total, weight = 0.0, 0.0
        for r, f in zip(results, self.frames, strict=True):
            where = f.mask * ((f.planes[..., SHOWN_CHANNEL] > 0) == shown)
            total += float((((r - f.truth) ** 2).mean(axis=2) * where).sum())
            weight += float(where.sum())
        if weight <= 0:
            return float("nan")
        if total <= 0:
            return float("inf")
        return 10.0 * float(np.log10(weight / total))

    def headroom(self, results: Sequence[np.ndarray]) -> dict[str, float]:
        """Where a method's error inside the mask lies, and so what a net gated to the unseen pixels
        (the learned cleanup, :mod:`plateforge_server.tools.cleanup.guide`) can win at most:
        ``error_share_unseen``, the share of the squared error (mask-weighted, all frames pooled) on
        pixels no neighbour shows, and ``psnr_if_unseen_exact``, the mean per-frame PSNR inside the
        mask with those pixels replaced by the truth."""
        unseen_error, total_error, exact = 0.0, 0.0, []
        for r, f in zip(results, self.frames, strict=True):
            unseen = f.planes[..., SHOWN_CHANNEL] <= 0
            error = ((r - f.truth) ** 2).mean(axis=2) * f.mask
            unseen_error += float(error[unseen].sum())
            total_error += float(error.sum())
            patched = np.where(unseen[..., None], f.truth, r)
            exact.append(psnr(patched, f.truth, mask=f.mask))
        share = unseen_error / total_error if total_error > 0 else 0.0
        # Frames left without error score inf; the mean is over the others (as score's), inf if none.
        finite = [v for v in exact if np.isfinite(v)]
        return {"error_share_unseen": share, "psnr_if_unseen_exact": float(np.mean(finite)) if finite else math.inf}

    def per_frame_psnr(self, results: Sequence[np.ndarray]) -> list[float]:
        return [psnr(r, f.truth, mask=f.mask) for r, f in zip(results, self.frames, strict=True)]


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _luma8(rgb: np.ndarray) -> np.ndarray:
    luma = np.log2(np.maximum(rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32), 0) + 2.0**-10)
    lo, hi = np.percentile(luma, (0.5, 99.5))
    scaled: np.ndarray = np.clip((luma - lo) * (255.0 / max(float(hi - lo), 1e-6)), 0, 255).astype(np.uint8)
    return scaled


def _flow(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Dense flow from ``current`` to ``previous``: where each current pixel was a frame ago."""
    start = np.zeros((*current.shape[:2], 2), np.float32)  # ignored without OPTFLOW_USE_INITIAL_FLOW
    flow: np.ndarray = cv2.calcOpticalFlowFarneback(
        _luma8(current), _luma8(previous), start, pyr_scale=0.5, levels=4, winsize=21, iterations=5, poly_n=7,
        poly_sigma=1.5, flags=0,
    )  # fmt: skip
    return flow


def _warp_difference(current: np.ndarray, previous: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
    """Mean |current - previous warped onto current| inside ``mask`` (weighted), over R, G, B."""
    height, width = mask.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(
        np.ascontiguousarray(previous, np.float32),
        xs + flow[..., 0],
        ys + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    weight = mask[:, :, None]
    total = float(weight.sum()) * 3
    return float((np.abs(current - warped) * weight).sum() / total) if total > 0 else 0.0


def _scored(scene: CleanupScene, results: list[Any]) -> dict[str, float]:
    """The scene's figures plus PSNR inside the mask through the sRGB view (mean over frames)."""
    display = [display_psnr(r, f.truth, mask=f.mask) for r, f in zip(results, scene.frames, strict=True)]
    finite = [v for v in display if v != float("inf")]
    return {**scene.score(results), "psnr_display": round(sum(finite) / len(finite), 4) if finite else float("inf")}


def bench_cleanup(*, args: argparse.Namespace, seed: int, work_dir: Path) -> dict[str, dict[str, float]]:
    """What ``bench/quality.py`` measures of the cleanup on analytic shot ``seed`` at ``args``' size
    (:func:`bench_cleanup_shot`)."""
    shot = make_shot(width=args.width, height=args.height, frames=args.frames, seed=seed)
    return bench_cleanup_shot(shot, str(seed), args=args, work_dir=work_dir)


def bench_cleanup_shot(
    shot: Shot, label: str, *, args: argparse.Namespace, work_dir: Path
) -> dict[str, dict[str, float]]:
    """What ``bench/quality.py`` measures of the cleanup on ``shot`` (analytic, real footage or a
    Cycles render's ``.cleanup()``): the classical fill, Telea, the plate uncleaned and the learned
    cleanup trained as ``plateforge train --tool cleanup --steps N`` trains it
    (:func:`plateforge_server.evaluation.runs.bench_config`)."""
    from plateforge_server.training import net_config_for, train  # the trainer imports the tools

    folder = Path(work_dir) / f"cleanup-{label}"
    write_shot(shot, folder)
    sources = [
        Source(glob, "CC0-1.0", "plateforge bench", ("train", "evaluate"), role)
        for role, glob in {"plate": "plate.*.exr", "mask": "mask.*.exr"}.items()
    ]
    manifest = write_manifest(folder / "dataset.toml", name=f"shot{label}", sources=sources)
    print(f"shot {label}: cleanup baselines …", file=sys.stderr, flush=True)
    scene = CleanupScene(shot)
    figures = {"classical": _scored(scene, scene.classical()), "telea": _scored(scene, scene.spatial())}
    figures["uncleaned"] = _scored(scene, scene.uncleaned())
    print(f"shot {label}: training the learned cleanup ({args.steps} steps) …", file=sys.stderr, flush=True)
    config = bench_config("cleanup", steps=args.steps, device=args.device, params=args.params)
    started = time.monotonic()
    result = train(config, manifest_path=manifest, out_dir=folder / "run", resume=False)
    seconds = time.monotonic() - started
    net = UNet(net_config_for(config))
    net.load_state_dict(load_weights(result.model_dir))
    learned = scene.learned(net, device=pick_device(args.device))
    figures["learned"] = {**_scored(scene, learned), "train_seconds": round(seconds, 1), "train_steps": args.steps}
    classical_frames = scene.per_frame_psnr(scene.classical())
    margins = [a - b for a, b in zip(scene.per_frame_psnr(learned), classical_frames, strict=True)]
    figures["learned"]["frames_better"] = sum(m > 0 for m in margins)
    figures["learned"]["frames"] = len(margins)
    return figures
