"""Quality of each tool against exact ground truth, learned vs classical vs other baselines, as JSON.

For each synthetic shot (``make_shot`` with seeds 0, 1, 2 …: a panning, rotating camera over a
textured set, a wire, a moving bar with a marker and a tape cross stuck on the set):

* **cleanup**: ``classical`` is cleanup-classical (aligned neighbouring frames, then OpenCV
  Telea); ``telea`` is OpenCV Telea alone, from the frame itself (the single-frame baseline);
  ``learned`` is the learned cleanup trained on that shot's own plates and masks for ``--steps``
  steps (self-supervised: the clean plates are never seen), run exactly as the server runs it.
  Figures (:mod:`plateforge.server.evaluation.cleanup`): ``psnr``/``ssim`` inside the mask,
  ``psnr_shown``/``psnr_unseen`` inside the mask where a neighbouring frame shows the set and
  where none does, ``psnr_frame``/``ssim_frame`` over the frame, ``warp_error`` (flicker added
  over the truth), and for ``learned`` the training time and the frames it beats classical on.
* **matte**: matte-classical (clean-plate difference key) vs the learned matte trained on three
  artist keyframe mattes; SAD, MSE, gradient and connectivity errors of alpha, PSNR/SSIM of the
  composite over a new background, warp error (:mod:`plateforge.server.evaluation.matte`).
* **relight** and **look**: per K keyframe pairs (``k1`` … ``k8``), the fitted 3x4 affine
  (``classical``) and with a 3D LUT, vs pair-trained nets with and without AOV channels; PSNR
  (scene-linear, and tonemapped ``x / (1 + x)``: the relit truth is HDR) and CIEDE2000 on the
  other frames (:mod:`plateforge.server.evaluation.relight`; ``settings.relight_metrics`` says
  each in words). The summary's ``also`` compares ``learned`` and ``learned_aov`` with
  ``classical`` on each of those metrics.

The JSON: ``{"<shot>": {"<tool>": {"<method>": {"<metric>": value}}}, "summary": {...},
"settings": {...}}``. The summary says, per tool, whether the learned method beats the classical
one on every shot, with the margins.

  python bench/quality.py                       # 3 shots, 480x270x24, 600 steps each (CPU: ~30 min)
  python bench/quality.py --shots 1 --steps 300
  python bench/quality.py --quick               # tiny shots, a few steps: checks the plumbing (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from plateforge.cli.train import parse_param
from plateforge.manifests import Source, write_manifest
from plateforge.models import ParamValue
from plateforge.server.device import configure_threads, pick_device
from plateforge.server.evaluation.cleanup import CleanupScene
from plateforge.server.evaluation.matte import bench_matte
from plateforge.server.evaluation.relight import METRICS as RELIGHT_METRICS
from plateforge.server.evaluation.relight import bench_look, bench_relight
from plateforge.server.evaluation.runs import bench_config
from plateforge.server.modelcard import load_weights
from plateforge.server.nets.unet import UNet
from plateforge.server.training import TrainConfig, net_config_for, train
from plateforge.synthetic import make_shot, write_shot


def write_dataset(folder: Path, roles: dict[str, str], name: str) -> Path:
    """A training manifest over files already in ``folder`` (role -> glob); its path."""
    sources = [Source(glob, "CC0-1.0", "plateforge bench", ("train", "evaluate"), role) for role, glob in roles.items()]
    return write_manifest(folder / "dataset.toml", name=name, sources=sources)


def parse_params(texts: list[str]) -> dict[str, ParamValue]:
    """``--param key=value`` overrides, parsed as ``plateforge train`` parses them."""
    return dict(parse_param(t) for t in texts)


def cleanup_config(args: argparse.Namespace) -> TrainConfig:
    """What ``plateforge train --tool cleanup --steps N`` (plus ``--param``) gives a user."""
    return bench_config("cleanup", steps=args.steps, device=args.device, params=args.params)


def cleanup(args: argparse.Namespace, seed: int, work: Path) -> dict[str, dict[str, float]]:
    shot = make_shot(width=args.width, height=args.height, frames=args.frames, seed=seed)
    folder = work / f"cleanup-{seed}"
    write_shot(shot, folder)
    manifest = write_dataset(folder, {"plate": "plate.*.exr", "mask": "mask.*.exr"}, f"shot{seed}")
    print(f"shot {seed}: cleanup baselines …", file=sys.stderr, flush=True)
    scene = CleanupScene(shot)
    figures = {"classical": scene.score(scene.classical()), "telea": scene.score(scene.spatial())}
    figures["uncleaned"] = scene.score(scene.uncleaned())
    print(f"shot {seed}: training the learned cleanup ({args.steps} steps) …", file=sys.stderr, flush=True)
    config = cleanup_config(args)
    started = time.monotonic()
    result = train(config, manifest_path=manifest, out_dir=folder / "run", resume=False)
    seconds = time.monotonic() - started
    net = UNet(net_config_for(config))
    net.load_state_dict(load_weights(result.model_dir))
    learned = scene.learned(net, device=pick_device(args.device))
    figures["learned"] = {**scene.score(learned), "train_seconds": round(seconds, 1), "train_steps": args.steps}
    classical_frames = scene.per_frame_psnr(scene.classical())
    margins = [a - b for a, b in zip(scene.per_frame_psnr(learned), classical_frames, strict=True)]
    figures["learned"]["frames_better"] = sum(m > 0 for m in margins)
    figures["learned"]["frames"] = len(margins)
    return figures


#: Per tool: the metric the summary compares, and whether higher is better.
SUMMARY_METRICS = {
    "cleanup": ("psnr", True),
    "matte": ("sad", False),
    "relight": ("psnr", True),
    "look": ("psnr", True),
}


#: Keyframe tools: more (learned method, metric, higher is better) comparisons against classical.
EXTRA_SUMMARIES = {
    tool: (
        ("learned", "psnr_tonemapped", True),
        ("learned", "delta_e2000", False),
        ("learned_aov", "psnr", True),
        ("learned_aov", "psnr_tonemapped", True),
        ("learned_aov", "delta_e2000", False),
    )
    for tool in ("relight", "look")
}


def extra_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Per keyframe tool and :data:`EXTRA_SUMMARIES` comparison (``"<method>/<metric>"``): whether
    it beats ``classical`` at every shot and K, and the margins (method minus classical)."""
    out: dict[str, Any] = {}
    for tool, comparisons in EXTRA_SUMMARIES.items():
        for method, metric, higher in comparisons:
            margins = [
                {"shot": f"{shot}/{k}", "margin": round(m[method][metric] - m["classical"][metric], 4)}
                for shot, tools in report.items()
                for k, m in (tools.get(tool) or {}).items()
                if isinstance(m, dict) and metric in m.get(method, {}) and metric in m.get("classical", {})
            ]
            if margins:
                better = all(m["margin"] > 0 if higher else m["margin"] < 0 for m in margins)
                out.setdefault(tool, {})[f"{method}/{metric}"] = {
                    "beats_classical_everywhere": better,
                    "margins": margins,
                }
    return out


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """Per tool, learned minus classical on its summary metric, per shot (and per K for the
    keyframe tools), and whether learned wins everywhere."""
    out: dict[str, Any] = {}
    for tool, (metric, higher) in SUMMARY_METRICS.items():
        margins = []
        for shot, tools in report.items():
            entry = tools.get(tool)
            if not entry:
                continue
            groups = {"": entry} if "learned" in entry else {k: v for k, v in entry.items() if isinstance(v, dict)}
            for key, methods in groups.items():
                if "learned" not in methods or "classical" not in methods:
                    continue
                learned, classical = methods["learned"][metric], methods["classical"][metric]
                where = f"{shot}/{key}" if key else shot
                margins.append({"shot": where, "metric": metric, "margin": round(learned - classical, 4)})
        if margins:
            better = [m["margin"] > 0 if higher else m["margin"] < 0 for m in margins]
            out[tool] = {"learned_beats_classical_on_every_shot": all(better), "margins": margins}
    for tool, extra in extra_summary(report).items():
        out.setdefault(tool, {})["also"] = extra
    return out


