"""Shared fixtures: the test data folder and real server processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plateforge.localserver import start_ready, stop
from tests.tls import certificate  # noqa: F401  (the one self-signed TLS fixture, for every test module)

REPO = Path(__file__).resolve().parents[1]
#: The shared test corpus: the project's shared/ folder beside the clone, or $PLATEFORGE_TESTDATA.
TESTDATA = Path(os.environ.get("PLATEFORGE_TESTDATA") or REPO.parent / "shared" / "testdata") / "openexr-images"
MISSING_TESTDATA = (
    f"the OpenEXR test images are missing: expected the folder {TESTDATA} "
    "(<clone>/../shared/testdata/openexr-images, or $PLATEFORGE_TESTDATA/openexr-images); "
    "put the project's shared/testdata there. Tests that need it fail rather than skip, "
    "so a CI that lost the corpus cannot pass."
)
TOKEN = "test-token-7d1f"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The OpenEXR test images; a failure (never a skip) naming where they must be when absent."""
    if not TESTDATA.is_dir():
        pytest.fail(MISSING_TESTDATA, pytrace=False)
    return TESTDATA


#: For tests that read TESTDATA directly (and their parameters): the same failure as the fixture.
needs_testdata = pytest.mark.needs_testdata


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_testdata: fails, naming where, when the OpenEXR test images are absent")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_testdata") is not None and not TESTDATA.is_dir():
        pytest.fail(MISSING_TESTDATA, pytrace=False)


@dataclass
class ServerProcess:
    """A real `plateforge serve` subprocess on 127.0.0.1."""

    process: subprocess.Popen[str]
    address: str
    token: str | None
    stderr_lines: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if sig == signal.SIGTERM:
            return stop(self.process, timeout=timeout)
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_server(*args: str, token: str | None = TOKEN, timeout: float = 60.0) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PLATEFORGE_TOKEN", "PLATEFORGE_SERVER")}
    env["PYTHONUNBUFFERED"] = "1"
    # Hermetic: never serve the trained models of whoever runs the tests.
    env.setdefault("PLATEFORGE_MODELS_DIR", str(REPO / "build" / "test-no-models"))
    env.setdefault("PLATEFORGE_JOBS_DIR", tempfile.mkdtemp(prefix="plateforge-jobs-"))
    command = [sys.executable, "-m", "plateforge_server", "--port", "0", "--device", "cpu", *args]
    if token:
        command += ["--token", token]
    stderr_lines: list[str] = []
    process, address = start_ready(command, env=env, timeout=timeout, on_stderr=stderr_lines.append)
    return ServerProcess(process, address, token, stderr_lines)


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
