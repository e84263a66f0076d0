"""Model cards on the host: the safetensors header read by hand, the card checked, no torch."""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plateforge.errors import ModelIntegrityError
from plateforge.modelcards import (
    CARD_KEY,
    CARD_SCHEMA,
    KNOWN_CARD_SCHEMAS,
    check_card,
    model_files,
    read_card_from_safetensors,
    read_card_json,
    read_model_card,
    read_safetensors_header,
)

SHA_A = "a" * 64


def valid_card() -> dict[str, Any]:
    """A complete schema-1 card as the server writes it inside the weights (no weights hash)."""
    return {
        "schema": CARD_SCHEMA,
        "name": "sh010-cleanup",
        "version": "3",
        "tool": "cleanup",
        "description": "paint-out for sh010",
        "net": {"arch": "unet", "config": {"width": 32, "depth": 4}},
        "inputs": [{"name": "plate", "description": "", "required": True, "channels": ["R"], "temporal_radius": 0}],
        "outputs": [{"name": "image", "description": "", "channels": []}],
        "parameters": [
            {
                "name": "strength",
                "kind": "float",
                "default": 1.0,
                "label": "",
                "description": "",
                "minimum": 0.0,
                "maximum": None,
                "choices": [],
            }
        ],
        "padding": 16,
        "sources": [
            {"path": "plates/sh010.1001.exr", "sha256": SHA_A, "licence": "CC-BY-4.0", "rights_holder": "ACME"}
        ],
        "base_model": {"name": "sd-inpaint", "licence": "LicenseRef-studio-7", "sha256": "b" * 64},
        "code_version": {"plateforge": "0.1.0", "git_commit": None},
        "training": {"steps": 100, "lr": 0.001},
        "metrics": {"psnr": 32.5},
        "created": "2025-01-31T12:00:00Z",
        "weights_sha256": None,
    }


def safetensors_bytes(
    tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None
) -> bytes:
    """A safetensors file built by hand: name -> (dtype, shape, raw bytes)."""
    header: dict[str, Any] = {"__metadata__": metadata} if metadata is not None else {}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def weights_with(card: dict[str, Any]) -> bytes:
    return safetensors_bytes(
        {"w": ("F32", [2, 2], bytes(16)), "b": ("F16", [3], bytes(6))},
        {CARD_KEY: json.dumps(card), "format": "pt"},
    )


