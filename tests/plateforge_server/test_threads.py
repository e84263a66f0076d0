"""torch's CPU thread count follows the cores this process may use, or what it is told (issue 16.5)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from plateforge.errors import UsageError
from plateforge_server.device import THREADS_ENV, configure_threads, usable_cores
from tests.conftest import start_server


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_usable_cores_follow_the_affinity_and_the_cgroup_quota(tmp_path: Path) -> None:
    allowed = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max=cpu_max) == allowed
    cpu_max.write_text("50000 100000\n")  # half a CPU: one thread
    assert usable_cores(cpu_max=cpu_max) == 1
    cpu_max.write_text(f"{allowed * 300000} 100000\n")  # a quota above the affinity: the affinity
    assert usable_cores(cpu_max=cpu_max) == allowed
    assert usable_cores(cpu_max=tmp_path / "absent") == allowed
    cpu_max.write_text("garbage\n")
    assert usable_cores(cpu_max=cpu_max) == allowed


def test_configure_threads_sets_torch(restore_threads: None) -> None:
    assert configure_threads(environ={THREADS_ENV: "1"}) == 1 == torch.get_num_threads()
    assert configure_threads(2, environ={THREADS_ENV: "1"}) == 2 == torch.get_num_threads()  # the option wins
    assert configure_threads(environ={}) == usable_cores() == torch.get_num_threads()
    assert configure_threads(environ={"OMP_NUM_THREADS": "1"}) == 1 == torch.get_num_threads()
    assert configure_threads(environ={"OMP_NUM_THREADS": "1", THREADS_ENV: "2"}) == 2  # ours wins
    with pytest.raises(UsageError, match=f"{THREADS_ENV} must be a whole number of threads >= 1, got 'two'"):
        configure_threads(environ={THREADS_ENV: "two"})
    with pytest.raises(UsageError, match="got 0"):
        configure_threads(0)


def _started_threads(lines: list[str]) -> str:
    found = [line for line in lines if "torch uses" in line]
    assert found, "".join(lines[-20:])
    return found[0]


def test_a_server_limited_to_one_core_uses_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})  # the child inherits this thread's affinity, as under taskset -c
    try:
        proc = start_server()
    finally:
        os.sched_setaffinity(0, before)
    try:
        assert "torch uses 1 CPU thread(s) (usable cores)" in _started_threads(proc.stderr_lines)
    finally:
        proc.stop()


def test_the_environment_and_the_option_set_a_servers_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    proc = start_server()
    try:
        assert f"torch uses 3 CPU thread(s) ({THREADS_ENV})" in _started_threads(proc.stderr_lines)
    finally:
        proc.stop()
    proc = start_server("--threads", "2")
    try:
        assert "torch uses 2 CPU thread(s) (requested)" in _started_threads(proc.stderr_lines)
    finally:
        proc.stop()
