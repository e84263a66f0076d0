"""A private local server for one command, so a single workstation needs no set-up.

When a CLI command gets no ``--server`` (and no ``PLATEFORGE_SERVER``), it starts
``python -m plateforge.server --port 0`` on 127.0.0.1 with a random token, waits for its
``listening on HOST:PORT`` line, and stops it when the command ends.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from plateforge.errors import ServerUnavailableError, UsageError

__all__ = ["READY_PREFIX", "LocalServer", "local_server"]

READY_PREFIX = "listening on "


@dataclass(frozen=True)
class LocalServer:
    address: str
    token: str
    process: subprocess.Popen[str]


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    found: list[str] = []
    seen: list[str] = []

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(READY_PREFIX):
                found.append(line[len(READY_PREFIX) :].strip())
                return
            seen.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if not found:
        process.kill()
        _, err = process.communicate(timeout=10)
        tail = (err or "".join(seen)).strip().splitlines()[-5:]
        raise ServerUnavailableError(
            f"the local server did not start within {timeout:.0f} s" + (": " + " | ".join(tail) if tail else "")
        )
    return found[0]


@contextmanager
def local_server(*, extra_args: Sequence[str] = (), timeout: float = 120.0) -> Iterator[LocalServer]:
    """Start a private server for the duration of the ``with`` block."""
    if importlib.util.find_spec("plateforge.server") is None or importlib.util.find_spec("cv2") is None:
        raise UsageError(
            "no server given (--server or PLATEFORGE_SERVER) and this Python cannot run one: "
            "install plateforge[server], or point at a running server"
        )
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "PLATEFORGE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "plateforge.server", "--host", "127.0.0.1", "--port", "0", *extra_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        address = _read_ready_line(process, timeout)
        # Drain stderr so a chatty server never blocks on a full pipe.
        threading.Thread(target=lambda: process.stderr and process.stderr.read(), daemon=True).start()
        yield LocalServer(address=address, token=token, process=process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