def write_model(folder: Path, card: dict[str, Any] | None = None) -> Path:
    """A model folder as the server writes it; returns the weights file."""
    card = card or valid_card()
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights_with(card))
    complete = {**card, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    (folder / "card.json").write_text(json.dumps(complete))
    return weights


# -- the header -----------------------------------------------------------------------------------


def test_header_is_read_without_the_data(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(weights_with(valid_card()))
    header = read_safetensors_header(path)
    assert header["w"] == {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    assert json.loads(header["__metadata__"][CARD_KEY]) == valid_card()


def test_a_file_with_no_tensors_and_no_metadata_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(struct.pack("<Q", 8) + b"{}      ")
    assert read_safetensors_header(path) == {}


def _good() -> bytes:
    return weights_with(valid_card())


DAMAGED: list[Any] = [
    pytest.param(lambda: b"", "too short", id="empty"),
    pytest.param(lambda: b"\x10\x00\x00", "too short", id="shorter-than-length"),
    pytest.param(lambda: struct.pack("<Q", 2**62) + b"{}", "at most", id="absurd-length"),
    pytest.param(lambda: struct.pack("<Q", 0), "claims 0 bytes", id="zero-length"),
    pytest.param(lambda: _good()[:40], "truncated", id="truncated-in-header"),
    pytest.param(lambda: _good()[:-3], "truncated", id="truncated-in-data"),
    pytest.param(lambda: _good() + b"xx", "cover", id="trailing-bytes"),
    pytest.param(lambda: struct.pack("<Q", 4) + b"[1] ", "not a JSON object", id="json-array"),
    pytest.param(lambda: struct.pack("<Q", 4) + b"{no}", "not valid JSON", id="bad-json"),
    pytest.param(lambda: struct.pack("<Q", 4) + b"{\xff\xfe}", "not valid JSON", id="bad-utf8"),
    pytest.param(lambda: struct.pack("<Q", 4) + b"\x00\x01\x02\x03", "not a JSON object", id="binary"),
    pytest.param(
        lambda: safetensors_bytes({}, {"n": 1}),  # type: ignore[dict-item]
        "__metadata__",
        id="metadata-not-text",
    ),
    pytest.param(lambda: safetensors_bytes({"w": ("F32", [3], bytes(8))}), "does not fit", id="size-mismatch"),
    pytest.param(lambda: safetensors_bytes({"w": ("F32", [-1], bytes(4))}), "shape", id="negative-shape"),
    pytest.param(
        lambda: struct.pack("<Q", 40) + b'{"w": {"dtype": "F32", "shape": [1]}}   ',
        "data_offsets",
        id="tensor-without-offsets",
    ),
]


@pytest.mark.parametrize(("make", "reason"), DAMAGED)
def test_damaged_headers_are_one_clear_error(tmp_path: Path, make: Callable[[], bytes], reason: str) -> None:
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(make())
    with pytest.raises(ModelIntegrityError) as caught:
        read_safetensors_header(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="does not exist"):
        read_safetensors_header(tmp_path / "nope.safetensors")
    with pytest.raises(ModelIntegrityError, match="is a directory"):
        read_safetensors_header(tmp_path)


# -- the card -------------------------------------------------------------------------------------


def test_valid_card_passes_and_reads_back_from_the_weights(tmp_path: Path) -> None:
    assert check_card(valid_card(), source="x") == valid_card()
    path = tmp_path / "model.safetensors"
    path.write_bytes(weights_with(valid_card()))
    assert read_card_from_safetensors(path) == valid_card()


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    card = copy.deepcopy(valid_card())
    change(card)
    return card


INVALID_CARDS: list[Any] = [
    pytest.param(
        _edit(lambda c: c.update(schema="plateforge.modelcard/9")), "unknown model card schema", id="schema-9"
    ),
    pytest.param(_edit(lambda c: c.pop("schema")), "no schema", id="no-schema"),
    pytest.param(_edit(lambda c: c.pop("sources")), "lacks key(s) ['sources']", id="missing-key"),
    pytest.param(_edit(lambda c: c.update(licence="MIT")), "unknown key(s) ['licence']", id="unknown-key"),
    pytest.param(_edit(lambda c: c.update(name="")), "'name' is empty", id="empty-name"),
    pytest.param(_edit(lambda c: c.update(padding="16")), "'padding' should be a whole number", id="padding-text"),
    pytest.param(_edit(lambda c: c.update(weights_sha256="abc")), "SHA-256", id="short-weights-hash"),
    pytest.param(_edit(lambda c: c["sources"][0].update(sha256="ZZ")), "sources[0]", id="bad-source-hash"),
    pytest.param(_edit(lambda c: c["sources"][0].pop("licence")), "['licence']", id="source-without-licence"),
    pytest.param(_edit(lambda c: c["base_model"].pop("licence")), "base_model", id="base-without-licence"),
    pytest.param(_edit(lambda c: c["inputs"][0].update(channels="RGB")), "list of text", id="channels-text"),
    pytest.param(_edit(lambda c: c["parameters"][0].update(kind="knob")), "one of float", id="param-kind"),
    pytest.param(_edit(lambda c: c["net"].pop("config")), "net", id="net-without-config"),
    pytest.param(_edit(lambda c: c.update(code_version={"plateforge": 1, "git_commit": None})), "text", id="code"),
    pytest.param(["not", "a", "card"], "holds no model card", id="a-list"),
    pytest.param(
        _edit(lambda c: c["sources"][0].update(contributors=[{"name": "Ana"}])), "{name, role}", id="contributor-role"
    ),
    pytest.param(
        _edit(lambda c: c["sources"][0].update(contributors="Ana Ruiz")), "contributors", id="contributors-text"
    ),
    pytest.param(_edit(lambda c: c.update(parent={"name": "a", "version": "1"})), "parent", id="parent-no-hash"),
    pytest.param(_edit(lambda c: c.update(parent=None)), "'parent' should be an object", id="parent-null"),
]


@pytest.mark.parametrize(("card", "expected"), INVALID_CARDS)
def test_invalid_cards_are_refused_naming_the_file(card: object, expected: str) -> None:
    with pytest.raises(ModelIntegrityError) as caught:
        check_card(card, source="/models/x/card.json")
    assert "/models/x/card.json" in str(caught.value) and expected in str(caught.value)


def test_unknown_schema_is_refused_with_the_known_list(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(weights_with({**valid_card(), "schema": "plateforge.modelcard/2"}))
    with pytest.raises(ModelIntegrityError) as caught:
        read_card_from_safetensors(path)
    message = str(caught.value)
    assert "'plateforge.modelcard/2'" in message and str(path) in message
    assert all(known in message for known in KNOWN_CARD_SCHEMAS)


def test_weights_without_a_card(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    path.write_bytes(safetensors_bytes({"w": ("U8", [4], bytes(4))}, {"format": "pt"}))
    with pytest.raises(ModelIntegrityError, match="holds no plateforge model card"):
        read_card_from_safetensors(path)
    path.write_bytes(safetensors_bytes({"w": ("U8", [4], bytes(4))}, {CARD_KEY: "{oops"}))
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        read_card_from_safetensors(path)


# -- a model folder -------------------------------------------------------------------------------


def test_model_folder_is_read_and_verified(tmp_path: Path) -> None:
    weights = write_model(tmp_path / "m")
    card = read_model_card(tmp_path / "m")
    assert card["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert read_model_card(weights) == card == read_model_card(tmp_path / "m" / "card.json")
    assert model_files(tmp_path / "m") == (weights, tmp_path / "m" / "card.json")


def test_changed_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    weights = write_model(tmp_path / "m")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one bit of one tensor: the header still reads
    weights.write_bytes(bytes(data))
    assert read_model_card(tmp_path / "m", verify=False)["name"] == "sh010-cleanup"
    with pytest.raises(ModelIntegrityError) as caught:
        read_model_card(tmp_path / "m")
    assert str(weights) in str(caught.value) and "changed since it was saved" in str(caught.value)


def test_card_json_that_disagrees_with_the_weights_is_refused(tmp_path: Path) -> None:
    write_model(tmp_path / "m")
    card_file = tmp_path / "m" / "card.json"
    card = json.loads(card_file.read_text())
    card_file.write_text(json.dumps({**card, "sources": []}))
    with pytest.raises(ModelIntegrityError, match=r"disagrees .* on \['sources'\]"):
        read_model_card(tmp_path / "m")


def test_missing_parts_of_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="not a model folder"):
        read_model_card(tmp_path / "nothing")
    write_model(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors' does not exist"):
        read_model_card(tmp_path / "m")
    (tmp_path / "m" / "card.json").unlink()
    with pytest.raises(ModelIntegrityError, match=r"card\.json' does not exist"):
        read_model_card(tmp_path / "m")


def test_card_json_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text("{")
    with pytest.raises(ModelIntegrityError, match="is not valid JSON"):
        read_card_json(path)
