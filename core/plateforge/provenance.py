"""Provenance records: what made a frame, written into every output EXR's header.

The server fills a record for each result; hosts write it verbatim as string attributes under
the ``plateforge/`` prefix, adding what only they know (the source file and its hash).
``plateforge info FILE`` prints them back.

A source frame is named by a digest of its pixels (``sourcePixelsDigest``). It is XXH3-128, not
sha256: the server computes it on every call, in the round trip a compositor waits for while
scrubbing, and at 4K sha256 alone cost five in-process copies of the frame (60 % of a
shared-memory round trip) where XXH3 costs half of one. The digest identifies pixels; it is not
tamper evidence (nothing in an EXR header is: anyone can rewrite it). What must resist a forger
stays sha256: model files and their card hashes, dataset sources, and the input files whose
hashes decide whether ``plateforge process`` may skip a frame (``inputsSha256``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from plateforge.frames import Box, Frame

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEVICE_ATTRIBUTE",
    "MODEL_HASH_ATTRIBUTE",
    "PIXELS_DIGEST",
    "PRECISION_ATTRIBUTE",
    "PREFIX",
    "SCHEMA_VERSION",
    "channel_preamble",
    "finish",
    "from_attributes",
    "pixels_digest",
    "pixels_hasher",
    "record",
]

PREFIX = "plateforge/"
#: Bumped when the meaning of a key changes; readers refuse versions they do not know.
SCHEMA_VERSION = "1"
#: The ModelInfo attribute in which ListModels gives a model's hash (the ``modelHash`` its outputs
#: record), so a host can tell an output made by this very model without processing again.
MODEL_HASH_ATTRIBUTE = "model_hash"
#: The device and arithmetic a model runs in ("cuda"/"cpu", "fp16"/"fp32"): the same names are
#: ModelInfo attributes (what the server would use when asked for "auto") and provenance keys of
#: every output (what it did use), so a resumed farm job can tell frames made otherwise.
DEVICE_ATTRIBUTE = "device"
PRECISION_ATTRIBUTE = "precision"


#: The algorithm of pixel digests; every digest starts with it (``xxh3-128:<32 hex digits>``), so
#: a later algorithm can be told apart from this one.
PIXELS_DIGEST = "xxh3-128"


class PixelsHasher(Protocol):
    def update(self, data: Buffer, /) -> None: ...
    def hexdigest(self) -> str: ...


def pixels_hasher(data_window: Box, display_window: Box) -> PixelsHasher:
    """The running hash of :func:`pixels_digest`, before any channel. Receivers that get pixels
    in pieces (ProcessStream) feed it as they arrive; :func:`finish` gives the same digest."""
    # Imported here: only the server computes pixel digests (xxhash comes with the [server]
    # extra), and hosts such as Blender's bundled add-on import this module without it.
    import xxhash

    digest = xxhash.xxh3_128()
    digest.update(repr((data_window, display_window)).encode())
    return digest


def finish(hasher: PixelsHasher) -> str:
    """The digest text of a :func:`pixels_hasher` fed every channel."""
    return f"{PIXELS_DIGEST}:{hasher.hexdigest()}"


def channel_preamble(name: str, dtype: np.dtype) -> bytes:
    """What :func:`pixels_digest` hashes before a channel's samples."""
    return name.encode() + b"\0" + str(np.dtype(dtype)).encode() + b"\0"


def pixels_digest(frame: Frame) -> str:
    """A digest of a frame's pixels and layout, independent of how a file compressed them:
    the windows, then each channel's name, type and little-endian samples, in channel order."""
    digest = pixels_hasher(frame.data_window, frame.display_window)
    for name, pixels in frame.channels.items():
        digest.update(channel_preamble(name, pixels.dtype))
        samples = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<"))
        digest.update(samples.reshape(-1).view(np.uint8).data)
    return finish(digest)


def record(**fields: object) -> dict[str, str]:
    """A provenance record: each field as ``plateforge/<name>``; non-strings as JSON."""
    out = {PREFIX + "schema": SCHEMA_VERSION}
    for key, value in fields.items():
        out[PREFIX + key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def from_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """The provenance keys (prefix removed) among a header's attributes."""
    return {k[len(PREFIX) :]: str(v) for k, v in attributes.items() if k.startswith(PREFIX)}
