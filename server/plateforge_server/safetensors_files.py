"""safetensors files with the same bytes for the same tensors and metadata.

safetensors keeps a file's metadata in a Rust ``HashMap``, whose order is seeded per process, so
two saves of the same tensors and metadata differ in the order of the ``__metadata__`` keys, and
with it in their sha256: a model exported twice, or reinstalled, looked changed. Every place the
server writes a safetensors file goes through :func:`save_file`, which writes with safetensors
and then rewrites the header with its metadata keys sorted. The tensor entries keep the order
and offsets safetensors gave them (sorted by dtype and name, already deterministic), and the
header keeps its length, so the data section is never moved.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch

from plateforge.errors import PlateforgeError

__all__ = ["canonical_header", "save_file"]

_LENGTH = struct.Struct("<Q")
_METADATA = "__metadata__"


def canonical_header(header: bytes) -> bytes:
    """``header`` (the JSON after the 8-byte length) with its metadata keys sorted, padded with
    spaces to the same length; the tensor entries as they were. Raises :class:`PlateforgeError`
    if the result would not fit in the same length (it always does for safetensors' own JSON)."""
    entries = json.loads(header)
    if not isinstance(entries, dict):
        raise PlateforgeError(f"a safetensors header must be a JSON object, got {type(entries).__name__}")
    ordered: dict[str, object] = {}
    metadata = entries.pop(_METADATA, None)
    if metadata is not None:
        ordered[_METADATA] = dict(sorted(metadata.items()))
    ordered.update(entries)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > len(header):
        raise PlateforgeError(
            f"the sorted safetensors header is {len(text)} bytes, longer than safetensors' own {len(header)}"
        )
    return text + b" " * (len(header) - len(text))


def save_file(tensors: Mapping[str, torch.Tensor], path: Path, *, metadata: Mapping[str, str]) -> None:
    """Write ``tensors`` and ``metadata`` to ``path`` as safetensors, byte for byte the same for the
    same input in any process. ``path`` is written in place: callers write a temporary file and
    rename it (see :mod:`plateforge_server.modelcard`)."""
    safetensors.torch.save_file(dict(tensors), str(path), metadata=dict(metadata))
    with open(path, "r+b") as stream:
        (length,) = _LENGTH.unpack(stream.read(_LENGTH.size))
        header = stream.read(length)
        canonical = canonical_header(header)
        if canonical != header:
            stream.seek(_LENGTH.size)
            stream.write(canonical)
