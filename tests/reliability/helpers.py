"""What the reliability suite reads about a running server process, from /proc."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A ``/proc/PID/status`` memory line in KiB: VmRSS (now) or VmHWM (peak resident set)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def _file_name(target: str) -> str:
    """The name of a mapped or open file as /proc shows it: a path, or ``/memfd:NAME (deleted)``."""
    return Path(target.replace(" (deleted)", "")).name.removeprefix("memfd:")


def mapped_files(pid: int, prefix: str) -> set[str]:
    """Paths the process maps whose name starts with ``prefix`` (shared-memory regions, memfds too)."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and _file_name(parts[5]).startswith(prefix):
            found.add(parts[5])
    return found


def open_files(pid: int, prefix: str) -> set[str]:
    """Paths the process holds open whose name starts with ``prefix`` (shared-memory regions, memfds too)."""
    found = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(entry.readlink())
        except OSError:  # closed meanwhile
            continue
        if _file_name(target).startswith(prefix):
            found.add(target)
    return found


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
