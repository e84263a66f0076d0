"""Starting server processes and waiting until they are ready.

When a CLI command gets no ``--server`` (and no ``PLATEFORGE_SERVER``), :func:`local_server`
starts ``python -m plateforge_server --port 0`` on 127.0.0.1 with a random token, waits for its
``listening on HOST:PORT`` line, and stops it when the command ends, so a single workstation
needs no set-up. :func:`start_ready` and :func:`stop` are the same steps for anything else that
prints that line (tests, benchmarks, farm wrappers).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from plateforge.commands import SERVER_PACKAGE
from plateforge.errors import ServerUnavailableError, UsageError

__all__ = ["READY_PREFIX", "LocalServer", "local_server", "start_ready", "stop"]

READY_PREFIX = "listening on "


@dataclass(frozen=True)
class LocalServer:
    address: str
    token: str
    process: subprocess.Popen[str]


def start_ready(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    on_stderr: Callable[[str], object] | None = None,
    own_session: bool = False,
) -> tuple[subprocess.Popen[str], str]:
    """Start ``command``; return it and the address from its ``listening on`` line.

    Its stderr is drained on a thread (to ``on_stderr``, line by line) so a chatty process never
    blocks on a full pipe. If no ready line comes within ``timeout`` the process is killed and
    :class:`ServerUnavailableError` carries the last lines it wrote. ``own_session``: start it in
    a session of its own, so a Ctrl-C at the terminal reaches only the caller, which stops it.
    """
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env else None,
        start_new_session=own_session,
    )
    errors: list[str] = []

    def drain_stderr() -> None:
        for line in process.stderr or ():
            errors.append(line)
            del errors[:-20]
            if on_stderr is not None:
                on_stderr(line)

    found: list[str] = []

    def read_ready() -> None:
        for line in process.stdout or ():
            if line.startswith(READY_PREFIX):
                found.append(line[len(READY_PREFIX) :].strip())
                break
        for _ in process.stdout or ():  # keep draining stdout too
            pass

    threading.Thread(target=drain_stderr, daemon=True).start()
    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found and time.monotonic() < deadline and process.poll() is None:
        reader.join(0.05)
    if not found:
        reader.join(0.5)  # a process that printed its line and exited at once: let the reader see it
    if not found:
        exited = process.poll()
        stop(process, timeout=5)
        tail = " | ".join(line.strip() for line in errors[-5:] if line.strip())
        name = " ".join(os.path.basename(part) for part in command[:4])
        why = f"exited with code {exited}" if exited is not None else f"did not report ready within {timeout:.0f} s"
        raise ServerUnavailableError(f"{name} … {why}" + (f": {tail}" if tail else ""))
    return process, found[0]


def stop(process: subprocess.Popen[str], *, timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; return the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextmanager
def local_server(*, extra_args: Sequence[str] = (), timeout: float = 120.0) -> Iterator[LocalServer]:
    """Start a private server for the duration of the ``with`` block."""
    if importlib.util.find_spec(SERVER_PACKAGE) is None or importlib.util.find_spec("cv2") is None:
        raise UsageError(
            "no server given (--server or PLATEFORGE_SERVER) and this Python cannot run one: "
            "install plateforge[server], or point at a running server"
        )
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "PLATEFORGE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", SERVER_PACKAGE, "--host", "127.0.0.1", "--port", "0", *extra_args]
    # Its own session: Ctrl-C stops the command's frames after the one in hand, not the server under them.
    process, address = start_ready(command, env=env, timeout=timeout, own_session=True)
    try:
        yield LocalServer(address=address, token=token, process=process)
    finally:
        stop(process)
