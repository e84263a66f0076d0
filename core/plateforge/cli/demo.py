"""Run the built-in demo: paint a rig out of a synthetic shot through a real server.

Makes a synthetic daily with exact ground truth (a panning textured background, a wire and a
rig to remove, their mask, and the clean plate), starts a private server (or uses --server),
cleans every frame with the classical cleanup model, and writes EXRs and a before/after
contact sheet into ./plateforge-demo/. Prints what it wrote and the PSNR inside the mask
against the ground truth.

With --train it also trains a learned cleanup on the shot, as a job on the same server:
self-supervised, from the shot's own plates and masks (never the ground truth), then cleans the
shot with it and prints both models' PSNR side by side.

It also pulls a matte (:mod:`plateforge.cli.demo_matte`): a small synthetic shot of a subject with
hair and motion blur, keyed by matte-classical (clean-plate difference key) and composited over a
new background, scored against the exact alpha (SAD) and the exact replacement (PSNR); with
--train, also a learned matte trained on three keyframe mattes, scored next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plateforge.batch import SequenceJob, run_sequence
from plateforge.cli import demo_matte
from plateforge.cli.common import ProgressLine, add_server_arguments, connect
from plateforge.cli.job import describe, follow
from plateforge.cli.progress import add_quiet_argument
from plateforge.client import Client
from plateforge.contactsheet import contact_sheet, to_display, write_png
from plateforge.errors import PlateforgeError
from plateforge.exr import read_exr
from plateforge.frames import Frame, mask_channel_name
from plateforge.jobs_client import TrainingClient
from plateforge.manifests import Source, write_manifest
from plateforge.metrics import psnr
from plateforge.models import ParamValue
from plateforge.sequences import frame_path
from plateforge.shots.synthetic import Shot, make_shot, write_shot

MODEL = "cleanup-classical"
#: The model ``--train`` trains on the shot and serves.
LEARNED = "demo-cleanup"
#: Training steps ``--train`` runs by default (see bench/training.py for how fast it beats MODEL).
TRAIN_STEPS = 600
#: The rest of the demo's training config: bench/training.py's defaults, so its figures hold here.
#: What made the learned cleanup win (marker holes stuck on the set, soft hole edges, an MSE term)
#: are TrainConfig's own defaults for "cleanup" runs, so every cleanup training gets them.
TRAIN_SETTINGS: dict[str, ParamValue] = {"crop": 96, "batch": 8, "lr": 2e-3, "warmup": 50}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge demo", description=__doc__)
    parser.add_argument("--out", default="plateforge-demo", help="folder to write into (default ./plateforge-demo)")
    parser.add_argument("--frames", type=int, default=24, help="length of the synthetic shot (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic shot (default 0)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON on stdout")
    parser.add_argument(
        "--train",
        action="store_true",
        help=f"also train a learned cleanup on the shot (self-supervised: plates and masks only); compare with {MODEL}",
    )
    parser.add_argument(
        "--train-steps", type=int, default=TRAIN_STEPS, help=f"training steps with --train (default {TRAIN_STEPS})"
    )
    parser.add_argument("--size", default="small", help="net size with --train: small, medium or large (default small)")
    parser.add_argument(
        "--matte-train-steps",
        type=int,
        default=demo_matte.TRAIN_STEPS,
        help=f"training steps of the learned matte with --train (default {demo_matte.TRAIN_STEPS})",
    )
    add_quiet_argument(parser)
    add_server_arguments(parser)
    return parser


def _rgb(frame: Frame) -> np.ndarray:
    return frame.stack(("R", "G", "B"))


def _overlay(plate: Frame, mask: Frame) -> np.ndarray:
    """The plate with the mask tinted red, as a compositor's viewer shows a roto."""
    rgb = to_display(_rgb(plate)).astype(np.float32)
    alpha = np.clip(mask.channels[mask_channel_name(mask.channels)].astype(np.float32), 0, 1)[..., None]
    tint = np.array([255.0, 40.0, 40.0], np.float32)
    return np.asarray(np.round(rgb * (1 - 0.6 * alpha) + tint * 0.6 * alpha), dtype=np.uint8)


@dataclass(frozen=True)
class _Scores:
    """PSNR per frame of a cleaned sequence against the exact clean plate."""

    inside: list[float]  # inside the mask, where the work is
    whole: list[float]  # over the whole frame

    @property
    def mean_inside(self) -> float:
        return float(np.mean([v for v in self.inside if math.isfinite(v)]))

    @property
    def worst_inside(self) -> float:
        return float(np.min([v for v in self.inside if math.isfinite(v)]))

    @property
    def mean_whole(self) -> float:
        return float(np.mean([v for v in self.whole if math.isfinite(v)]))

    def figures(self) -> dict[str, object]:
        return {
            "psnr_in_mask_db": {"mean": self.mean_inside, "min": self.worst_inside},
            "psnr_frame_db": {"mean": self.mean_whole},
        }


