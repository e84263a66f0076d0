"""Watch, cancel or resume one training job: plateforge job watch|cancel|resume ID.

watch follows the job's progress until it ends (Ctrl-C detaches; the job keeps running);
cancel asks it to checkpoint and stop; resume queues an INTERRUPTED, CANCELLED or FAILED job again
from its last checkpoint. Needs --server (or $PLATEFORGE_SERVER): jobs live on a running server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from plateforge.cli.common import add_server_arguments, connect
from plateforge.cli.progress import Progress, add_quiet_argument
from plateforge.client import server_address
from plateforge.errors import UsageError
from plateforge.jobs_client import JobEvent, JobInfo, TrainingClient

__all__ = ["describe", "follow", "main", "reattach_hint"]


def describe(job: JobInfo) -> str:
    """One line: id, state, step, loss, PSNR, and the model or the error."""
    psnr = f"  psnr {job.val_psnr:.2f} dB" if job.val_psnr is not None else ""
    loss = f"  loss {job.loss:.5f}" if job.step else ""
    tail = f"  model {job.model_dir}" if job.model_dir else (f"  error: {job.error}" if job.error else "")
    return f"job {job.id} {job.state.lower()}  step {job.step}/{job.steps}{loss}{psnr}{tail}"


def reattach_hint(job_id: str, server: str) -> str:
    return f"detached; job {job_id} keeps running. Re-attach: plateforge job watch {job_id} --server {server}"


def follow(events: Iterable[JobEvent], *, stream: TextIO | None = None, quiet: bool = False) -> JobInfo | None:
    """Show each step's progress (:class:`Progress`: a bar in place on a terminal, a line every 50
    steps off one) and a line per state change; nothing when ``quiet``. The job as last seen."""
    last: JobInfo | None = None
    progress: Progress | None = None
    try:
        for event in events:
            job = last = event.job
            if progress is None:
                progress = Progress(f"train {job.id} step", unit="steps", stream=stream, quiet=quiet, every=50)
            if event.state_changed:
                progress.event(describe(job))
                continue
            psnr = f"  psnr {job.val_psnr:5.2f} dB" if job.val_psnr is not None else ""
            progress.update(job.step, job.steps, f"loss {job.loss:.5f}{psnr}", eta=event.eta_seconds)
    finally:
        if progress is not None:
            progress.close()
    return last


def watch(jobs: TrainingClient, job_id: str, *, server: str, quiet: bool = False) -> int:
    """Follow a job; 0 when it SUCCEEDED, 1 when it ended otherwise, 130 when detached with Ctrl-C."""
    try:
        last = follow(jobs.watch(job_id), quiet=quiet)
    except KeyboardInterrupt:
        print("\n" + reattach_hint(job_id, server), file=sys.stderr, flush=True)
        return 130
    return 0 if last is not None and last.state == "SUCCEEDED" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateforge job", description=__doc__)
    parser.add_argument("action", choices=("watch", "cancel", "resume"))
    parser.add_argument("id", help="the job's id (see plateforge jobs)")
    parser.add_argument("--no-watch", action="store_true", help="resume: queue the job and return at once")
    add_quiet_argument(parser)
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not server_address(args.server):
        raise UsageError("jobs live on a running server: give --server HOST:PORT (or set PLATEFORGE_SERVER)")
    with connect(args) as client:
        jobs = TrainingClient(client)
        if args.action == "cancel":
            job = jobs.cancel(args.id)
            print(describe(job) + ("" if job.finished else "  (cancelling: it checkpoints, then stops)"))
            return 0
        if args.action == "resume":
            print(describe(jobs.resume(args.id)))
            if args.no_watch:
                return 0
        return watch(jobs, args.id, server=client.address, quiet=args.quiet)
