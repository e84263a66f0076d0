"""TensorBoard event files of a run (``tensorboard: true``, ``plateforge train --tensorboard``):
every step's loss, every validation PSNR and the classical start as scalars, the preview as an
image, the same figures as the run's history.json; a resumed run adds only what is new."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from plateforge.cli.train import build_parser
from plateforge.errors import CancelledError
from plateforge_server.training import TrainProgress, train
from tests.plateforge_server.training.helpers import fast, one_thread, write_pairs

__all__ = ["one_thread"]  # autouse: torch on one thread


def events(folder: Path) -> list[event_pb2.Event]:
    """Every event of every file in ``folder``, files in name order (TFRecord framing)."""
    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            found.append(event_pb2.Event.FromString(data[at + 12 : at + 12 + length]))
            at += 12 + length + 4
    return found


def scalars(found: list[event_pb2.Event], tag: str) -> dict[int, float]:
    return {e.step: v.simple_value for e in found for v in e.summary.value if v.tag == tag}


def test_event_files_hold_the_runs_figures_and_previews(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    config = fast(steps=12, batch=1, crop=16, validation_size=32, preview_every=4, validation_every=4, tensorboard=True)
    train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    found = events(tmp_path / "run" / "tensorboard")

    losses = scalars(found, "loss/train")
    assert sorted(losses) == list(range(1, 13))
    assert all(losses[step] == np.float32(history["loss"][step - 1]) for step in losses)  # float32 in the file
    assert scalars(found, "psnr_db/validation") == {s: np.float32(v) for s, v in history["val_psnr"]}
    assert scalars(found, "psnr_db/start") == {0: np.float32(history["start_psnr"])}
    previews = [e for e in found for v in e.summary.value if v.tag == "preview"]
    assert [e.step for e in previews] == [4, 8, 12]
    image = next(v.image for v in previews[-1].summary.value)
    assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and image.width > 4 * 32

    # Without the setting: no event files.
    train(fast(steps=2, batch=1, crop=16, validation_size=32), manifest_path=manifest, out_dir=tmp_path / "plain")
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_the_cli_asks_for_it() -> None:
    args = build_parser().parse_args(["--dataset", "d.toml", "--tool", "look", "--tensorboard"])
    assert args.tensorboard is True


def test_a_resumed_run_adds_only_the_new_steps(tmp_path: Path) -> None:
    manifest = write_pairs(tmp_path / "data", frames=2, size=32)
    config = fast(
        steps=12, batch=1, crop=16, validation_size=32, preview_every=3, validation_every=3, checkpoint_every=3,
        tensorboard=True,
    )  # fmt: skip
    seen: list[TrainProgress] = []
    with pytest.raises(CancelledError):
        train(config, manifest_path=manifest, out_dir=tmp_path / "run", progress=seen.append,
              cancelled=lambda: len(seen) >= 6)  # fmt: skip
    train(config, manifest_path=manifest, out_dir=tmp_path / "run")
    found = events(tmp_path / "run" / "tensorboard")
    steps = [e.step for e in found for v in e.summary.value if v.tag == "loss/train"]
    assert steps == list(range(1, 13))  # each step once, across the two runs' files
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert scalars(found, "psnr_db/validation") == {s: np.float32(v) for s, v in history["val_psnr"]}
    assert len(scalars(found, "psnr_db/start")) == 1
