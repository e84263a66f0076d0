"""Scoring matte methods on a synthetic matte shot with exact ground truth.

The alpha metrics are the standard ones of image matting (Rhemann et al., "A Perceptually
Motivated Online Benchmark for Image Matting", CVPR 2009, as alphamatting.com and the Deep Image
Matting evaluation code compute them), on alphas in [0, 1] over the whole frame (no trimap: the
shot's every pixel counts):

* :func:`sad`: sum of absolute differences, divided by 1000 (the customary unit);
* :func:`mse`: mean squared difference;
* :func:`gradient_error`: sum of squared differences of the gradient magnitudes, the gradients
  taken with first-order Gaussian derivative filters (sigma 1.4), divided by 1000;
* :func:`connectivity_error`: for thresholds 0, 0.1, ... 1, the largest 4-connected region where
  both alphas reach the threshold is the "source"; each pixel's level ``l`` is the last threshold
  before it falls out of that region; ``phi = 1 - (alpha - l) * [alpha - l >= 0.15]`` and the error
  is the sum of ``|phi_result - phi_truth|``, divided by 1000.

Composites are scored with :func:`plateforge.metrics.psnr` and :func:`plateforge.metrics.ssim`
against the exact replacement (:meth:`~plateforge.shots.dailies.MatteShot.composite`: the subject over
the new background, with its shadow and bounce on it when the shot has them): ``psnr`` and
``ssim`` for the composite the tool delivers (its signed foreground over the background,
:func:`~plateforge_server.tools.matte.classical.solve_foreground`), scene-linear, and
``psnr_display`` / ``ssim_display`` for the same after the display transform ``x / (1 + x)``
(:func:`plateforge_server.tools.relight.evaluation.tonemap`: artists judge through the view, where
shadows weigh more than in linear light); ``psnr_unmixed`` for the same alpha composited by the
plain unmix ``plate - (1 - alpha) * (clean - background)`` (no grain taken out).

Methods: ``classical`` (matte-classical), ``learned`` (the matte trained on the keyframes) and
``closed_form``, the outside baseline: closed-form matting (pymatting) with a trimap drawn
automatically from the clean-plate difference (:mod:`plateforge_server.tools.matte.closed_form`).
All three deliver their composite through the same foreground solve.

:func:`warp_error` is temporal stability: for each pair of consecutive frames, the previous
alpha is warped onto the next with the subject's exact motion (known from the shot), and the
change that remains (``alpha_next - warp(alpha_previous)``) is compared with the same change of
the true alphas; the figure is the mean absolute difference, averaged over the pairs. Flicker or
sliding a method adds shows as a larger number; the truth scores 0.

:func:`evaluate_matte` renders nothing itself: it takes a shot, gives the learned matte its
keyframes (the true alphas of a few frames, as an artist's keyframe mattes) and trains it, runs
every method through the same code the server runs, and scores the frames that are *not*
keyframes.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from plateforge.errors import UsageError
from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr, ssim
from plateforge.models import ParamValue
from plateforge.shots.dailies import MatteShot, make_matte_shot
from plateforge_server.evaluation.shots import BENCH_BOUNCE, BENCH_SHADOW
from plateforge_server.tools.base import ToolCall, ToolModule
from plateforge_server.tools.matte import classical as matte_classical

__all__ = [
    "BENCH_BOUNCE",
    "BENCH_SHADOW",
    "DEFAULT_KEYFRAMES",
    "bench_matte",
    "bench_matte_shot",
    "connectivity_error",
    "evaluate_matte",
    "gradient_error",
    "mse",
    "sad",
    "warp_error",
    "write_matte_dataset",
]

#: Keyframes (frame indices) the learned matte gets by default: three, spread over the shot.
DEFAULT_KEYFRAMES = (0, 11, 23)
_GRADIENT_SIGMA = 1.4


def _pair(result: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, t = np.asarray(result, np.float64), np.asarray(truth, np.float64)
    if r.ndim != 2 or r.shape != t.shape:
        raise ValueError(f"alphas must be two (H, W) arrays of one shape, got {r.shape} and {t.shape}")
    return r, t


def sad(result: np.ndarray, truth: np.ndarray) -> float:
    """Sum of absolute differences / 1000."""
    r, t = _pair(result, truth)
    return float(np.abs(r - t).sum() / 1000.0)


def mse(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared difference."""
    r, t = _pair(result, truth)
    return float(((r - t) ** 2).mean())


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The x and y first-order Gaussian derivative filters, each of unit L2 norm (as the DIM code builds them)."""
    epsilon = 1e-2
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    xs = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(xs**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    derivative = -xs * gauss / sigma**2
    kx = np.outer(gauss, derivative)  # rows: y, columns: x
    kx /= math.sqrt((kx**2).sum())
    return kx, kx.T.copy()


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    kx, ky = _gaussian_derivative_kernels(_GRADIENT_SIGMA)
    gx = cv2.filter2D(alpha, cv2.CV_64F, kx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(alpha, cv2.CV_64F, ky, borderType=cv2.BORDER_REPLICATE)
    magnitude: np.ndarray = np.sqrt(gx**2 + gy**2)
    return magnitude


def gradient_error(result: np.ndarray, truth: np.ndarray) -> float:
    """Sum of squared differences of Gaussian-derivative gradient magnitudes (sigma 1.4) / 1000."""
    r, t = _pair(result, truth)
    return float(((_gradient_magnitude(r) - _gradient_magnitude(t)) ** 2).sum() / 1000.0)


def connectivity_error(result: np.ndarray, truth: np.ndarray, *, step: float = 0.1) -> float:
    """Rhemann et al.'s connectivity error / 1000 (see the module doc)."""
    r, t = _pair(result, truth)
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    level = np.full(r.shape, -1.0)
    for i in range(1, len(thresholds)):
        both = ((r >= thresholds[i]) & (t >= thresholds[i])).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        # The source region: the largest component (none when nothing reaches the threshold).
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) if count > 1 else -1
        source = labels == largest
        dropped = (level == -1) & ~source
        level[dropped] = thresholds[i - 1]
    level[level == -1] = 1.0
    rd, td = r - level, t - level
    r_phi = 1.0 - rd * (rd >= 0.15)
    t_phi = 1.0 - td * (td >= 0.15)
    return float(np.abs(r_phi - t_phi).sum() / 1000.0)


