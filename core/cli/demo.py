"""Run the built-in demo: paint a rig out of a synthetic shot through a real server.

Makes a synthetic daily with exact ground truth (a panning textured background, a wire and a
rig to remove, their mask, and the clean plate), starts a private server (or uses --server),
cleans every frame with the classical cleanup model, and writes EXRs and a before/after
contact sheet into ./plateforge-demo/. Prints what it wrote and the PSNR inside the mask
against the ground truth.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from plateforge.batch import SequenceJob, run_sequence
from plateforge.cli.common import ProgressLine, add_server_arguments, connect
from plateforge.contactsheet import contact_sheet, to_display, write_png
from plateforge.exr import read_exr
from plateforge.frames import Frame, mask_channel_name
from plateforge.metrics import psnr
from plateforge.sequences import frame_path
from plateforge.synthetic import make_shot, write_shot

MODEL = "cleanup-classical"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge demo", description=__doc__)
    parser.add_argument("--out", default="plateforge-demo", help="folder to write into (default ./plateforge-demo)")
    parser.add_argument("--frames", type=int, default=24, help="length of the synthetic shot (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic shot (default 0)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON on stdout")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    started = time.monotonic()

    shot = make_shot(frames=args.frames, seed=args.seed)
    patterns = write_shot(shot, out)
    frames = shot.frame_numbers
    cleaned = str(out / "cleaned" / "cleaned.####.exr")
    job = SequenceJob(
        model=MODEL,
        inputs={"plate": patterns["plate"], "mask": patterns["mask"]},
        frames=frames,
        outputs={"": cleaned},
    )
    with connect(args) as client:
        written = run_sequence(client, job, progress=ProgressLine(MODEL))

    # Score against the exact clean plate, inside the mask (where the work is) and over the frame.
    inside, whole, untouched = [], [], []
    for number, plate, clean, mask in zip(frames, shot.plates, shot.cleans, shot.masks, strict=True):
        result = read_exr(frame_path(cleaned, number))
        weight = mask.channels[mask_channel_name(mask.channels)].astype(np.float32)
        inside.append(psnr(_rgb(result), _rgb(clean), mask=weight))
        whole.append(psnr(_rgb(result), _rgb(clean)))
        untouched.append(psnr(_rgb(plate), _rgb(clean), mask=weight))

    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    rows = []
    for k in picks:
        result = read_exr(frame_path(cleaned, frames[k]))
        rows.append(
            [
                to_display(_rgb(shot.plates[k])),
                _overlay(shot.plates[k], shot.masks[k]),
                to_display(_rgb(result)),
                to_display(_rgb(shot.cleans[k])),
            ]
        )
    sheet = out / "contact_sheet.png"
    write_png(sheet, contact_sheet(rows))

    finite = [v for v in inside if math.isfinite(v)]
    mean_in, worst_in = float(np.mean(finite)), float(np.min(finite))
    mean_frame = float(np.mean([v for v in whole if math.isfinite(v)]))
    mean_before = float(np.mean(untouched))
    seconds = round(time.monotonic() - started, 1)
    figures = {
        "model": MODEL,
        "frames": len(frames),
        "size": [shot.width, shot.height],
        "psnr_in_mask_db": {"mean": mean_in, "min": worst_in},
        "psnr_frame_db": {"mean": mean_frame},
        "psnr_in_mask_before_cleanup_db": {"mean": mean_before},
        "seconds": seconds,
    }
    print(f"wrote {len(written)} cleaned frames: {written[0].parent}/", file=sys.stderr)
    print(f"  plates        {patterns['plate']}")
    print(f"  masks         {patterns['mask']}")
    print(f"  ground truth  {patterns['clean']}")
    print(f"  cleaned       {cleaned}")
    rows_named = [frames[k] for k in picks]
    print(f"  contact sheet {sheet}  (rows: frames {rows_named}; columns: plate | mask | cleaned | truth)")
    print(
        f"PSNR inside the mask vs ground truth: mean {mean_in:.2f} dB, worst frame {worst_in:.2f} dB "
        f"(the uncleaned plate scores {mean_before:.2f} dB); whole frame {mean_frame:.2f} dB; {seconds} s"
    )
    if args.json:
        print(json.dumps(figures))
    return 0
