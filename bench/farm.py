"""Farm benchmark: what do several servers and the Open Job Description layer change?

What is measured
----------------
On a synthetic shot (``plateforge.shots.synthetic``, 480x270 by default) with ``cleanup-classical``:

* ``one_server`` / ``two_servers`` -- frames per second of ``plateforge.batch.run_batch`` (the
  path ``plateforge process`` takes) over the whole shot, through one server, then through a
  client given both servers' addresses (gRPC ``round_robin`` spreads the frames; two requests
  in flight per server). Both servers are separate processes on 127.0.0.1, started before timing
  and warmed up with one untimed run, so model loading is not counted. Every run rewrites every
  frame (no skipping).
* ``direct_process`` -- wall time of one ``plateforge process`` command over the same frames
  against the first server (a fresh process: Python and client start-up included).
* ``openjd_shared_server`` -- wall time of ``openjd run farm/openjd/process-shot.yaml`` over the
  same frames in chunks of ``chunk_size``, against the same running server (``Server=``), so the
  difference from ``direct_process`` is the scheduling overhead: the OpenJD session, and one
  ``plateforge process`` start per chunk. ``openjd_overhead_s`` is that difference of medians and
  ``openjd_overhead_per_chunk_s`` the difference divided by the chunks; the ``_min_s`` variants
  take the difference of minima, steadier on a busy machine.
* ``openjd_session_server`` -- the same run with a server started and stopped by the template's
  step environment (its start-up and SIGTERM grace are in the time): the cost of the
  server-per-worker mode.

Runs are interleaved over ``repeats`` rounds; medians and minima are reported. On a shared
machine with few cores (``settings.cpu_count``) two servers compete for the same cores as the
client: the ratio says what spreading buys *here*, not on a farm of separate machines.

  python bench/farm.py [--frames 24] [--repeats 3] [--chunk-size 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from plateforge.batch import SequenceJob, run_batch
from plateforge.client import Client
from plateforge.localserver import start_ready, stop
from plateforge.shots.synthetic import make_shot, write_shot

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "farm" / "openjd" / "process-shot.yaml"
MODEL = "cleanup-classical"


def _bin(name: str) -> str:
    """A console script of this Python's environment (the venv the benchmark runs in)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"bench/farm.py: {name!r} not found beside {sys.executable} or on PATH")
    return found


def _stats(times: list[float], frames: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "frames_per_s": round(frames / median, 3),
        "all_s": [round(t, 4) for t in times],
    }