def _warp(alpha: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``alpha`` of the previous frame moved onto the next: ``flow`` (2x3, pixel-centre coordinates
    of the next frame -> the previous frame's) gives where each pixel comes from. Also the pixels
    the previous frame covers."""
    height, width = alpha.shape
    # Pixel-centre coordinates (x + 0.5) to OpenCV's pixel coordinates (x).
    matrix = flow.copy()
    matrix[:, 2] = flow[:, :2] @ np.array([0.5, 0.5]) + flow[:, 2] - 0.5
    warped = cv2.warpAffine(
        alpha.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    inside = cv2.warpAffine(
        np.ones((height, width), np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    return warped.astype(np.float64), inside >= 0.999


def warp_error(results: Sequence[np.ndarray], truths: Sequence[np.ndarray], flows: Sequence[np.ndarray]) -> float:
    """Mean over consecutive pairs of ``mean |(r1 - W r0) - (t1 - W t0)|`` (see the module doc);
    ``flows[k]`` maps frame ``k + 1``'s pixel-centre coordinates to frame ``k``'s."""
    if len(results) != len(truths) or len(flows) != len(results) - 1:
        raise ValueError(f"need N results, N truths and N - 1 flows; got {len(results)}, {len(truths)}, {len(flows)}")
    values = []
    for k, flow in enumerate(flows):
        r0, r1 = _pair(results[k], results[k + 1])
        t0, t1 = _pair(truths[k], truths[k + 1])
        wr, inside = _warp(r0, flow)
        wt, _ = _warp(t0, flow)
        if not inside.any():
            continue
        values.append(float(np.abs((r1 - wr) - (t1 - wt))[inside].mean()))
    return float(np.mean(values)) if values else 0.0


# -- running the methods --------------------------------------------------------------------------

_RGB = ("R", "G", "B")


def write_matte_dataset(shot: MatteShot, folder: Path, keyframes: Sequence[int], *, name: str = "matte-shot") -> Path:
    """Plates and clean plates of every frame, the true alpha of the ``keyframes`` (indices) as
    the artist's keyframe mattes, and a registered manifest; its path."""
    from plateforge.manifest_format import register

    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("plate", "clean", "matte"):
        (folder / sub).mkdir(exist_ok=True)
    for index, number in enumerate(shot.frame_numbers):
        write_exr(folder / "plate" / f"plate.{number:04d}.exr", shot.plates[index])
        write_exr(folder / "clean" / f"clean.{number:04d}.exr", shot.cleans[index])
        if index in keyframes:
            write_exr(folder / "matte" / f"matte.{number:04d}.exr", shot.alphas[index])
    roles = (("plate", "plate/*.exr"), ("clean_plate", "clean/*.exr"), ("matte", "matte/*.exr"))
    sources = [Source(glob, "CC0-1.0", "plateforge evaluation", ("train", "evaluate"), role) for role, glob in roles]
    manifest = write_manifest(folder / "dataset.toml", name=name, sources=sources)
    register(manifest)
    return manifest


def _run_tool(tool: ToolModule, state: object, shot: MatteShot, index: int) -> np.ndarray:
    """The tool's alpha for frame ``index``, called exactly as the server calls it."""
    inputs: dict[str, list[Frame]] = {
        "plate": [shot.plates[index]],
        "clean_plate": [shot.cleans[index]],
    }
    call = ToolCall(info=tool.info, inputs=inputs, params={}, target_frame=shot.frame_numbers[index])
    outputs = tool.run(state, call)
    alpha: np.ndarray = outputs["alpha"].channels["A"].astype(np.float32)
    return alpha


def _score(shot: MatteShot, alphas: Mapping[int, np.ndarray], frames: Sequence[int]) -> dict[str, float]:
    """The figures of one method over ``frames`` (indices, consecutive runs used for warp_error)."""
    from plateforge_server.tools.relight.evaluation import tonemap

    names = ("sad", "mse", "grad", "conn", "psnr", "ssim", "psnr_display", "ssim_display", "psnr_unmixed")
    sums: dict[str, list[float]] = {k: [] for k in names}
    for index in frames:
        alpha, truth = alphas[index], shot.alpha(index)
        sums["sad"].append(sad(alpha, truth))
        sums["mse"].append(mse(alpha, truth))
        sums["grad"].append(gradient_error(alpha, truth))
        sums["conn"].append(connectivity_error(alpha, truth))
        plate, clean = shot.plates[index].stack(_RGB), shot.cleans[index].stack(_RGB)
        background = shot.backgrounds[index].stack(_RGB)
        fg = matte_classical.solve_foreground(plate, clean, alpha)
        over = matte_classical.composite_over(fg, alpha, background)
        exact = shot.composite(index)
        sums["psnr"].append(_capped(psnr(over, exact)))
        sums["ssim"].append(ssim(over, exact))
        sums["psnr_display"].append(_capped(psnr(tonemap(over), tonemap(exact))))
        sums["ssim_display"].append(ssim(tonemap(over), tonemap(exact)))
        # The same alpha composited by the plain unmix, no grain taken out:
        # plate - (1 - alpha) * (clean - background); beside ``psnr`` so what the delivered
        # foreground gains or loses against it (issue 16.4: shadows, bounce, grain) shows.
        unmixed = plate - (1.0 - alpha[:, :, None]) * (clean - background)
        sums["psnr_unmixed"].append(_capped(psnr(unmixed, exact)))
    figures = {k: float(np.mean(v)) for k, v in sums.items()}
    pairs = [(a, a + 1) for a in frames if a + 1 in frames]
    figures["warp_error"] = float(
        np.mean(
            [
                warp_error([alphas[a], alphas[b]], [shot.alpha(a), shot.alpha(b)], [shot.subject_flow(b, a)])
                for a, b in pairs
            ]
        )
        if pairs
        else 0.0
    )
    return figures


def _capped(value: float) -> float:
    """A PSNR, 100 dB where the images are identical (so a mean stays finite)."""
    return value if math.isfinite(value) else 100.0


def _closed_form(shot: MatteShot, index: int) -> np.ndarray:
    from plateforge_server.tools.matte.closed_form import closed_form_alpha

    return closed_form_alpha(shot.plates[index].stack(_RGB), shot.cleans[index].stack(_RGB))


def evaluate_matte(
    shot: MatteShot,
    *,
    keyframes: Sequence[int] = DEFAULT_KEYFRAMES,
    steps: int = 400,
    device: str = "auto",
    work_dir: Path,
    params: Mapping[str, ParamValue] | None = None,
) -> dict[str, dict[str, float]]:
    """Figures per method (``"classical"``, ``"learned"``, ``"closed_form"``), lower-case metric names (see the
    module doc), over the shot's frames that are not keyframes. The learned matte is trained for
    ``steps`` on the ``keyframes`` (frame indices; their true alphas are its keyframe mattes) in
    ``work_dir``, with the config a user's ``plateforge train --tool matte`` gets (plus ``params``,
    as ``--param`` would add them); its figures include ``train_seconds``."""
    from plateforge_server.evaluation.runs import bench_config
    from plateforge_server.tools.learned import tool_module_for
    from plateforge_server.training import train

    keys = sorted({int(k) for k in keyframes})
    bad = [k for k in keys if not 0 <= k < len(shot)]
    if bad:
        raise UsageError(f"keyframes {bad} are outside the shot's {len(shot)} frames (indices 0-{len(shot) - 1})")
    frames = [i for i in range(len(shot)) if i not in keys]
    if not frames:
        raise UsageError("every frame is a keyframe: nothing is left to evaluate")
    work_dir = Path(work_dir)
    manifest = write_matte_dataset(shot, work_dir / "dataset", keys)
    config = bench_config("matte", steps=steps, device=device, params=params)
    started = time.monotonic()
    result = train(config, manifest_path=manifest, out_dir=work_dir / "run", resume=False)
    train_seconds = time.monotonic() - started

    from plateforge_server.device import pick_device

    learned_tool = tool_module_for(result.model_dir)
    learned_state = learned_tool.load(device=pick_device(device))
    classical_tool = ToolModule(matte_classical.INFO, matte_classical.load, matte_classical.run)
    classical_state = classical_tool.load(device="cpu")
    report: dict[str, dict[str, float]] = {}
    for method, tool, state in (
        ("classical", classical_tool, classical_state),
        ("learned", learned_tool, learned_state),
    ):
        alphas = {i: _run_tool(tool, state, shot, i) for i in frames}
        report[method] = _score(shot, alphas, frames)
    started = time.monotonic()
    report["closed_form"] = _score(shot, {i: _closed_form(shot, i) for i in frames}, frames)
    report["closed_form"]["solve_seconds"] = round(time.monotonic() - started, 2)
    report["learned"]["train_seconds"] = round(train_seconds, 2)
    report["learned"]["keyframes"] = float(len(keys))
    return report


def bench_matte(*, args: argparse.Namespace, seed: int, work_dir: Path) -> dict[str, dict[str, float]]:
    """What ``bench/quality.py`` calls: the matte shot of ``seed`` at the bench's size, with a cast
    shadow and bounce (:data:`BENCH_SHADOW`, :data:`BENCH_BOUNCE`, unless ``args`` says), evaluated."""
    frames = int(args.frames)
    shot = make_matte_shot(
        width=int(args.width),
        height=int(args.height),
        frames=frames,
        seed=seed,
        shadow=float(getattr(args, "shadow", BENCH_SHADOW)),
        bounce=float(getattr(args, "bounce", BENCH_BOUNCE)),
    )
    return bench_matte_shot(shot, args=args, work_dir=work_dir)


def bench_matte_shot(shot: MatteShot, *, args: argparse.Namespace, work_dir: Path) -> dict[str, dict[str, float]]:
    """:func:`bench_matte` on a shot already made (an analytic one, or a rendered Cycles shot's
    ``.matte()``): keyframes first, middle and last frame; ``args`` gives steps, device, params."""
    frames = len(shot)
    keyframes = sorted({0, frames // 2, frames - 1}) if frames >= 4 else [0, frames - 1]
    return evaluate_matte(
        shot,
        keyframes=keyframes,
        steps=int(args.steps),
        device=str(args.device),
        work_dir=work_dir,
        params=getattr(args, "params", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m plateforge_server.tools.matte.evaluation --seeds 100,101``: :func:`bench_matte` on the
    given analytic seeds (tune seeds 100-109, report seeds 0-5), JSON figures per seed on stdout."""
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seeds", required=True, help="comma-separated shot seeds")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    args.params = None  # the tool's defaults: what `plateforge train --tool matte` gives
    for seed in (int(s) for s in str(args.seeds).split(",") if s):
        with tempfile.TemporaryDirectory(prefix="plateforge-matte-") as tmp:
            figures = bench_matte(args=args, seed=seed, work_dir=Path(tmp))
        print(json.dumps({"seed": seed, **figures}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