def _config_summary(tool: str, args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(tool, steps=args.steps, device=args.device, params=args.params).to_dict()
    keep = ("mode", "size", "batch", "crop", "lr", "warmup", "ssim_weight", "mse_weight", "exposure_jitter")
    return {k: config[k] for k in keep}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=3, help="synthetic shots, seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--tools", default="cleanup,matte,relight,look", help="tools to measure (default cleanup,matte,relight,look)"
    )
    parser.add_argument("--steps", type=int, default=600, help="training steps per shot (default 600)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training config field on top of the tool's defaults, as plateforge train --param takes it "
        "(for tuning on tune seeds only; reported figures use the defaults); repeatable",
    )
    parser.add_argument("--frames", type=int, default=24, help="frames a shot (default 24)")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument(
        "--keys", default="1,2,4,8", help="relight and look: keyframe counts K to measure (default 1,2,4,8)"
    )
    parser.add_argument("--quick", action="store_true", help="one tiny shot, a few steps (checks the plumbing)")
    args = parser.parse_args(argv)
    if args.quick:
        args.shots, args.steps, args.frames, args.width, args.height = 1, 4, 5, 160, 96
        args.param = ["batch=2", *args.param]
    args.params = parse_params(args.param)
    args.keys = tuple(int(k) for k in str(args.keys).split(",") if k)
    configure_threads()  # as the server does: the cores this process may use, or $PLATEFORGE_TORCH_THREADS
    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(SUMMARY_METRICS))
    if unknown:
        parser.error(f"unknown tools {unknown}; known: {', '.join(SUMMARY_METRICS)}")
    report: dict[str, Any] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="plateforge-bench-quality-") as tmp:
        for seed in range(args.shots):
            entry: dict[str, Any] = {}
            if "cleanup" in tools:
                entry["cleanup"] = cleanup(args, seed, Path(tmp))
            if "matte" in tools:
                print(f"shot {seed}: matte …", file=sys.stderr, flush=True)
                entry["matte"] = bench_matte(args=args, seed=seed, work_dir=Path(tmp) / f"matte-{seed}")
            for tool, bench in (("relight", bench_relight), ("look", bench_look)):
                if tool in tools:
                    print(f"shot {seed}: {tool} …", file=sys.stderr, flush=True)
                    entry[tool] = bench(args=args, seed=seed, work_dir=Path(tmp) / f"{tool}-{seed}")
            report[f"shot{seed}"] = entry
    report["summary"] = summary({k: v for k, v in report.items()})
    report["settings"] = {
        "device": pick_device(args.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "shots": args.shots,
        "shot_size": [args.width, args.height, args.frames],
        "train": {"steps": args.steps, "params": args.params},
        # The config of every tool's run (steps and device aside, what `plateforge train --tool X` gives).
        "train_configs": {tool: _config_summary(tool, args) for tool in tools},
        "quick": args.quick,
        "relight_metrics": RELIGHT_METRICS,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
