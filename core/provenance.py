"""Provenance records: what made a frame, written into every output EXR's header.

The server fills a record for each result; hosts write it verbatim as string attributes under
the ``plateforge/`` prefix, adding what only they know (the source file and its hash).
``plateforge info FILE`` prints them back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from plateforge.frames import Box, Frame

__all__ = [
    "MODEL_HASH_ATTRIBUTE",
    "PREFIX",
    "SCHEMA_VERSION",
    "channel_preamble",
    "from_attributes",
    "pixels_hasher",
    "pixels_sha256",
    "record",
]

PREFIX = "plateforge/"
#: Bumped when the meaning of a key changes; readers refuse versions they do not know.
SCHEMA_VERSION = "1"
#: The ModelInfo attribute in which ListModels gives a model's hash (the ``modelHash`` its outputs
#: record), so a host can tell an output made by this very model without processing again.
MODEL_HASH_ATTRIBUTE = "model_hash"


def pixels_hasher(data_window: Box, display_window: Box) -> hashlib._Hash:
    """The running hash of :func:`pixels_sha256`, before any channel. Receivers that get pixels
    in pieces (ProcessStream) feed it as they arrive; the digest is the same."""
    digest = hashlib.sha256()
    digest.update(repr((data_window, display_window)).encode())
    return digest


def channel_preamble(name: str, dtype: np.dtype) -> bytes:
    """What :func:`pixels_sha256` hashes before a channel's samples."""
    return name.encode() + b"\0" + str(np.dtype(dtype)).encode() + b"\0"


def pixels_sha256(frame: Frame) -> str:
    """A hash of a frame's pixels and layout, independent of how a file compressed them:
    the windows, then each channel's name, type and little-endian samples, in channel order."""
    digest = pixels_hasher(frame.data_window, frame.display_window)
    for name, pixels in frame.channels.items():
        digest.update(channel_preamble(name, pixels.dtype))
        digest.update(
            np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).reshape(-1).view(np.uint8).data
        )
    return digest.hexdigest()


def record(**fields: object) -> dict[str, str]:
    """A provenance record: each field as ``plateforge/<name>``; non-strings as JSON."""
    out = {PREFIX + "schema": SCHEMA_VERSION}
    for key, value in fields.items():
        out[PREFIX + key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def from_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """The provenance keys (prefix removed) among a header's attributes."""
    return {k[len(PREFIX) :]: str(v) for k, v in attributes.items() if k.startswith(PREFIX)}
