"""Training speed per model size, and how long the learned cleanup takes to beat the classical one.

Everything runs on the demo's synthetic shot (480x270, 24 frames, exact ground truth), trained
the way ``plateforge train --tool cleanup`` and ``plateforge demo --train`` train it: self-supervised
("cleanup" mode: rig-shaped holes cut where the shot's mask is clear, classically filled, and the
net learns to correct the fill), from the shot's plates and masks only, never its clean plates.

* ``steps_per_second``: per U-Net preset, optimiser steps a second on ``--crop`` crops in batches of
  ``--batch``, measured after a few warm-up steps, and the ratio to the small preset in the same run.
* ``time_to_beat_baseline``: one run of ``--steps`` steps with a checkpoint every ``--eval-every``
  steps. Each checkpoint then cleans every frame of the shot under its real rig mask, exactly as
  the served model does (classical alignment and fill of the call's neighbouring frames, then the
  net, composited with the soft mask), and is scored by PSNR inside the mask against the exact
  clean plate, as is ``cleanup-classical`` on the same frames: the baseline, in the same run. The
  figure is the training wall time (data preparation included, evaluation not) of the first
  checkpoint whose mean beats the baseline's. The target on a 2-core CPU is under 600 s.

  python bench/training.py                                  # the full run (CPU: about 10-20 minutes)
  python bench/training.py --sizes small --steps 600 --eval-every 50
  python bench/training.py --quick                          # a tiny shot: checks the plumbing
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

import numpy as np
import torch

from plateforge.manifests import Source, write_manifest
from plateforge.shots.synthetic import Shot, make_shot, write_shot
from plateforge_server.device import configure_threads, pick_device
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.nets.unet import SIZES, UNet
from plateforge_server.tools.cleanup.evaluation import CleanupScene
from plateforge_server.training import TrainConfig
from plateforge_server.training.checkpoints import list_checkpoints, load_checkpoint
from plateforge_server.training.engine import TrainProgress, net_config_for, train

TARGET_SECONDS = 600.0


def write_dataset(shot: Shot, folder: Path) -> Path:
    """The shot's plates and masks (not its clean plates) with a training manifest; its path."""
    write_shot(shot, folder)
    sources = [Source(f"{role}.*.exr", "CC0-1.0", "plateforge bench", ("train",), role) for role in ("plate", "mask")]
    return write_manifest(folder / "shot.toml", name="bench-shot", sources=sources)


