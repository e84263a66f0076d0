from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch

from plateforge.errors import CancelledError
from plateforge_server.modelcard import load_weights
from plateforge_server.training import CheckpointError, TrainProgress, latest, load_checkpoint, train
from tests.plateforge_server.training.helpers import fast, write_pairs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "data", frames=3, size=48)


def _cancel_at(step: int) -> tuple[list[int], Any, Any]:
    seen: list[int] = []

    def progress(p: TrainProgress) -> None:
        seen.append(p.step)

    def cancelled() -> bool:
        return bool(seen) and seen[-1] >= step

    return seen, progress, cancelled


def test_resume_is_exact(tmp_path: Path, manifest: Path) -> None:
    config = fast(steps=12)
    straight = train(config, manifest_path=manifest, out_dir=tmp_path / "straight")

    seen, progress, cancelled = _cancel_at(6)
    with pytest.raises(CancelledError):
        train(config, manifest_path=manifest, out_dir=tmp_path / "split", progress=progress, cancelled=cancelled)
    assert seen == list(range(1, 7))
    seen.clear()
    resumed = train(config, manifest_path=manifest, out_dir=tmp_path / "split", progress=progress)
    assert seen == list(range(7, 13))
    assert resumed.resumed_from == 6
    assert resumed.steps == straight.steps == 12
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)

    a, b = load_weights(straight.model_dir), load_weights(resumed.model_dir)
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    ca, cb = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert ca.step == cb.step == 12
    assert ca.optimizer["param_groups"] == cb.optimizer["param_groups"]
    for index, state in ca.optimizer["state"].items():
        for key, value in state.items():
            other = cb.optimizer["state"][index][key]
            assert torch.allclose(value, other, atol=1e-6, rtol=0), (index, key)
    assert ca.state["sampler"] == cb.state["sampler"]


def test_cancel_saves_a_checkpoint(tmp_path: Path, manifest: Path) -> None:
    _, progress, cancelled = _cancel_at(3)
    with pytest.raises(CancelledError, match="step 3"):
        train(fast(), manifest_path=manifest, out_dir=tmp_path / "run", progress=progress, cancelled=cancelled)
    found = latest(tmp_path / "run" / "checkpoints")
    assert found is not None and found.name == "ckpt-00000003.safetensors"
    assert load_checkpoint(found).step == 3


_KILLED_RUN = """
import sys
from plateforge_server.training import train
from tests.plateforge_server.training.helpers import fast
train(fast(steps=2000, checkpoint_every={every}), manifest_path=sys.argv[1], out_dir=sys.argv[2],
      progress=lambda p: print(p.step, flush=True))
"""


def test_killed_run_resumes_from_last_checkpoint(tmp_path: Path, manifest: Path) -> None:
    every = 4
    out = tmp_path / "run"
    folder = out / "checkpoints"
    code = textwrap.dedent(_KILLED_RUN.format(every=every))
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(manifest), str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(folder.glob("ckpt-*.safetensors")):
            assert process.poll() is None, "the training process ended early"
            assert time.monotonic() < deadline, "no checkpoint appeared within 60 s"
            time.sleep(0.02)
        time.sleep(0.1)  # let it get some way into the next interval
    finally:
        process.send_signal(signal.SIGKILL)
        stdout, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    reached = max(int(line) for line in stdout.split())
    saved = latest(folder)
    assert saved is not None
    step = load_checkpoint(saved).step
    assert step % every == 0 and reached - step <= every, (step, reached)

    seen, progress, cancelled = _cancel_at(step + 1)
    with pytest.raises(CancelledError):
        train(
            fast(steps=2000, checkpoint_every=every),
            manifest_path=manifest,
            out_dir=out,
            progress=progress,
            cancelled=cancelled,
        )
    assert seen == [step + 1]


def test_disk_full_keeps_previous_checkpoint(tmp_path: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = safetensors.torch.save_file
    calls: list[str] = []

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        calls.append(filename)
        if len(calls) == 1:
            real(tensors, filename, metadata=metadata)
            return
        Path(filename).write_bytes(b"\0" * 100)  # part of the file got out before the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    folder = tmp_path / "run" / "checkpoints"
    with pytest.raises(CheckpointError, match=r"disk full.*ckpt-00000004.*ckpt-00000002\.safetensors' is intact"):
        train(fast(steps=6, checkpoint_every=2), manifest_path=manifest, out_dir=tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt-00000002.safetensors"]  # no temp file left
    assert load_checkpoint(folder / "ckpt-00000002.safetensors").step == 2


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1000] ^= 0xFF  # inside the tensor data: only the recorded hash notices
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a checkpoint at all")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_truncate, id="truncated"),
        pytest.param(_flip_a_byte, id="flipped-byte"),
        pytest.param(_garbage, id="garbage"),
    ],
)
def test_damaged_last_checkpoint(tmp_path: Path, manifest: Path, damage: Any, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "run" / "checkpoints"
    train(fast(steps=4, checkpoint_every=2), manifest_path=manifest, out_dir=tmp_path / "run")
    last = folder / "ckpt-00000004.safetensors"
    damage(last)
    with pytest.raises(CheckpointError, match=r"ckpt-00000004\.safetensors"):
        load_checkpoint(last)
    with caplog.at_level(logging.WARNING):
        found = latest(folder)
    assert found == folder / "ckpt-00000002.safetensors"
    assert "ckpt-00000004.safetensors" in caplog.text and "falling back" in caplog.text
