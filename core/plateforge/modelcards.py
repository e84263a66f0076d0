"""Model cards as they are saved on disk, read without torch or safetensors.

A learned model is a folder of two files, written by the server (``plateforge_server.modelcard``):

* ``model.safetensors`` — the weights. Its header metadata holds the model card as JSON under
  the key :data:`CARD_KEY`, with ``weights_sha256`` null (a file cannot hold its own hash).
* ``card.json`` — the same card with ``weights_sha256`` set to the SHA-256 of ``model.safetensors``.

So the weights carry their lineage wherever they are copied, and the folder can prove the weights
are the ones the card describes. This module is the one definition of the card's format: the
server writes and loads cards through it, and ``plateforge provenance`` reads them on the host.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON (tensor
name -> dtype, shape, data offsets; ``__metadata__`` -> string map), then the tensor bytes. The
header is read and checked by hand here (sizes, offsets, that the file is not truncated), and a
damaged file gives one :class:`~plateforge.errors.ModelIntegrityError` naming it.

The card, schema ``plateforge.modelcard/1`` (every key is required; unknown keys are refused)::

    {
      "schema": "plateforge.modelcard/1",
      "name": "sh010-cleanup", "version": "3", "tool": "cleanup", "description": "…",
      "net": {"arch": "unet", "config": {"width": 32}},
      "inputs": [{"name": "plate", "description": "", "required": true, "channels": ["R", "G", "B"],
                  "temporal_radius": 0}],
      "outputs": [{"name": "image", "description": "", "channels": []}],
      "parameters": [{"name": "strength", "kind": "float", "default": 1.0, "label": "", "description": "",
                      "minimum": 0.0, "maximum": 1.0, "choices": []}],
      "padding": 16,
      "sources": [{"path": "plates/sh010.1001.exr", "sha256": "…", "licence": "LicenseRef-acme",
                   "rights_holder": "ACME Pictures", "permitted_uses": ["train"],
                   "contributors": [{"name": "Ana Ruiz", "role": "keyframe matte"}]}],  # optional
      "base_model": null,  # or {"name": …, "licence": …, "sha256": …}
      "parent": {"name": …, "version": …, "sha256": …},  # optional: the model whose weights started it
      "code_version": {"plateforge": "0.1.0", "git_commit": "…" or null},
      "training": {…}, "metrics": {…},
      "created": "2025-01-31T12:00:00Z",
      "weights_sha256": "…" or null
    }

Two keys are optional, written only when they say something, so cards without them read as
before: a source's ``contributors`` (from its dataset manifest: whose work it holds, and what they
did) and ``parent``, the plateforge model a fine-tune started from (``plateforge train --init``;
``sha256`` is the parent's ``weights_sha256``). Lineage runs through ``parent`` as it does
through ``base_model``.

``inputs``, ``outputs`` and ``parameters`` are :class:`~plateforge.models.InputSpec`,
:class:`~plateforge.models.OutputSpec` and :class:`~plateforge.models.ParamSpec` as dicts.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from plateforge.errors import ExrError, ModelIntegrityError
from plateforge.exr import StrPath, sha256_file

__all__ = [
    "CARD_FILE",
    "CARD_KEY",
    "CARD_SCHEMA",
    "KNOWN_CARD_SCHEMAS",
    "MAX_HEADER_BYTES",
    "WEIGHTS_FILE",
    "check_card",
    "model_files",
    "read_card_from_safetensors",
    "read_card_json",
    "read_model_card",
    "read_safetensors_header",
    "weights_sha256",
]

#: Key of the card in the safetensors header's ``__metadata__``.
CARD_KEY = "plateforge.card"
#: The schema this version writes.
CARD_SCHEMA = "plateforge.modelcard/1"
#: Schemas this version reads; anything else is refused with this list.
KNOWN_CARD_SCHEMAS = (CARD_SCHEMA,)
#: The weights file of a model folder.
WEIGHTS_FILE = "model.safetensors"
#: The card file of a model folder (the card with the weights' hash).
CARD_FILE = "card.json"
#: Largest header accepted, as in the safetensors library; a damaged length is refused before
#: anything is allocated.
MAX_HEADER_BYTES = 100_000_000

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Bytes per element of the safetensors dtypes whose sizes are checked against the offsets.
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip


# -- safetensors header ---------------------------------------------------------------------


def _damaged(path: str, reason: str) -> ModelIntegrityError:
    return ModelIntegrityError(f"'{path}' is not a readable safetensors file: {reason}")


def _check_tensor(path: str, name: str, entry: object, data_bytes: int) -> int:
    """Check one tensor entry of the header; return where its data ends."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _damaged(path, f"tensor {name!r} is not described by dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise _damaged(path, f"tensor {name!r} has dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _damaged(path, f"tensor {name!r} has shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise _damaged(path, f"tensor {name!r} has data offsets {offsets!r}")
    begin, end = offsets
    if end > data_bytes:
        raise _damaged(
            path, f"tensor {name!r} ends at byte {end} of the data, but the file holds only {data_bytes} (truncated?)"
        )
    if dtype in _DTYPE_BYTES and math.prod(shape) * _DTYPE_BYTES[dtype] != end - begin:
        raise _damaged(path, f"tensor {name!r} ({dtype} {shape}) does not fit its {end - begin} bytes")
    return int(end)


def read_safetensors_header(path: StrPath) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked: a sane length, a JSON object, string
    metadata, and tensor entries whose offsets lie inside the file. Reads only the header."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            prefix = stream.read(8)
            if len(prefix) < 8:
                raise _damaged(name, f"the file is {size} bytes, too short to hold a header length")
            (length,) = struct.unpack("<Q", prefix)
            if length < 2 or length > MAX_HEADER_BYTES:
                raise _damaged(name, f"the header claims {length} bytes (at most {MAX_HEADER_BYTES} are allowed)")
            if 8 + length > size:
                raise _damaged(name, f"the header claims {length} bytes but the file is {size} bytes (truncated?)")
            raw = stream.read(length)
    except IsADirectoryError:
        raise ModelIntegrityError(f"'{name}' is a directory, not a safetensors file") from None
    except FileNotFoundError:
        raise ModelIntegrityError(f"'{name}' does not exist") from None
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read '{name}': {exc.strerror or exc}") from exc
    if not raw.startswith(b"{"):
        raise _damaged(name, "the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _damaged(name, f"the header is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise _damaged(name, "the header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _damaged(name, "its __metadata__ is not a map of strings")
    data_bytes = size - 8 - length
    ends = [_check_tensor(name, key, entry, data_bytes) for key, entry in header.items() if key != "__metadata__"]
    if max(ends, default=0) != data_bytes:
        raise _damaged(name, f"the tensors cover {max(ends, default=0)} bytes of data but the file holds {data_bytes}")
    return header


# -- the card -------------------------------------------------------------------------------


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value is None


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _is_optional_sha256(value: object) -> bool:
    return value is None or _is_sha256(value)


def _is_dict(value: object) -> bool:
    return isinstance(value, dict)


def _is_param_value(value: object) -> bool:
    return isinstance(value, (bool, int, float, str))


def _is_param_kind(value: object) -> bool:
    return value in ("float", "int", "bool", "string", "choice")


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_list(value: object) -> bool:
    return isinstance(value, list)


def _is_optional_dict(value: object) -> bool:
    return value is None or isinstance(value, dict)


def _is_optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


Check = Callable[[object], bool]

#: Each object the card holds: key -> (check, required). Messages say what a check expects
#: through _EXPECTED.
_INPUT: dict[str, tuple[Check, bool]] = {
    "name": (_is_str, True),
    "description": (_is_str, False),
    "required": (_is_bool, False),
    "channels": (_is_str_list, False),
    "temporal_radius": (_is_int, False),
}
_OUTPUT: dict[str, tuple[Check, bool]] = {
    "name": (_is_str, True),
    "description": (_is_str, False),
    "channels": (_is_str_list, False),
}
_PARAMETER: dict[str, tuple[Check, bool]] = {
    "name": (_is_str, True),
    "kind": (_is_param_kind, True),
    "default": (_is_param_value, True),
    "label": (_is_str, False),
    "description": (_is_str, False),
    "minimum": (_is_number, False),
    "maximum": (_is_number, False),
    "choices": (_is_str_list, False),
}


def _is_contributors(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(c, dict)
        and set(c) == {"name", "role"}
        and all(isinstance(c[k], str) and c[k].strip() for k in ("name", "role"))
        for c in value
    )


_SOURCE: dict[str, tuple[Check, bool]] = {
    "path": (_is_str, True),
    "sha256": (_is_sha256, True),
    "licence": (_is_str, True),
    "rights_holder": (_is_str, True),
    "contributors": (_is_contributors, False),
    # The manifest's permitted uses of the source (train, infer, evaluate, distribute); cards made
    # before it was recorded lack it, and an export (which needs "distribute") refuses them.
    "permitted_uses": (_is_str_list, False),
}
_PARENT: dict[str, tuple[Check, bool]] = {
    "name": (_is_str, True),
    "version": (_is_str, True),
    "sha256": (_is_sha256, True),
}
_BASE_MODEL: dict[str, tuple[Check, bool]] = {
    "name": (_is_str, True),
    "licence": (_is_str, True),
    "sha256": (_is_sha256, True),
}
_NET: dict[str, tuple[Check, bool]] = {"arch": (_is_str, True), "config": (_is_dict, True)}
_CODE_VERSION: dict[str, tuple[Check, bool]] = {
    "plateforge": (_is_str, True),
    "git_commit": (_is_optional_str, True),
}
_CARD: dict[str, tuple[Check, bool]] = {
    "schema": (_is_str, True),
    "name": (_is_str, True),
    "version": (_is_str, True),
    "tool": (_is_str, True),
    "description": (_is_str, True),
    "net": (_is_dict, True),
    "inputs": (_is_list, True),
    "outputs": (_is_list, True),
    "parameters": (_is_list, True),
    "padding": (_is_int, True),
    "sources": (_is_list, True),
    "base_model": (_is_optional_dict, True),
    "parent": (_is_dict, False),
    "code_version": (_is_dict, True),
    "training": (_is_dict, True),
    "metrics": (_is_dict, True),
    "created": (_is_str, True),
    "weights_sha256": (_is_optional_sha256, True),
}
_EXPECTED: dict[Check, str] = {
    _is_str: "text",
    _is_int: "a whole number",
    _is_number: "a number or null",
    _is_str_list: "a list of text",
    _is_sha256: "a SHA-256 hex digest (64 lowercase hex digits)",
    _is_optional_sha256: "a SHA-256 hex digest or null",
    _is_dict: "an object",
    _is_param_value: "a number, true/false or text",
    _is_param_kind: "one of float, int, bool, string, choice",
    _is_bool: "true or false",
    _is_list: "a list",
    _is_optional_dict: "an object or null",
    _is_optional_str: "text or null",
    _is_contributors: "a list of {name, role} objects of non-empty text",
}


def _check_fields(where: str, value: object, fields: Mapping[str, tuple[Check, bool]]) -> None:
    if not isinstance(value, dict):
        raise ModelIntegrityError(f"{where} should be an object, not {value!r}")
    unknown = sorted(set(value) - set(fields))
    missing = sorted(k for k, (_, required) in fields.items() if required and k not in value)
    if unknown:
        raise ModelIntegrityError(f"{where} has unknown key(s) {unknown}; its keys are {sorted(fields)}")
    if missing:
        raise ModelIntegrityError(f"{where} lacks key(s) {missing}; its keys are {sorted(fields)}")
    for key, item in value.items():
        check, _ = fields[key]
        if not check(item):
            expected = _EXPECTED.get(check, "something else")
            raise ModelIntegrityError(f"{where}: {key!r} should be {expected}, not {item!r}")


def _check_list(where: str, value: object, fields: Mapping[str, tuple[Check, bool]]) -> None:
    if not isinstance(value, list):
        raise ModelIntegrityError(f"{where} should be a list, not {value!r}")
    for index, item in enumerate(value):
        _check_fields(f"{where}[{index}]", item, fields)


def _check_schema(card: Mapping[str, Any], source: str) -> None:
    schema = card.get("schema")
    if schema not in KNOWN_CARD_SCHEMAS:
        said = f"unknown model card schema {schema!r}" if "schema" in card else "a model card with no schema"
        raise ModelIntegrityError(
            f"'{source}' holds {said}; this version of plateforge knows {', '.join(KNOWN_CARD_SCHEMAS)}"
        )


def check_card(card: object, *, source: str) -> dict[str, Any]:
    """``card`` if it is a valid model card of a known schema, else :class:`ModelIntegrityError`
    naming ``source`` (the file it came from). Unknown schemas are refused with the known list."""
    if not isinstance(card, dict):
        raise ModelIntegrityError(f"'{source}' holds no model card (found {type(card).__name__}, not an object)")
    _check_schema(card, source)
    where = f"model card in '{source}'"
    _check_fields(where, card, _CARD)
    if not card["name"]:
        raise ModelIntegrityError(f"{where}: 'name' is empty")
    _check_fields(f"{where}: net", card["net"], _NET)
    _check_list(f"{where}: inputs", card["inputs"], _INPUT)
    _check_list(f"{where}: outputs", card["outputs"], _OUTPUT)
    _check_list(f"{where}: parameters", card["parameters"], _PARAMETER)
    _check_list(f"{where}: sources", card["sources"], _SOURCE)
    if card["base_model"] is not None:
        _check_fields(f"{where}: base_model", card["base_model"], _BASE_MODEL)
    if "parent" in card:
        _check_fields(f"{where}: parent", card["parent"], _PARENT)
    _check_fields(f"{where}: code_version", card["code_version"], _CODE_VERSION)
    return card


def read_card_from_safetensors(path: StrPath) -> dict[str, Any]:
    """The model card in a safetensors file's metadata, checked (:func:`check_card`)."""
    name = os.fspath(path)
    metadata = read_safetensors_header(name).get("__metadata__", {})
    if CARD_KEY not in metadata:
        raise ModelIntegrityError(f"'{name}' holds no plateforge model card (no {CARD_KEY!r} in its metadata)")
    try:
        card = json.loads(metadata[CARD_KEY])
    except (ValueError, RecursionError):
        raise ModelIntegrityError(f"'{name}': the model card in its metadata is not valid JSON") from None
    return check_card(card, source=name)


def read_card_json(path: StrPath) -> dict[str, Any]:
    """A ``card.json`` file, checked (:func:`check_card`)."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelIntegrityError(f"'{name}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read '{name}': {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        card = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelIntegrityError(f"'{name}' is not valid JSON ({exc})") from None
    return check_card(card, source=name)


def model_files(path: StrPath) -> tuple[Path, Path]:
    """``(model.safetensors, card.json)`` of a model given as its folder or either of its files."""
    given = Path(path)
    folder = given.parent if given.name in (WEIGHTS_FILE, CARD_FILE) and not given.is_dir() else given
    return folder / WEIGHTS_FILE, folder / CARD_FILE


def weights_sha256(path: StrPath) -> str:
    """The SHA-256 of a weights file, or :class:`ModelIntegrityError` naming it."""
    try:
        return sha256_file(path)
    except ExrError as exc:  # sha256_file speaks for the EXR module; say it as a model error
        raise ModelIntegrityError(str(exc)) from None


def read_model_card(path: StrPath, *, verify: bool = True) -> dict[str, Any]:
    """The card of a model folder (or of a path to either of its files), with ``weights_sha256``.

    ``card.json`` must agree with the card inside ``model.safetensors`` (all but
    ``weights_sha256``, which only ``card.json`` holds). With ``verify`` the weights file's hash
    is recomputed and must equal the recorded one. Any difference is a
    :class:`ModelIntegrityError` naming the file.
    """
    weights, card_file = model_files(path)
    if not weights.parent.is_dir():
        what = "it is a file" if weights.parent.exists() else "it does not exist"
        raise ModelIntegrityError(
            f"'{weights.parent}' is not a model folder ({what}; a model folder holds {WEIGHTS_FILE} and {CARD_FILE})"
        )
    card = read_card_json(card_file)
    inside = read_card_from_safetensors(weights)
    if inside.get("weights_sha256") is not None:
        raise ModelIntegrityError(f"'{weights}': the card in its metadata claims a weights hash; it cannot")
    differing = sorted(k for k in card.keys() | inside.keys() if k != "weights_sha256" and card.get(k) != inside.get(k))
    if differing:
        raise ModelIntegrityError(f"'{card_file}' disagrees with the card inside '{weights}' on {differing}")
    recorded = card["weights_sha256"]
    if recorded is None:
        raise ModelIntegrityError(f"'{card_file}' records no weights_sha256 for '{weights}'")
    if verify:
        actual = weights_sha256(weights)
        if actual != recorded:
            raise ModelIntegrityError(
                f"'{weights}' has changed since it was saved: its sha256 is {actual}, "
                f"'{card_file.name}' records {recorded}"
            )
    return card
