"""What the Blender node keeps and captures for a bake, as plain data (no ``bpy``).

The cache itself (layout, keys, which frames to send) is :mod:`plateforge.hosts.cache`, shared
with Nuke; this adds what only the Blender node needs: the model description it stores in the
.blend (so a farm node rebuilds its sockets and parameters without asking a server), and which
frames it must render its inputs for.
"""

from __future__ import annotations

import ntpath
import posixpath
from collections.abc import Iterable

from google.protobuf import json_format

from plateforge import codec
from plateforge.errors import UsageError
from plateforge.models import ModelInfo
from plateforge.v1 import models_pb2

__all__ = ["capture_frames", "decode_model_info", "encode_model_info", "resolve_folder"]


def encode_model_info(info: ModelInfo) -> str:
    """``info`` as the wire contract's JSON (``plateforge.v1.ModelInfo``)."""
    return json_format.MessageToJson(codec.info_to_proto(info), indent=None, sort_keys=True)


def decode_model_info(text: str) -> ModelInfo:
    try:
        message = json_format.Parse(text, models_pb2.ModelInfo())
    except json_format.ParseError as error:
        raise UsageError(f"the node's stored model description is not a plateforge.v1.ModelInfo: {error}") from None
    return codec.info_from_proto(message)


def capture_frames(frames: Iterable[int], *, radius: int, first: int, last: int) -> list[int]:
    """Every frame whose inputs a bake of ``frames`` reads: each target, and its ``radius``
    neighbours on each side that lie inside the scene's ``first``-``last`` range; ascending."""
    wanted: set[int] = set()
    for frame in frames:
        wanted.update(f for f in range(frame - radius, frame + radius + 1) if first <= f <= last or f == frame)
    return sorted(wanted)


def resolve_folder(path: str, *, blend_file: str, what: str) -> str:
    """The absolute folder a node setting names: ``//…`` is relative to the saved .blend
    ``blend_file`` (as Blender writes it), anything else must be absolute. An unsaved .blend
    (``blend_file`` empty) has no folder: Blender would resolve ``//…`` against its working
    directory, so the artist is asked to save first instead. ``what`` names the setting."""
    if not path.strip():
        raise UsageError(f"{what}: no folder given; set one (e.g. //plateforge_cache/ beside the .blend)")
    if path.startswith("//"):
        if not blend_file:
            raise UsageError(
                f"save the .blend first: {what} ({path}) goes beside it; or set an absolute folder instead"
            )
        if ntpath.isabs(blend_file) and not posixpath.isabs(blend_file):  # a Windows .blend
            return ntpath.normpath(ntpath.join(ntpath.dirname(blend_file), path[2:]))
        return posixpath.normpath(posixpath.join(posixpath.dirname(blend_file), path[2:]))
    if not (posixpath.isabs(path) or ntpath.isabs(path)):
        raise UsageError(
            f"{what}: {path!r} is a relative folder; give an absolute one or one relative to the .blend (//…)"
        )
    return path