def _score(shot: Shot, pattern: str) -> _Scores:
    inside, whole = [], []
    for number, clean, mask in zip(shot.frame_numbers, shot.cleans, shot.masks, strict=True):
        result = read_exr(frame_path(pattern, number))
        weight = mask.channels[mask_channel_name(mask.channels)].astype(np.float32)
        inside.append(psnr(_rgb(result), _rgb(clean), mask=weight))
        whole.append(psnr(_rgb(result), _rgb(clean)))
    return _Scores(inside, whole)


def _write_manifest(out: Path, patterns: dict[str, str]) -> Path:
    """The demo shot's dataset manifest: its plates and masks, licensed for training (the clean
    plates are ground truth for scoring and are not listed: the model never sees them)."""
    sources = [
        Source(
            path=Path(patterns[role]).name.replace("####", "*"),
            licence="CC0-1.0",
            rights_holder="plateforge demo (synthetic)",
            permitted_uses=("train", "evaluate", "infer"),
            role=role,
        )
        for role in ("plate", "mask")
    ]
    return write_manifest(
        out / "shot.toml", name="demo-shot", sources=sources, comment="the synthetic shot of plateforge demo"
    )


def _train(client: Client, manifest: Path, args: argparse.Namespace) -> tuple[str, float]:
    """Train the learned cleanup on the shot as a server job; the served model's name and the seconds taken."""
    jobs = TrainingClient(client)
    started = time.monotonic()
    params: dict[str, ParamValue] = {"steps": args.train_steps, "size": args.size, **TRAIN_SETTINGS}
    job = jobs.start_training(dataset=str(manifest.resolve()), tool="cleanup", params=params, model_name=LEARNED)
    if not args.quiet:
        print(f"training {LEARNED} on the shot: job {job.id}, {job.steps} steps", file=sys.stderr, flush=True)
    last = follow(jobs.watch(job.id), quiet=args.quiet)
    if last is None or last.state != "SUCCEEDED":
        raise PlateforgeError(f"the demo's training job {job.id} did not succeed: {describe(jobs.get(job.id))}")
    return LEARNED, time.monotonic() - started


def _clean(
    client: Client, model: str, patterns: dict[str, str], frames: list[int], pattern: str, *, quiet: bool
) -> list[Path]:
    job = SequenceJob(
        model=model,
        inputs={"plate": patterns["plate"], "mask": patterns["mask"]},
        frames=frames,
        outputs={"": pattern},
    )
    return run_sequence(client, job, progress=ProgressLine(model, quiet=quiet))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    started = time.monotonic()

    shot = make_shot(frames=args.frames, seed=args.seed)
    patterns = write_shot(shot, out)
    frames = shot.frame_numbers
    cleaned = str(out / "cleaned" / "cleaned.####.exr")
    learned = str(out / "learned" / "learned.####.exr")
    # A private server keeps the demo's model and job out of the user's own models folder.
    private = ("--models-dir", str(out / "models"), "--jobs-dir", str(out / "jobs"))
    train_seconds = 0.0
    matte = demo_matte.MatteDemo(out / "matte", seed=args.seed, quiet=args.quiet)
    matte_seconds = 0.0
    with connect(args, quiet=args.quiet, local_args=private) as client:
        written = _clean(client, MODEL, patterns, frames, cleaned, quiet=args.quiet)
        matte.key(client, demo_matte.MODEL, "classical")
        if args.train:
            model, train_seconds = _train(client, _write_manifest(out, patterns), args)
            _clean(client, model, patterns, frames, learned, quiet=args.quiet)
            matte_model, matte_seconds = matte.train(client, args.matte_train_steps, args.size)
            matte.key(client, matte_model, "learned")

    # Score against the exact clean plate, inside the mask (where the work is) and over the frame.
    classical = _score(shot, cleaned)
    trained = _score(shot, learned) if args.train else None
    untouched = [
        psnr(_rgb(plate), _rgb(clean), mask=mask.channels[mask_channel_name(mask.channels)].astype(np.float32))
        for plate, clean, mask in zip(shot.plates, shot.cleans, shot.masks, strict=True)
    ]

    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    rows = []
    for k in picks:
        row = [to_display(_rgb(shot.plates[k])), _overlay(shot.plates[k], shot.masks[k])]
        row.append(to_display(_rgb(read_exr(frame_path(cleaned, frames[k])))))
        if args.train:
            row.append(to_display(_rgb(read_exr(frame_path(learned, frames[k])))))
        row.append(to_display(_rgb(shot.cleans[k])))
        rows.append(row)
    sheet = out / "contact_sheet.png"
    write_png(sheet, contact_sheet(rows))

    mean_before = float(np.mean(untouched))
    seconds = round(time.monotonic() - started, 1)
    figures: dict[str, object] = {
        "model": MODEL,
        "frames": len(frames),
        "size": [shot.width, shot.height],
        **classical.figures(),
        "psnr_in_mask_before_cleanup_db": {"mean": mean_before},
        "seconds": seconds,
    }
    print(f"wrote {len(written)} cleaned frames: {written[0].parent}/", file=sys.stderr)
    print(f"  plates        {patterns['plate']}")
    print(f"  masks         {patterns['mask']}")
    print(f"  ground truth  {patterns['clean']}")
    print(f"  cleaned       {cleaned}  ({MODEL})")
    columns = "plate | mask | cleaned | truth"
    if trained is not None:
        print(f"  learned       {learned}  ({LEARNED}, trained on this shot's own plates and masks)")
        columns = f"plate | mask | {MODEL} | {LEARNED} | truth"
    rows_named = [frames[k] for k in picks]
    print(f"  contact sheet {sheet}  (rows: frames {rows_named}; columns: {columns})")
    print(
        f"PSNR inside the mask vs ground truth: mean {classical.mean_inside:.2f} dB, worst frame "
        f"{classical.worst_inside:.2f} dB (the uncleaned plate scores {mean_before:.2f} dB); whole frame "
        f"{classical.mean_whole:.2f} dB; {seconds} s"
    )
    if trained is not None:
        margins = [a - b for a, b in zip(trained.inside, classical.inside, strict=True)]
        better = sum(m > 0 for m in margins)
        figures["learned"] = {
            "model": LEARNED,
            "train_steps": args.train_steps,
            "train_size": args.size,
            "train_seconds": round(train_seconds, 1),
            **trained.figures(),
            "margin_in_mask_db": {"mean": trained.mean_inside - classical.mean_inside, "min": float(min(margins))},
            "frames_better": better,
        }
        verdict = "beats" if trained.mean_inside > classical.mean_inside else "does NOT beat"
        print(
            f"learned ({LEARNED}, {args.train_steps} steps, {train_seconds:.0f} s of training): mean "
            f"{trained.mean_inside:.2f} dB inside the mask, worst frame {trained.worst_inside:.2f} dB; it {verdict} "
            f"{MODEL} by {trained.mean_inside - classical.mean_inside:+.2f} dB "
            f"(better on {better} of {len(frames)} frames)"
        )
    figures["matte"] = _report_matte(matte, args, matte_seconds)
    if args.json:
        print(json.dumps(figures))
    return 0


