"""`init`: a run that starts from another plateforge model's weights, and what it refuses."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest
import torch

from plateforge.cli.main import main
from plateforge.errors import ModelIntegrityError, UsageError
from plateforge_server.modelcard import load_card, load_weights
from plateforge_server.training import TrainConfig, train
from tests.plateforge_server.jobs.test_jobs import TOKEN, training_server
from tests.plateforge_server.training.helpers import fast, one_thread, write_pairs

__all__ = ["one_thread"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), frames=2, size=32)


@pytest.fixture(scope="module")
def parent(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(fast(name="parent"), manifest_path=dataset, out_dir=tmp_path_factory.mktemp("parent")).model_dir


def test_a_fine_tune_starts_from_the_parent_and_records_it(parent: Path, dataset: Path, tmp_path: Path) -> None:
    # One step at a learning rate that cannot move a weight: the published net is the parent's.
    config = fast(name="child", init=str(parent), steps=1, lr=1e-12, warmup=0)
    child = train(config, manifest_path=dataset, out_dir=tmp_path / "child").model_dir
    fresh = train(dataclasses.replace(config, init=""), manifest_path=dataset, out_dir=tmp_path / "fresh").model_dir
    parent_weights, child_weights, fresh_weights = load_weights(parent), load_weights(child), load_weights(fresh)
    assert parent_weights.keys() == child_weights.keys()
    for name, tensor in parent_weights.items():
        assert torch.allclose(child_weights[name], tensor, atol=1e-7), name
    assert any(not torch.allclose(fresh_weights[n], t, atol=1e-4) for n, t in parent_weights.items())
    parent_card, child_card = load_card(parent), load_card(child)
    assert child_card.parent is not None and load_card(fresh).parent is None
    assert (child_card.parent.name, child_card.parent.version) == ("parent", parent_card.version)
    assert child_card.parent.sha256 == parent_card.weights_sha256
    assert child_card.training["init"] == str(parent)
    assert "fine-tuned from parent@" in child_card.lineage()
    # Step 0 of the fine-tune is the parent, not the identity: its start score is the parent's.
    assert child_card.metrics["identity_psnr"] != load_card(fresh).metrics["identity_psnr"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"tool": "relight"}, "is a 'look' model; this run trains 'relight'", id="other-tool"),
        pytest.param({"size": "medium"}, "has another net config than this run", id="other-size"),
        pytest.param({"input_channels": ("R", "G", "B", "A")}, "in_channels 3 (this run: 4)", id="other-channels"),
        pytest.param({"classical_start": True}, "is a 'unet' net; this run trains a 'affine-unet' net", id="arch"),
    ],
)
def test_an_incompatible_parent_is_refused_before_training(
    parent: Path, dataset: Path, tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    config = dataclasses.replace(fast(init=str(parent)), **changes)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as caught:
        train(config, manifest_path=dataset, out_dir=tmp_path)
    assert expected in str(caught.value) and "init model parent@" in str(caught.value)
    assert not (tmp_path / "checkpoints").exists()


def test_a_parent_that_is_no_model_or_was_changed_is_refused(parent: Path, dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a plateforge model folder"):
        train(fast(init=str(tmp_path)), manifest_path=dataset, out_dir=tmp_path / "a")
    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("card.json", "model.safetensors"):
        (changed / name).write_bytes((parent / name).read_bytes())
    data = bytearray((changed / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (changed / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="has changed since it was saved"):
        train(fast(init=str(changed)), manifest_path=dataset, out_dir=tmp_path / "b")
    with pytest.raises(UsageError, match="init is for plateforge nets"):
        TrainConfig(mode="lora", base_model="/x", init=str(parent))


def test_train_init_on_the_command_line(parent: Path, dataset: Path, tmp_path: Path) -> None:
    with training_server(tmp_path / "jobs") as server:
        common = ["--dataset", str(dataset), "--steps", "2", "--param", "batch=1", "--param", "crop=16"]
        common += ["--server", server.address, "--token", TOKEN]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["train", "--tool", "relight", "--init", str(parent), *common])
        assert code == 2 and "is a 'look' model; this run trains 'relight'" in err.getvalue()
        assert not list((tmp_path / "jobs").glob("*/job.json"))  # refused before a job existed
        out = io.StringIO()
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            # The parent was trained without the look tool's default classical start: say so.
            args = ["--tool", "look", "--name", "child", "--init", str(parent), "--param", "classical_start=false"]
            code = main(["train", *args, *common])
        assert code == 0, err.getvalue()
        child = load_card(out.getvalue().strip().splitlines()[-1])
        assert child.parent is not None and child.parent.sha256 == load_card(parent).weights_sha256