def _env(root: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env.update(
        PLATEFORGE_TOKEN=token,
        PYTHONUNBUFFERED="1",
        # Hermetic: no trained models of whoever runs it, no jobs in $HOME.
        PLATEFORGE_MODELS_DIR=str(root / "no-models"),
        PLATEFORGE_JOBS_DIR=str(root / "jobs"),
    )
    return env


def _run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"bench/farm.py: {command[0]} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="plateforge-bench-farm-"))
    try:
        return _measure(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    shot = root / "shot"
    write_shot(make_shot(width=args.width, height=args.height, frames=args.frames, seed=1), shot)
    token = secrets.token_urlsafe(16)
    env = _env(root, token)
    # "--token=": a urlsafe token starts with "-" one time in 64, and argparse then takes it for an option.
    serve = [sys.executable, "-m", "plateforge_server", "--port", "0", "--device", "cpu", f"--token={token}"]
    servers: list[tuple[subprocess.Popen[str], str]] = []
    try:
        for _ in range(2):
            servers.append(start_ready(serve, env=env, timeout=120))
        return _timed(args, root, shot, token, env, [address for _, address in servers])
    finally:
        for process, _ in servers:
            stop(process)


def _timed(
    args: argparse.Namespace, root: Path, shot: Path, token: str, env: dict[str, str], addresses: list[str]
) -> dict[str, Any]:
    first = 1001
    frames = list(range(first, first + args.frames))
    span = f"{first}-{first + args.frames - 1}"
    plateforge, openjd = _bin("plateforge"), _bin("openjd")
    inputs = {"plate": str(shot / "plate.####.exr"), "mask": str(shot / "mask.####.exr")}

    def batch(addrs: list[str]) -> Callable[[], float]:
        def go() -> float:
            job = SequenceJob(model=MODEL, inputs=inputs, frames=frames, outputs={"": str(root / "b" / "o.####.exr")})
            with Client(addrs, token=token, timeout=600.0) as client:
                client.wait_ready()
                started = time.perf_counter()
                report = run_batch(client, job)
                elapsed = time.perf_counter() - started
            if report.status != "done":
                raise SystemExit(f"bench/farm.py: batch over {addrs} ended {report.to_json()}")
            return elapsed

        return go

    direct = [plateforge, "process", "--model", MODEL, "--input", inputs["plate"], "--mask", inputs["mask"]]
    direct += ["--frames", span, "--output", str(root / "d" / "o.####.exr"), "--server", addresses[0]]
    template = [openjd, "run", str(TEMPLATE), "-p", f"Plate={inputs['plate']}", "-p", f"Mask={inputs['mask']}"]
    template += ["-p", f"Frames={span}", "-p", f"ChunkSize={args.chunk_size}", "-p", f"Plateforge={plateforge}"]
    template += ["-p", "Device=cpu"]

    def openjd_run(out: str, *extra: str) -> Callable[[], float]:
        def go() -> float:
            shutil.rmtree(root / out, ignore_errors=True)  # the template skips frames already done
            return _run([*template, "-p", f"Output={root / out / 'o.####.exr'}", *extra], env)

        return go

    methods: dict[str, Callable[[], float]] = {
        "one_server": batch(addresses[:1]),
        "two_servers": batch(addresses),
        "direct_process": lambda: _run(direct, env),
        "openjd_shared_server": openjd_run("j", "-p", f"Server={addresses[0]}"),
    }
    if not args.no_session_server:
        methods["openjd_session_server"] = openjd_run("s")
    batch(addresses)()  # warm-up: models loaded, connections made, files cached
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, method in methods.items():
            times[name].append(method())

    chunks = -(-args.frames // args.chunk_size)
    results: dict[str, Any] = {name: _stats(t, args.frames) for name, t in times.items()}
    results["openjd_shared_server"]["chunks"] = chunks
    results["two_vs_one_servers"] = round(
        results["two_servers"]["frames_per_s"] / results["one_server"]["frames_per_s"], 3
    )
    overhead = results["openjd_shared_server"]["median_s"] - results["direct_process"]["median_s"]
    results["openjd_overhead_s"] = round(overhead, 4)
    results["openjd_overhead_per_chunk_s"] = round(overhead / chunks, 4)
    # Minima: the steadier estimate where other work shares the cores (noise only adds time).
    least = results["openjd_shared_server"]["min_s"] - results["direct_process"]["min_s"]
    results["openjd_overhead_min_s"] = round(least, 4)
    results["openjd_overhead_per_chunk_min_s"] = round(least / chunks, 4)
    return {
        "settings": {
            "model": MODEL,
            "width": args.width,
            "height": args.height,
            "frames": args.frames,
            "chunk_size": args.chunk_size,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "grpc": grpc.__version__,
            "platform": platform.platform(),
            "servers": "2 subprocesses on 127.0.0.1, --device cpu",
        },
        "results": results,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=None, help="frames in the shot (default 24; 4 quick)")
    parser.add_argument("--width", type=int, default=None, help="frame width (default 480; 96 quick)")
    parser.add_argument("--height", type=int, default=None, help="frame height (default 270; 64 quick)")
    parser.add_argument("--chunk-size", type=int, default=None, help="frames per OpenJD task (default 8; 2 quick)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3; 1 quick)")
    parser.add_argument("--no-session-server", action="store_true", help="skip the server-per-session OpenJD run")
    parser.add_argument("--quick", action="store_true", help="a tiny shot, one round: checks, not numbers")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    defaults = (4, 96, 64, 2, 1) if args.quick else (24, 480, 270, 8, 3)
    for name, value in zip(("frames", "width", "height", "chunk_size", "repeats"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.frames < 1 or args.chunk_size < 1 or args.repeats < 1:
        raise SystemExit("bench/farm.py: --frames, --chunk-size and --repeats must be at least 1")
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
