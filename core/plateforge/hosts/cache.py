"""The on-disk cache a host node renders into and reads back from, and which frames it must send.

A node owns one folder. Its inputs are rendered there as numbered EXRs, the server's results are
written beside them, and ``index.json`` records, per frame, the key the result was made with::

    <cache root>/<node>/
        inputs/plate.####.exr     what the host rendered for each declared input
        outputs/image.####.exr    the results (written atomically, provenance in the header)
        index.json                {"schema": "plateforge.nodecache/1", "frames": {"1001": KEY, ...}}

A frame's key is a SHA-256 over the model (name, version, hashes), the resolved parameters
and the SHA-256 of every input file the model reads for that frame (neighbours included, for a
temporal model). A frame whose key matches the index and whose outputs exist is not sent again
(:mod:`plateforge.planner` decides, as it does for ``plateforge process --skip-existing``).
The same files serve the viewer, ``nuke -x`` and the farm. Nothing here knows a host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from plateforge import atomic
from plateforge.errors import PlateforgeError
from plateforge.exr import StrPath
from plateforge.models import ModelInfo, ParamValue, resolve_params
from plateforge.planner import FileHashes, input_files, plan_sequence

__all__ = [
    "INDEX_SCHEMA",
    "CacheLayout",
    "CachePlan",
    "FileHashes",
    "chunk_frames",
    "frame_key",
    "model_key",
    "plan_frames",
    "read_index",
    "write_index",
]

log = logging.getLogger(__name__)

#: The schema ``index.json`` is written with; an index of any other schema counts as empty.
INDEX_SCHEMA: Final = "plateforge.nodecache/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CacheLayout:
    """The files of one node's cache under ``folder``."""

    folder: Path

    @classmethod
    def for_node(cls, root: StrPath, node: str) -> CacheLayout:
        """The cache of the node called ``node`` (a host's full node path, e.g. ``Group1.PF_Cleanup1``)
        under ``root``; characters a file name should not hold become ``_``."""
        safe = _UNSAFE.sub("_", node).strip("._")
        if not safe:
            raise PlateforgeError(f"node name {node!r} gives no usable cache folder name")
        return cls(Path(root) / safe)

    def input_pattern(self, name: str) -> str:
        return str(self.folder / "inputs" / f"{name}.####.exr")

    def output_pattern(self, name: str) -> str:
        return str(self.folder / "outputs" / f"{name}.####.exr")

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"


def model_key(info: ModelInfo, params: Mapping[str, ParamValue]) -> str:
    """What identifies the computation apart from its inputs: model name, version, the attributes
    the server lists it with (its weights' and model's hashes among them) and the fully resolved
    parameters."""
    resolved = resolve_params(info, params)
    blob = json.dumps(
        {"model": info.name, "version": info.version, "attributes": dict(info.attributes), "params": resolved},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def frame_key(model: str, inputs: Mapping[str, Sequence[tuple[int | None, str]]]) -> str:
    """The key of one frame's result: ``model`` (a :func:`model_key`) and, per input name, the
    (frame number, file SHA-256) of every file the model reads for it."""
    blob = json.dumps({"model": model, "inputs": {k: [list(p) for p in v] for k, v in inputs.items()}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_index(layout: CacheLayout) -> dict[int, str]:
    """Frame -> key of the results in the cache. A missing, unreadable or unknown-schema index is
    an empty one (a cache is disposable: everything is sent again), logged when it was not missing."""
    try:
        data = json.loads(layout.index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("ignoring the unreadable cache index %s: %s", layout.index_path, error)
        return {}
    if not isinstance(data, dict) or data.get("schema") != INDEX_SCHEMA or not isinstance(data.get("frames"), dict):
        log.warning("ignoring the cache index %s: not schema %s", layout.index_path, INDEX_SCHEMA)
        return {}
    return {int(k): str(v) for k, v in data["frames"].items() if str(k).lstrip("-").isdigit()}


def write_index(layout: CacheLayout, frames: Mapping[int, str]) -> None:
    """Write the index atomically (a reader sees the old one or the new one, never half)."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"schema": INDEX_SCHEMA, "frames": {str(f): frames[f] for f in sorted(frames)}}, indent=1)
    atomic.write_text(layout.index_path, text + "\n")


@dataclass(frozen=True)
class CachePlan:
    """Which frames of a request must be sent, and the key each result will be filed under."""

    model: str
    frames: tuple[int, ...]
    #: Frames to send, in order.
    stale: tuple[int, ...]
    #: Frames whose cached results are current.
    fresh: tuple[int, ...]
    keys: Mapping[int, str] = field(default_factory=dict)


def plan_frames(
    layout: CacheLayout,
    info: ModelInfo,
    *,
    params: Mapping[str, ParamValue],
    frames: Iterable[int],
    inputs: Sequence[str],
    hashes: FileHashes | None = None,
) -> CachePlan:
    """Key every frame from the cached input files and split the frames into stale and fresh
    (:func:`plateforge.planner.plan_sequence`, the record being the index).

    ``inputs`` are the input names the host rendered (every required input, and the optional ones
    connected). A frame is fresh when the index holds its key and every output file exists."""
    hashes = hashes or FileHashes()
    declared = {spec.name: spec for spec in info.inputs}
    unknown = [n for n in inputs if n not in declared]
    if unknown:
        raise PlateforgeError(f"model {info.name!r} takes no input(s) {unknown}; it takes {sorted(declared)}")
    missing = [s.name for s in info.inputs if s.required and s.name not in inputs]
    if missing:
        raise PlateforgeError(f"model {info.name!r} needs input(s) {missing} connected")
    base = model_key(info, params)
    index = read_index(layout)
    patterns = {name: layout.input_pattern(name) for name in inputs}
    radii = {name: declared[name].temporal_radius for name in inputs}
    ordered = list(dict.fromkeys(frames))
    keys: dict[int, str] = {}
    for frame in ordered:  # every frame's key, stale or not: the index files each result under it
        files = input_files(patterns, radii, frame, missing_hint=" (render the node's inputs first)")
        keys[frame] = frame_key(
            base, {name: [(f, hashes(path)) for f, path in entries] for name, entries in files.items()}
        )
    plan = plan_sequence(
        ordered,
        outputs={o.name: layout.output_pattern(o.name) for o in info.outputs},
        record=lambda frame, _paths: index.get(frame) == keys[frame],
    )
    return CachePlan(model=info.name, frames=plan.frames, stale=plan.send, fresh=plan.fresh, keys=keys)


def chunk_frames(frames: Iterable[int], *, size: int, contiguous: bool = True) -> list[list[int]]:
    """``frames`` (sorted, repeats dropped) in chunks of at most ``size``. With ``contiguous`` a
    chunk is also a run of consecutive numbers (a farm task's ``first-last``); without, gaps are
    allowed inside a chunk (one request stream per chunk)."""
    if size < 1:
        raise PlateforgeError(f"chunk size must be at least 1, got {size}")
    chunks: list[list[int]] = []
    for frame in sorted(set(frames)):
        joins = bool(chunks) and len(chunks[-1]) < size and (not contiguous or frame == chunks[-1][-1] + 1)
        if joins:
            chunks[-1].append(frame)
        else:
            chunks.append([frame])
    return chunks