def _report_matte(matte: demo_matte.MatteDemo, args: argparse.Namespace, train_seconds: float) -> dict[str, object]:
    """Score the matte shot (frames that are not keyframes), write its contact sheet, print the figures."""
    scored = [i for i in range(len(matte.frames)) if i not in demo_matte.KEYFRAMES]
    classical = matte.score("classical", scored)
    learned = matte.score("learned", scored) if args.train else None
    picks = [scored[0], scored[-1]]
    rows = []
    for index in picks:
        row = matte.sheet_row("classical", index)
        if learned is not None:
            row += matte.sheet_row("learned", index)[1:]
        row.append(to_display(matte.shot.composite(index)))
        rows.append(row)
    sheet = matte.folder / "contact_sheet.png"
    write_png(sheet, contact_sheet(rows))
    columns = "plate | alpha | composite" + (" | learned alpha | learned composite" if learned else "") + " | truth"
    print(f"  matte shot    {matte.patterns['plate']}  (clean plates, exact alphas, new backgrounds beside it)")
    print(f"  matte         {matte.outputs('classical')['composite']}  ({demo_matte.MODEL}, over the new background)")
    print(f"  matte sheet   {sheet}  (rows: frames {[matte.frames[k] for k in picks]}; columns: {columns})")
    frames = [matte.frames[k] for k in scored]
    print(
        f"matte ({demo_matte.MODEL}) on frames {frames} (not keyframes) vs ground truth: alpha SAD "
        f"{classical.mean_sad:.3f} (sum |error| / 1000, mean per frame), composite PSNR {classical.mean_psnr:.2f} dB"
    )
    figures: dict[str, object] = {"model": demo_matte.MODEL, "frames": frames, **classical.figures()}
    if learned is not None:
        beats = learned.mean_sad < classical.mean_sad and learned.mean_psnr > classical.mean_psnr
        verdict = "beats" if beats else "does NOT beat"
        print(
            f"learned matte ({demo_matte.LEARNED}, {len(demo_matte.KEYFRAMES)} keyframe mattes, "
            f"{args.matte_train_steps} steps, {train_seconds:.0f} s of training): alpha SAD {learned.mean_sad:.3f}, "
            f"composite PSNR {learned.mean_psnr:.2f} dB; it {verdict} {demo_matte.MODEL} "
            f"(SAD {learned.mean_sad - classical.mean_sad:+.3f}, "
            f"PSNR {learned.mean_psnr - classical.mean_psnr:+.2f} dB)"
        )
        figures["learned"] = {
            "model": demo_matte.LEARNED,
            "keyframes": [matte.frames[k] for k in demo_matte.KEYFRAMES],
            "train_steps": args.matte_train_steps,
            "train_seconds": round(train_seconds, 1),
            **learned.figures(),
            "beats_classical": beats,
        }
    return figures
