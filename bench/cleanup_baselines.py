"""cleanup-classical against its baselines, per shot, with where each pixel of the mask came from.

For each shot (analytic ``make_shot(seed=...)`` or a real-footage case,
:mod:`plateforge_server.tools.cleanup.footage`), prints one JSON line: PSNR inside the mask of
cleanup-classical, of the aligned temporal median (global transform only, then Telea) and of
OpenCV Telea alone, each over the whole mask, the pixels some neighbouring frame shows and those
none does (``psnr``, ``psnr_shown``, ``psnr_unseen``), and the share of the mask each stage of the
classical fill filled (``flow``, ``homography``, ``fallback``, ``spatial``). For cleanup-classical also its
headroom (:meth:`CleanupScene.headroom`): the share of its squared error on the unseen pixels and its
PSNR were they exact, the most the learned cleanup (a net that changes only those pixels) can win.
No training: seconds a shot.

    nice env OMP_NUM_THREADS=1 .venv/bin/python bench/cleanup_baselines.py --kind footage --seeds 100,101

Tune seeds only (analytic 100..109, footage 100, 101) unless ``--allow-report`` (issue 16 item 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from plateforge.shots.synthetic import make_shot
from plateforge_server.tools.cleanup import footage
from plateforge_server.tools.cleanup.evaluation import CleanupScene

TUNE_SEEDS = {"analytic": range(100, 110), "footage": footage.TUNE_SEEDS}
_TESTDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "openexr-images"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=sorted(TUNE_SEEDS), default="analytic")
    parser.add_argument("--seeds", default="100,101")
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--height", type=int, default=136)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--testdata", type=Path, default=_TESTDATA, help="the openexr-images folder (footage)")
    parser.add_argument("--allow-report", action="store_true", help="measure report seeds (defaults committed)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.allow_report and any(s not in TUNE_SEEDS[args.kind] for s in seeds):
        print(f"tune on {args.kind} seeds {list(TUNE_SEEDS[args.kind])} only (issue 16 item 1)", file=sys.stderr)
        return 2
    for seed in seeds:
        started = time.monotonic()
        size = {"width": args.width, "height": args.height, "frames": args.frames}
        if args.kind == "footage":
            shot = footage.make_footage_shot(args.testdata, seed=seed, **size)
        else:
            shot = make_shot(seed=seed, **size)
        scene = CleanupScene(shot)
        row: dict[str, object] = {"kind": args.kind, "seed": seed, **size}
        row["fractions"] = {name: round(share, 4) for name, share in scene.fractions.items()}
        for name, results in (("classical", scene.classical()), ("median", scene.median()), ("telea", scene.spatial())):
            figures = scene.score(results)
            scored = {key: round(figures[key], 3) for key in ("psnr", "psnr_shown", "psnr_unseen")}
            if name == "classical":
                scored.update({key: round(value, 4) for key, value in scene.headroom(results).items()})
            row[name] = scored
        row["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
