"""Fixtures for the generative tests. Each test module skips itself without the [generative] extra
(:func:`needs_generative`); a conftest cannot skip (pytest refuses that at collection)."""

from __future__ import annotations

import ipaddress
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plateforge_server.generative import write_licence
from tests.plateforge_server.generative.tiny import build_tiny_pipeline

LICENCE = "LicenseRef-plateforge-tests"
HOLDER = "plateforge test suite"


def needs_generative() -> None:
    """Skip the calling test module unless diffusers, transformers and peft import."""
    for name in ("diffusers", "transformers", "peft"):
        pytest.importorskip(
            name, reason=f"generative fill needs the [generative] extra ({name}): pip install -e '.[server,generative]'"
        )


#: Network use seen by the audit hook while a generative test runs: (event, address).
_ATTEMPTS: list[tuple[str, str]] = []
_WATCHING: list[bool] = []


def _loopback(host: object) -> bool:
    if host in ("localhost", None, ""):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[object, ...]) -> None:
    # Only Python-level sockets are seen (grpc's C core is not), which is what a hub download uses.
    if not _WATCHING:
        return
    if event == "socket.getaddrinfo" and not _loopback(args[0]):
        _ATTEMPTS.append((event, str(args[0])))
    elif event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) and address else None
        if isinstance(address, tuple) and not _loopback(host):
            _ATTEMPTS.append((event, str(address)))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while _WATCHING


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Every generative test runs with the hub off (for the server processes it starts), an empty
    hub cache that must stay empty, and fails if this process resolves or connects to any
    non-loopback address."""
    cache = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    _ATTEMPTS.clear()
    _WATCHING.append(True)
    try:
        yield cache
    finally:
        _WATCHING.clear()
    assert not _ATTEMPTS, f"a generative test touched the network: {_ATTEMPTS[:3]}"
    assert not cache.exists() or not any(cache.rglob("*")), f"something wrote into the hub cache {cache}"


@pytest.fixture(scope="session")
def tiny_pipeline_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random inpainting pipeline with its licence record (infer and train), built once."""
    folder = build_tiny_pipeline(tmp_path_factory.mktemp("generative") / "tiny-inpaint")
    write_licence(folder, name="tiny-inpaint", licence=LICENCE, rights_holder=HOLDER, permitted_uses=("infer", "train"))
    return folder


@pytest.fixture
def tiny_pipeline(tiny_pipeline_master: Path, tmp_path: Path) -> Path:
    """A copy of the tiny pipeline a test may damage."""
    return Path(shutil.copytree(tiny_pipeline_master, tmp_path / "tiny-inpaint"))
