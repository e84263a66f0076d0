"""Frame ranges and numbered file patterns, the way compositors write them.

Ranges: ``1001-1100``, ``1001-1100x2`` (every 2nd), ``1001,1005,1010-1012``, ``1001``; the
Open Job Description spelling ``1001-1100:2`` too, as farm tasks receive their chunks in it.
Patterns: a run of ``#`` is the frame number padded to the run's length (``plate.####.exr`` ->
``plate.1001.exr``), as in Nuke; ``%04d`` (printf) works too. Negative frames keep their sign
before the padding (``-001``).
"""

from __future__ import annotations

import os
import re

from plateforge.errors import UsageError

__all__ = ["frame_path", "has_frame_token", "parse_frames", "same_pattern"]

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0?)(\d*)d")
_RANGE = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:[x:](\d+))?)?$")


def parse_frames(spec: str) -> list[int]:
    """The frames a range spec names, in order, without repeats."""
    frames: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        match = _RANGE.match(part)
        if not match:
            raise UsageError(
                f"frame range {spec!r}: cannot read {part!r}; write e.g. 1001-1100, 1001-1100x2 or 1001,1003"
            )
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3) or 1)
        if end < start or step < 1:
            raise UsageError(f"frame range {part!r} runs backwards or has a zero step")
        frames.extend(range(start, end + 1, step))
    seen: set[int] = set()
    return [f for f in frames if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]


def has_frame_token(pattern: str) -> bool:
    return bool(_HASHES.search(pattern) or _PRINTF.search(pattern))


def _pad(frame: int, width: int) -> str:
    sign = "-" if frame < 0 else ""
    return sign + str(abs(frame)).zfill(width)


def frame_path(pattern: str, frame: int) -> str:
    """``pattern`` with its frame token replaced by ``frame``; unchanged if it has none."""
    if _HASHES.search(pattern):
        return _HASHES.sub(lambda m: _pad(frame, len(m.group(0))), pattern)
    return _PRINTF.sub(lambda m: _pad(frame, int(m.group(2) or 0) if m.group(1) else 0), pattern)


def _canonical(pattern: str) -> str:
    """``pattern`` with its folder resolved (symlinks, ``..``, relative to the working folder) and its
    frame token in one spelling (``####`` -> ``%04d``, ``%d`` -> ``%01d``)."""
    folder, name = os.path.split(pattern)
    if _HASHES.search(name):
        name = _HASHES.sub(lambda m: f"%0{len(m.group(0))}d", name)
    else:
        name = _PRINTF.sub(lambda m: f"%0{int(m.group(2) or 1) if m.group(1) else 1}d", name)
    return os.path.join(os.path.realpath(folder or "."), name)


def same_pattern(a: str, b: str) -> bool:
    """Whether two patterns name the same files, however spelt (``./a/x.####.exr`` and
    ``a/x.%04d.exr``, or through a folder symlink). Single files compare fully resolved."""
    if has_frame_token(a) != has_frame_token(b):
        return False
    if not has_frame_token(a):
        return os.path.realpath(a) == os.path.realpath(b)
    return _canonical(a) == _canonical(b)
