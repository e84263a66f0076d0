"""Reading the model card that an exported model carries, without torch or onnx.

``plateforge export`` writes a model as ONNX (the card in the file's ``metadata_props``) or as
TorchScript (the card in ``card.json`` beside it). :func:`read_export_card` gives the card back
from either, checked like every card (:func:`plateforge.modelcards.check_card`), so
``plateforge provenance`` answers for an export as for the model it came from.

An ONNX file is a protobuf ``onnx.ModelProto``; its ``metadata_props`` are field 14, each a
``StringStringEntryProto`` (key field 1, value field 2). Only those are decoded here, by walking
the wire format; every other field is skipped by its length, so a large graph costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from plateforge.errors import ModelIntegrityError
from plateforge.exr import StrPath
from plateforge.modelcards import CARD_FILE, check_card

__all__ = [
    "CARD_KEY",
    "INPUTS_KEY",
    "MIN_SIZE_KEY",
    "MODEL_HASH_KEY",
    "ONNX_SUFFIX",
    "OUTPUTS_KEY",
    "STRIDE_KEY",
    "TORCHSCRIPT_SUFFIX",
    "onnx_metadata",
    "read_export_card",
]

#: metadata_props key of the model card (JSON), the same key safetensors files use.
CARD_KEY: Final = "plateforge.card"
#: sha256 of the weights the export was made from.
MODEL_HASH_KEY: Final = "plateforge.model_hash"
#: JSON list of the input tensor's channels in order, "input.channel" ("plate.R", "mask.A").
INPUTS_KEY: Final = "plateforge.input_channels"
#: JSON list of the output tensor's channels in order.
OUTPUTS_KEY: Final = "plateforge.output_channels"
#: The graph pads height and width to a multiple of this.
STRIDE_KEY: Final = "plateforge.stride"
#: The smallest height and width the graph runs as the server does.
MIN_SIZE_KEY: Final = "plateforge.min_size"
ONNX_SUFFIX: Final = ".onnx"
TORCHSCRIPT_SUFFIX: Final = ".pt"

_METADATA_FIELD: Final = 14


def _varint(data: bytes, at: int, path: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ModelIntegrityError(f"'{path}' is not an ONNX file: a truncated or overlong varint at byte {at}")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes, path: str) -> list[tuple[int, bytes | int]]:
    """(field number, value) of one protobuf message; length-delimited values as bytes."""
    fields: list[tuple[int, bytes | int]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at, path)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at, path)
            fields.append((number, value))
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            size, at = _varint(data, at, path)
            if at + size > len(data):
                raise ModelIntegrityError(f"'{path}' is not an ONNX file: field {number} runs past the end")
            fields.append((number, data[at : at + size]))
            at += size
        else:
            raise ModelIntegrityError(f"'{path}' is not an ONNX file: wire type {wire} at byte {at}")
        if at > len(data):
            raise ModelIntegrityError(f"'{path}' is not an ONNX file: it ends inside field {number}")
    return fields


def onnx_metadata(path: StrPath) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX file at ``path``."""
    name = str(path)
    data = Path(path).read_bytes()
    metadata: dict[str, str] = {}
    for number, value in _fields(data, name):
        if number != _METADATA_FIELD or not isinstance(value, bytes):
            continue
        entry = {n: v for n, v in _fields(value, name) if isinstance(v, bytes)}
        try:
            metadata[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        except UnicodeDecodeError:
            raise ModelIntegrityError(f"'{name}': a metadata_props entry is not UTF-8") from None
    return metadata


def read_export_card(path: StrPath) -> dict[str, Any]:
    """The model card of an exported model: an ``.onnx`` file's metadata, or the ``card.json``
    beside a TorchScript ``.pt`` file. A missing or damaged card is a :class:`ModelIntegrityError`
    naming the file."""
    target = Path(path)
    if target.suffix == ONNX_SUFFIX:
        text = onnx_metadata(target).get(CARD_KEY)
        if text is None:
            raise ModelIntegrityError(f"'{target}' carries no plateforge model card (metadata_props {CARD_KEY!r})")
        source = f"{target} metadata_props {CARD_KEY}"
    else:
        card_file = target.parent / CARD_FILE
        try:
            text = card_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelIntegrityError(f"'{target}' has no {CARD_FILE} beside it: its lineage is unknown") from None
        source = str(card_file)
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise ModelIntegrityError(f"'{source}' is not JSON: {exc}") from None
    return check_card(card, source=source)
