"""List the training jobs on a server, oldest first: id, state, tool, step, loss, model or error.

Needs --server (or $PLATEFORGE_SERVER): jobs live on a running server.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence

from plateforge.cli.common import add_server_arguments, connect
from plateforge.client import server_address
from plateforge.errors import UsageError
from plateforge.jobs_client import JobInfo, TrainingClient

__all__ = ["main", "table"]


def table(jobs: Sequence[JobInfo]) -> str:
    """A fixed-width table, one job a row."""
    rows = [("ID", "STATE", "TOOL", "STEP", "LOSS", "PSNR", "MODEL / ERROR")]
    for job in jobs:
        rows.append(
            (
                job.id,
                job.state,
                job.tool,
                f"{job.step}/{job.steps}",
                f"{job.loss:.5f}" if job.step else "-",
                f"{job.val_psnr:.2f}" if job.val_psnr is not None else "-",
                job.model_dir or job.error,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)) + "  " + r[6] for r in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge jobs", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not server_address(args.server):
        raise UsageError("jobs live on a running server: give --server HOST:PORT (or set PLATEFORGE_SERVER)")
    with connect(args) as client:
        jobs = TrainingClient(client).list_jobs()
    if args.json:
        print(json.dumps([dataclasses.asdict(j) for j in jobs], indent=2))
    elif jobs:
        print(table(jobs))
    else:
        print("no jobs")
    return 0
