"""Choosing the compute device and torch's CPU thread count at run time, so the same server runs
on a laptop, a shared box and a GPU node."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

from plateforge.errors import UsageError

__all__ = ["THREADS_ENV", "configure_threads", "pick_device", "usable_cores"]

log = logging.getLogger(__name__)

#: Environment variable that sets torch's CPU thread count (a whole number >= 1), over the cores counted.
THREADS_ENV = "PLATEFORGE_TORCH_THREADS"
#: cgroup v2's CPU quota of this process's group: "max PERIOD" or "QUOTA PERIOD" (microseconds).
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def pick_device(requested: str = "auto") -> str:
    """``auto`` -> the first CUDA device if torch sees one, else ``cpu``; explicit names are checked."""
    try:
        import torch
    except ImportError:
        if requested in ("auto", "cpu"):
            return "cpu"
        raise UsageError(f"device {requested!r} needs torch, which is not installed") from None
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {requested!r} asked for, but torch sees no CUDA device")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return requested
    if requested == "cpu":
        return "cpu"
    raise UsageError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")


def usable_cores(*, cpu_max: Path = _CGROUP_CPU_MAX) -> int:
    """The CPU cores this process may run on: the CPUs its affinity mask allows
    (``os.sched_getaffinity``; a container's or ``taskset``'s limit), capped by the cgroup's CPU
    quota rounded up (``cpu.max``; a container limited to 2 CPUs of a 64-core host). At least 1.

    torch's default counts the host's cores instead; on a 2-core share of a busy machine its extra
    threads only wait on each other (measured here: 2 threads under load ran 10x slower than 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
        if quota != "max" and int(period) > 0:
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 file, or one this code does not understand: no cap
        pass
    return max(1, cores)


def configure_threads(requested: int | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    """Set torch's intra-op CPU thread count and return it: ``requested`` if given, else
    ``$PLATEFORGE_TORCH_THREADS``, else ``$OMP_NUM_THREADS``, else :func:`usable_cores`. Called
    when a server starts, and by training outside a server (``python -m
    plateforge_server.training.run``, the benches)."""
    env = os.environ if environ is None else environ
    source = "requested"
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):  # OpenMP's own variable, the usual way to pin a job, too
        if requested is None and env.get(name, "").strip():
            raw = env[name].strip()
            try:
                requested = int(raw)
            except ValueError:
                raise UsageError(f"{name} must be a whole number of threads >= 1, got {raw!r}") from None
            source = name
    if requested is not None and (isinstance(requested, bool) or requested < 1):
        raise UsageError(f"torch threads must be a whole number >= 1, got {requested!r} ({source})")
    threads = requested if requested is not None else usable_cores()
    import torch

    torch.set_num_threads(threads)
    log.info("torch uses %d CPU thread(s) (%s)", threads, source if requested is not None else "usable cores")
    return threads