def config_for(args: argparse.Namespace, size: str, steps: int, **changes: Any) -> TrainConfig:
    """What ``plateforge train --tool cleanup --steps N --size SIZE`` gives (the tool's defaults),
    with --crop/--batch/--lr only when given, and the bookkeeping this bench needs (``changes``)."""
    params: dict[str, Any] = {"size": size, "seed": args.seed, "preview_every": 10**6, **changes}
    params.setdefault("checkpoint_every", 10**6)
    params.setdefault("validation_every", 10**6)
    for name in ("crop", "batch", "lr"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return bench_config("cleanup", steps=steps, device=args.device, params=params)


def steps_per_second(args: argparse.Namespace, manifest: Path, size: str, out: Path) -> dict[str, Any]:
    warm, timed = 3, args.speed_steps
    stamps: dict[int, float] = {}

    def progress(p: TrainProgress) -> None:
        stamps[p.step] = p.seconds

    config = config_for(args, size, warm + timed)
    train(config, manifest_path=manifest, out_dir=out / f"speed-{size}", progress=progress, resume=False)
    seconds = stamps[warm + timed] - stamps[warm]
    net = UNet(net_config_for(config))
    return {
        "steps_per_s": round(timed / seconds, 3),
        "ms_per_step": round(1000 * seconds / timed, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
        "data_preparation_s": round(stamps[1] - (stamps[2] - stamps[1]), 1),
    }


def time_to_beat(args: argparse.Namespace, manifest: Path, shot: Shot, out: Path) -> dict[str, Any]:
    size = args.sizes.split(",")[0]
    config = config_for(
        args, size, args.steps, checkpoint_every=args.eval_every, keep_checkpoints=args.steps // args.eval_every + 1
    )
    stamps: dict[int, float] = {}

    def progress(p: TrainProgress) -> None:
        stamps[p.step] = p.seconds

    run_dir = out / "beat"
    result = train(config, manifest_path=manifest, out_dir=run_dir, progress=progress, resume=False)
    scene = CleanupScene(shot)
    classical = scene.per_frame_psnr(scene.classical())
    baseline = float(np.mean(classical))
    net_config = net_config_for(config)
    curve = []
    beat: dict[str, Any] | None = None
    for step, path in sorted(list_checkpoints(run_dir / "checkpoints")):
        net = UNet(net_config)
        net.load_state_dict(load_checkpoint(path).model)
        scores = scene.per_frame_psnr(scene.learned(net, device=pick_device(args.device)))
        mean = float(np.mean(scores))
        point = {
            "step": step,
            "train_seconds": round(stamps[step], 1),
            "psnr_in_mask": round(mean, 3),
            "margin_db": round(mean - baseline, 3),
            "frames_better": int(sum(s > c for s, c in zip(scores, classical, strict=True))),
            "worst_frame_margin_db": round(float(min(s - c for s, c in zip(scores, classical, strict=True))), 3),
        }
        curve.append(point)
        if beat is None and mean > baseline:
            beat = point
    return {
        "baseline": "cleanup-classical",
        "size": size,
        "frames": len(shot.frame_numbers),
        "classical_psnr_in_mask": round(baseline, 3),
        "validation_psnr_holes": {"learned": round(result.val_psnr, 3), "classical": round(result.identity_psnr, 3)},
        "curve": curve,
        "beat_at_step": beat["step"] if beat else None,
        "seconds_to_beat": beat["train_seconds"] if beat else None,
        "target_seconds": TARGET_SECONDS,
        "met": bool(beat and beat["train_seconds"] < TARGET_SECONDS),
        "train_seconds_total": round(result.seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,medium,large", help="presets to time; the first is trained to beat")
    parser.add_argument("--steps", type=int, default=600, help="steps of the time-to-beat run (default 600)")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between scored checkpoints (default 50)")
    parser.add_argument("--speed-steps", type=int, default=10, help="timed steps per size (default 10)")
    parser.add_argument("--crop", type=int, default=None, help="crop side (default: the cleanup tool's)")
    parser.add_argument("--batch", type=int, default=None, help="crops per step (default: the cleanup tool's)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the cleanup tool's)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the shot (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shot and the run (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--quick", action="store_true", help="a tiny shot, few steps, small preset only")
    args = parser.parse_args(argv)
    configure_threads()  # as the server does
    unknown = [s for s in args.sizes.split(",") if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; known: {sorted(SIZES)}")
    if args.quick:
        args.sizes, args.steps, args.eval_every, args.speed_steps, args.frames = "small", 6, 3, 2, 5
        # A gentler lr: six steps with no warm-up at 2e-3 (and the MSE term) jump off the classical start.
        args.crop, args.batch, args.lr = 48, 2, 2e-4
    width, height = (160, 96) if args.quick else (480, 270)
    shot = make_shot(width=width, height=height, frames=args.frames, seed=args.seed)
    device = pick_device(args.device)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="plateforge-bench-training-") as tmp:
        out = Path(tmp)
        manifest = write_dataset(shot, out / "shot")
        speeds: dict[str, Any] = {}
        for size in args.sizes.split(","):
            print(f"timing {size} …", file=sys.stderr, flush=True)
            speeds[size] = steps_per_second(args, manifest, size, out)
        for entry in speeds.values():
            entry["vs_first"] = round(entry["steps_per_s"] / speeds[args.sizes.split(",")[0]]["steps_per_s"], 3)
        report["steps_per_second"] = speeds
        print(f"training to beat cleanup-classical ({args.steps} steps) …", file=sys.stderr, flush=True)
        started = time.monotonic()
        report["time_to_beat_baseline"] = time_to_beat(args, manifest, shot, out)
        report["time_to_beat_baseline"]["bench_seconds"] = round(time.monotonic() - started, 1)
    report["settings"] = {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "shot": {"width": width, "height": height, "frames": args.frames, "seed": args.seed},
        "crop": config_for(args, "small", 1).crop,
        "batch": config_for(args, "small", 1).batch,
        "lr": config_for(args, "small", 1).lr,
        # The cleanup tool's defaults (plateforge_server.training.defaults) this bench trains with.
        "cleanup": {
            k: v
            for k, v in config_for(args, "small", 1).to_dict().items()
            if k in ("marker_holes", "soft_holes", "mse_weight", "ssim_weight", "holes_per_frame", "warmup")
        },
        "mse_weight_used": config_for(args, "small", 1).loss_mse_weight,
        "quick": args.quick,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
