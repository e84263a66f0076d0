"""Shared fixtures: the test data folder and real server processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO.parent / "shared" / "testdata" / "openexr-images"
TOKEN = "test-token-7d1f"


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.skip(f"test images not found at {TESTDATA}")
    return TESTDATA


@dataclass
class ServerProcess:
    """A real `plateforge serve` subprocess on 127.0.0.1."""

    process: subprocess.Popen[str]
    address: str
    token: str | None
    stderr_lines: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_server(*args: str, token: str | None = TOKEN, timeout: float = 60.0) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PLATEFORGE_TOKEN", "PLATEFORGE_SERVER")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "plateforge.server", "--port", "0", "--device", "cpu", *args]
    if token:
        command += ["--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stderr is not None
    stderr_lines: list[str] = []
    threading.Thread(target=lambda: stderr_lines.extend(process.stderr or []), daemon=True).start()
    found: list[str] = []

    def read_ready() -> None:
        for line in process.stdout or []:
            if line.startswith("listening on "):
                found.append(line.split("listening on ", 1)[1].strip())
                return

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        process.kill()
        process.wait()
        raise RuntimeError("server did not print its ready line: " + "".join(stderr_lines[-20:]))
    return ServerProcess(process, found[0], token, stderr_lines)


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One real server for the session, with the built-in tools and a token."""
    proc = start_server()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[object]:
    from plateforge.client import Client

    with Client(server.address, token=server.token, timeout=120.0, retries=1) as c:
        yield c
