"""Saving and loading learned models: round trip, integrity checks, refused schemas."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch

import plateforge
from plateforge.errors import ModelIntegrityError, UsageError
from plateforge.modelcards import CARD_KEY, KNOWN_CARD_SCHEMAS, read_safetensors_header
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge_server.modelcard import (
    BaseModel,
    Contributor,
    ModelCard,
    NetSpec,
    ParentModel,
    SourceRecord,
    load_card,
    load_weights,
    save_model,
    verify_model,
)


def tiny_card() -> ModelCard:
    return ModelCard(
        name="sh010-cleanup",
        version="2",
        tool="cleanup",
        net=NetSpec("conv", {"width": 4, "kernel": 3}),
        description="paint-out tuned on sh010",
        inputs=(InputSpec("plate", channels=("R", "G", "B")), InputSpec("mask", required=False)),
        outputs=(OutputSpec("image", channels=("R", "G", "B")),),
        parameters=(
            ParamSpec("strength", "float", 1.0, minimum=0.0, maximum=2.0),
            ParamSpec("mode", "choice", "fast", choices=("fast", "best")),
        ),
        padding=8,
        sources=(
            SourceRecord("plates/sh010.1001.exr", "a" * 64, "LicenseRef-acme-sow-17", "ACME Pictures"),
            SourceRecord("fixes/sh010_fix.1001.exr", "b" * 64, "LicenseRef-acme-sow-17", "ACME Pictures"),
        ),
        base_model=BaseModel("inpaint-base", "CC-BY-4.0", "c" * 64),
        training={"steps": 200, "crop": 64, "lr": 0.0003, "dataset": "sh010-cleanup"},
        metrics={"psnr": 33.25, "ssim": 0.97},
    )


def tiny_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(4, generator=generator).to(torch.float16),
        "steps": torch.tensor([200], dtype=torch.int64),
    }


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "sh010-cleanup"
    save_model(folder, tensors=tiny_tensors(), card=tiny_card())
    return folder


def test_round_trip(saved: Path) -> None:
    weights = saved / "model.safetensors"
    assert sorted(p.name for p in saved.iterdir()) == ["card.json", "model.safetensors"]  # no temp files left
    card = verify_model(saved)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert card == dataclasses.replace(tiny_card(), weights_sha256=digest, created=card.created)
    assert load_card(saved) == card == load_card(weights)
    assert card.code_version.plateforge == plateforge.__version__
    assert card.created.endswith("Z")
    loaded = load_weights(saved, "cpu")
    for name, tensor in tiny_tensors().items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


def test_the_card_rides_inside_the_weights_without_its_own_hash(saved: Path) -> None:
    metadata = read_safetensors_header(saved / "model.safetensors")["__metadata__"]
    inside = json.loads(metadata[CARD_KEY])
    on_disk = json.loads((saved / "card.json").read_text())
    assert inside["weights_sha256"] is None and on_disk["weights_sha256"] is not None
    assert {**inside, "weights_sha256": on_disk["weights_sha256"]} == on_disk
    assert on_disk["schema"] == "plateforge.modelcard/1"


def test_card_dict_round_trip_and_model_info() -> None:
    card = tiny_card()
    assert ModelCard.from_dict(card.to_dict()) == card
    info = card.to_model_info()
    assert isinstance(info, ModelInfo)
    assert (info.name, info.version, info.tool, info.padding) == ("sh010-cleanup", "2", "cleanup", 8)
    assert info.input("plate").channels == ("R", "G", "B") and not info.input("mask").required
    assert info.parameters[1].choices == ("fast", "best")
    assert "LicenseRef-acme-sow-17" in info.provenance and "inpaint-base" in info.provenance


def test_saving_again_replaces_both_files(saved: Path) -> None:
    first = verify_model(saved).weights_sha256
    save_model(saved, tensors={"w": torch.ones(2)}, card=dataclasses.replace(tiny_card(), version="3"))
    card = verify_model(saved)
    assert card.version == "3" and card.weights_sha256 != first
    assert list(load_weights(saved)) == ["w"]


def test_tampered_weights_are_refused_naming_the_file(saved: Path) -> None:
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor; the header still reads
    weights.write_bytes(bytes(data))
    load_card(saved)  # the cards still agree; only the hash can tell
    for call in (verify_model, load_weights):
        with pytest.raises(ModelIntegrityError) as caught:
            call(saved)
        assert str(weights) in str(caught.value) and "changed since it was saved" in str(caught.value)


def test_corrupted_header_is_refused_naming_the_file(saved: Path) -> None:
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[:8] = struct.pack("<Q", len(data) * 4)
    weights.write_bytes(bytes(data))
    for call in (load_card, verify_model, load_weights):
        with pytest.raises(ModelIntegrityError) as caught:
            call(saved)
        assert str(weights) in str(caught.value) and "not a readable safetensors file" in str(caught.value)


def test_truncated_weights_are_refused(saved: Path) -> None:
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        verify_model(saved)


def test_missing_weights_are_refused(saved: Path) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors' does not exist"):
        load_weights(saved)


def test_unknown_schema_is_refused_with_the_known_list(saved: Path) -> None:
    card_file = saved / "card.json"
    card_file.write_text(json.dumps({**json.loads(card_file.read_text()), "schema": "plateforge.modelcard/7"}))
    with pytest.raises(ModelIntegrityError) as caught:
        load_card(saved)
    message = str(caught.value)
    assert str(card_file) in message and "'plateforge.modelcard/7'" in message
    assert all(known in message for known in KNOWN_CARD_SCHEMAS)
    with pytest.raises(ModelIntegrityError, match="unknown model card schema"):
        ModelCard.from_dict({**tiny_card().to_dict(), "schema": "plateforge.modelcard/0"})


def test_card_json_edited_after_saving_is_refused(saved: Path) -> None:
    card_file = saved / "card.json"
    card = json.loads(card_file.read_text())
    card["sources"][0]["licence"] = "CC0-1.0"  # a licence cannot be changed after the fact
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match=r"disagrees with the card inside .* on \['sources'\]"):
        verify_model(saved)


def test_what_cannot_be_saved_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    with pytest.raises(UsageError, match="torch tensors"):
        save_model(folder, tensors={"w": [1.0, 2.0]}, card=tiny_card())  # type: ignore[dict-item]
    with pytest.raises(UsageError, match="JSON"):
        save_model(folder, tensors={"w": torch.ones(1)}, card=dataclasses.replace(tiny_card(), metrics={"x": {1, 2}}))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        bad = dataclasses.replace(tiny_card(), sources=(SourceRecord("a.exr", "not-a-hash", "MIT", "me"),))
        save_model(folder, tensors={"w": torch.ones(1)}, card=bad)
    assert not folder.exists()  # nothing written for a refused card


def test_a_path_that_is_not_a_model_folder(tmp_path: Path) -> None:
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelIntegrityError, match=r"is not a model folder \(it is a file; a model folder holds"):
        load_card(other)
    with pytest.raises(ModelIntegrityError, match="it does not exist"):
        verify_model(tmp_path / "nowhere")


def test_contributors_and_parent_round_trip_and_are_left_out_when_empty(tmp_path: Path) -> None:
    plain = tiny_card().to_dict()
    assert "parent" not in plain and all("contributors" not in s for s in plain["sources"])
    people = (Contributor("Ana Ruiz", "keyframe matte"), Contributor("studio:4411", "paint fix"))
    card = dataclasses.replace(
        tiny_card(),
        sources=(dataclasses.replace(tiny_card().sources[0], contributors=people), tiny_card().sources[1]),
        parent=ParentModel("sh010-cleanup", "1", "d" * 64),
    )
    data = card.to_dict()
    assert data["parent"] == {"name": "sh010-cleanup", "version": "1", "sha256": "d" * 64}
    assert data["sources"][0]["contributors"] == [
        {"name": "Ana Ruiz", "role": "keyframe matte"},
        {"name": "studio:4411", "role": "paint fix"},
    ]
    assert "contributors" not in data["sources"][1]
    save_model(tmp_path / "m", tensors=tiny_tensors(), card=card)
    loaded = verify_model(tmp_path / "m")
    assert loaded.parent == card.parent and loaded.sources == card.sources
    assert "fine-tuned from sh010-cleanup@1" in loaded.lineage()
