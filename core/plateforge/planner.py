"""Which frames of a sequence must be (re)sent to the server: the one planner every caller uses.

``plateforge process --skip-existing`` (and so the farm's tasks, the demo and the Python API) and
the hosts' node cache (Blender's node, Nuke's gizmos) all decide here which frames to send. Every
caller keys a frame the same way, by the files the model reads for it (the frame itself and, for
a temporal input, the neighbours within its radius that exist), each file hashed once per plan.
A frame is then one of:

- *missing*: an output file does not exist, so it is sent;
- *current*: every output exists and the caller's record says it was made by this very
  computation, so it is not sent;
- *other*: every output exists but the record names another computation (or cannot be read),
  so it is sent again (``redone``).

What the record is is the caller's: the provenance each output's EXR header carries
(:func:`plateforge.batch.run_batch`), or the key the node cache's ``index.json`` files the frame
under (:func:`plateforge.hosts.cache.plan_frames`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from plateforge.errors import ExrError
from plateforge.exr import sha256_file
from plateforge.sequences import frame_path, has_frame_token

__all__ = [
    "FileHashes",
    "InputFiles",
    "Record",
    "SequencePlan",
    "input_files",
    "inputs_digest",
    "plan_sequence",
]

#: Per input name, the (frame number, path) of every file the model reads; the frame number is
#: None for an input given as one file used for every frame.
InputFiles = dict[str, list[tuple[int | None, str]]]

#: Whether a frame's outputs (output name -> path; every one exists) were made by this very
#: computation.
Record = Callable[[int, Mapping[str, str]], bool]


class FileHashes:
    """SHA-256 of files, each read once per instance (a plan hashes a neighbour for several frames)."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if path not in self._known:
            self._known[path] = sha256_file(path)
        return self._known[path]


def input_files(
    patterns: Mapping[str, str], radii: Mapping[str, int], frame: int, *, missing_hint: str = ""
) -> InputFiles:
    """The files the model reads for ``frame``: per input, the pattern's file at ``frame`` (which must
    exist: :class:`ExrError` otherwise, ending with ``missing_hint``) and, for an input of temporal
    radius r, the files within r frames of it that exist. A pattern without a frame token is one file
    read for every frame."""
    files: InputFiles = {}
    for name, pattern in patterns.items():
        if not has_frame_token(pattern):
            files[name] = [(None, pattern)]
            continue
        own = frame_path(pattern, frame)
        if not os.path.isfile(own):
            raise ExrError(f"input {name!r} frame {frame}: {own} does not exist{missing_hint}")
        radius = radii.get(name, 0)
        files[name] = [
            (f, frame_path(pattern, f))
            for f in range(frame - radius, frame + radius + 1)
            if f == frame or os.path.isfile(frame_path(pattern, f))
        ]
    return files


def inputs_digest(files: InputFiles, hashes: FileHashes) -> str:
    """Every input file read, by input name and frame ("-": a single file), as the JSON of its
    SHA-256 (the ``inputsSha256`` an output's provenance records)."""
    table = {name: {("-" if f is None else str(f)): hashes(p) for f, p in entries} for name, entries in files.items()}
    return json.dumps(table, sort_keys=True)


@dataclass(frozen=True)
class SequencePlan:
    """Which frames of a request must be sent."""

    #: The frames asked for, in order, repeats dropped.
    frames: tuple[int, ...]
    #: Frames to send, in order: those missing an output and those made otherwise.
    send: tuple[int, ...]
    #: Frames whose every output exists and was made by this very computation.
    fresh: tuple[int, ...]
    #: Frames whose outputs exist but were made otherwise (also in ``send``).
    redone: tuple[int, ...]


def plan_sequence(frames: Iterable[int], *, outputs: Mapping[str, str], record: Record | None) -> SequencePlan:
    """Split ``frames`` into those to send and those already done.

    ``outputs``: output name -> file pattern; ``record`` says whether a frame's existing outputs
    were made by this computation. Without a ``record`` nothing on disk is trusted: every frame is
    sent (and none counts as redone)."""
    ordered = tuple(dict.fromkeys(frames))
    if record is None:
        return SequencePlan(frames=ordered, send=ordered, fresh=(), redone=())
    send: list[int] = []
    fresh: list[int] = []
    redone: list[int] = []
    for frame in ordered:
        paths = {name: frame_path(pattern, frame) for name, pattern in outputs.items()}
        if not all(os.path.isfile(p) for p in paths.values()):
            send.append(frame)
        elif record(frame, paths):
            fresh.append(frame)
        else:
            redone.append(frame)
            send.append(frame)
    return SequencePlan(frames=ordered, send=tuple(send), fresh=tuple(fresh), redone=tuple(redone))
