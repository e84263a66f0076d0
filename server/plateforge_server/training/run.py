"""Train outside a server: one process, or one rank of a ``torchrun`` data-parallel run.

  python -m plateforge_server.training.run --dataset shot.toml --out /shared/runs/sh010 \\
      [--config run.json] [--param key=value ...]

  torchrun --nproc_per_node 4 -m plateforge_server.training.run --dataset ... --out ...
  torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 --nproc_per_node 8 \\
      -m plateforge_server.training.run --dataset ... --out /shared/runs/sh010

``--out`` must be storage every rank (every node) sees: rank 0 writes the checkpoints there, and a
rerun of the same command resumes from the newest one, which is how a farm recovers from a lost
node. The training config comes from ``--config`` (a JSON object of TrainConfig fields, e.g. one
a job wrote) and ``--param`` overrides, parsed as ``plateforge train`` parses them. Rank 0 prints
a progress line every ``--log-every`` steps on stderr and, at the end, the exported model's folder
on stdout. Exit status: 0 done, 1 failed (the error on stderr), 130 cancelled by SIGINT/SIGTERM
(after a checkpoint).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plateforge.errors import CancelledError, PlateforgeError, UsageError
from plateforge.models import parse_param
from plateforge_server.device import configure_threads
from plateforge_server.training.config import TrainConfig, with_mode_defaults
from plateforge_server.training.distributed import join
from plateforge_server.training.engine import TrainProgress, train

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plateforge_server.training.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset manifest (plateforge.dataset/1)")
    parser.add_argument("--out", required=True, help="run folder on storage every rank sees")
    parser.add_argument("--config", help="JSON file of TrainConfig fields")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a config field; repeatable")
    parser.add_argument("--log-every", type=int, default=50, help="steps between progress lines (default 50)")
    return parser


def load_config(path: str | None, params: Sequence[str]) -> TrainConfig:
    """TrainConfig defaults (and its mode's: ``with_mode_defaults``), then the JSON file's fields, then
    ``key=value`` overrides."""
    fields: dict[str, Any] = {}
    if path:
        try:
            given = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the training config {path}: {error}") from None
        if not isinstance(given, dict):
            raise UsageError(f"{path}: a training config is a JSON object of fields")
        given.pop("schema", None)
        fields.update(given)
    fields.update(dict(parse_param(p) for p in params))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UsageError(f"training config: unknown field(s) {unknown}; known fields: {sorted(known)}")
    return TrainConfig(**with_mode_defaults(fields))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    group = None
    try:
        configure_threads()
        config = load_config(args.config, args.param)
        group = join(config.device)

        def progress(p: TrainProgress) -> None:
            if group is not None and group.is_main and (p.step % args.log_every == 0 or p.step == p.steps):
                psnr = f" val psnr {p.val_psnr:.2f} dB" if p.val_psnr is not None else ""
                print(
                    f"step {p.step}/{p.steps} loss {p.loss:.5f}{psnr} ({p.seconds:.0f} s)", file=sys.stderr, flush=True
                )

        result = train(
            config, manifest_path=args.dataset, out_dir=args.out, progress=progress, cancelled=stop.is_set, group=group
        )
        if group.is_main:
            print(str(result.model_dir))
        # Every rank reports a digest of its final weights: DDP keeps them identical, and this shows it.
        print(
            f"rank {group.rank}/{group.world_size} done at step {result.steps} (resumed from {result.resumed_from}); "
            f"weights {result.weights_sha256}",
            file=sys.stderr,
            flush=True,
        )
        return 0
    except CancelledError as error:
        print(f"cancelled: {error}", file=sys.stderr)
        return 130
    except PlateforgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if group is not None:
            group.leave()


if __name__ == "__main__":
    sys.exit(main())
