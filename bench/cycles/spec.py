"""The Cycles shot specs: ``bench/sets/cycles-tune.json`` and ``bench/sets/cycles-report.json``.

Each file is ``{"generator_version": N, "set": "tune"|"report", "shots": [entry, ...]}``; an
entry holds every parameter the generator reads (``bench/cycles/generate.py``): the name, the
Cycles seed (also the seed of the set dressing), the size, frames and samples, the photographs
each set wears, and the subject's, rig's, lights' and camera's placement. Nothing is drawn at
render time from anything but the entry, so an entry is a shot.

The report set is frozen: its sha256 is recorded in ``bench/sets/SHA256SUMS`` with every other
bench set's (``sha256sum -c`` format, read by
:func:`plateforge_server.evaluation.benchsets.recorded_hashes`) and :func:`load_set` refuses a
report file whose hash differs, so a report shot cannot be edited quietly after tuning.
:func:`draft` made the entries (a seed -> parameters); the files, not ``draft``, are what the
bench reads.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

__all__ = ["SETS", "SETS_DIR", "ShotSpec", "draft", "find_shot", "load_set"]

SETS_DIR = Path(__file__).resolve().parents[1] / "sets"
SETS = ("tune", "report")

ShotSpec = dict[str, Any]

_REQUIRED = (
    "name", "seed", "width", "height", "frames", "samples", "first_frame", "shutter", "set_a", "set_b",
    "melanin", "hairs", "hair_length", "subject_from", "subject_to", "wire_from", "wire_to", "wire_tilt",
    "arm_from", "arm_to", "ambient", "key", "key_power", "key_colour", "key_moved", "key_moved_colour",
    "practical", "practical_power", "practical_colour", "lens", "fstop", "camera_from", "camera_to",
    "pan_from", "pan_to",
)  # fmt: skip


def _path(name: str) -> Path:
    if name not in SETS:
        raise ValueError(f"unknown Cycles set {name!r}: expected one of {SETS}")
    return SETS_DIR / f"cycles-{name}.json"


def _check_report_hash(path: Path, data: bytes) -> None:
    from plateforge.errors import UsageError
    from plateforge_server.evaluation.benchsets import HASHES_FILE, recorded_hashes

    try:
        expected = recorded_hashes(path.parent).get(path.name)
    except UsageError as error:
        raise ValueError(str(error)) from None
    if expected is None:
        raise ValueError(f"{path}: the report set's hash is not recorded in {HASHES_FILE}")
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise ValueError(
            f"{path}: sha256 {found} differs from the committed {expected} ({HASHES_FILE}); "
            "the report set is frozen: add new shots to the tune set instead"
        )


def load_set(name: str) -> list[ShotSpec]:
    """The entries of set ``name`` ("tune" or "report"), checked (the report set against its hash)."""
    path = _path(name)
    data = path.read_bytes()
    if name == "report":
        _check_report_hash(path, data)
    document = json.loads(data)
    if document.get("set") != name:
        raise ValueError(f'{path}: expected "set": {name!r}, found {document.get("set")!r}')
    shots: list[ShotSpec] = document["shots"]
    for entry in shots:
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            raise ValueError(f"{path}: shot {entry.get('name', '?')!r} lacks {missing}")
        entry["generator_version"] = document["generator_version"]
    return shots


def find_shot(name: str) -> ShotSpec:
    """The entry called ``name`` in either set."""
    for set_name in SETS:
        for entry in load_set(set_name):
            if entry["name"] == name:
                return entry
    raise KeyError(f"no Cycles shot called {name!r} in {[str(_path(s)) for s in SETS]}")


def _round(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


def draft(
    name: str, seed: int, *, width: int = 480, height: int = 270, frames: int = 12, samples: int = 32
) -> ShotSpec:
    """Parameters for a new shot from ``seed`` (used once to write an entry into a set file)."""
    rng = random.Random(seed)
    photos = ["flower", "garden"]
    rng.shuffle(photos)
    direction = rng.choice((-1.0, 1.0))
    sx = rng.uniform(0.4, 0.7)
    sy, sz = rng.uniform(-2.8, -2.0), rng.uniform(0.8, 1.1)
    cx = rng.uniform(-0.3, 0.3)
    truck = rng.uniform(0.4, 0.9) * rng.choice((-1.0, 1.0))
    key_side = rng.choice((-1.0, 1.0))
    return {
        "name": name,
        "seed": seed,
        "width": width,
        "height": height,
        "frames": frames,
        "samples": samples,
        "first_frame": 1001,
        "shutter": round(rng.uniform(0.4, 0.6), 3),
        "set_a": [photos[0], photos[1], photos[0]],
        "set_b": [photos[1], "beachball", photos[0]],
        "melanin": round(rng.uniform(0.2, 0.9), 3),
        "hairs": rng.choice((1500, 2000, 2500)),
        "hair_length": round(rng.uniform(0.16, 0.26), 3),
        "subject_from": _round([cx - direction * sx, sy, sz]),
        "subject_to": _round([cx + direction * sx, sy + rng.uniform(-0.2, 0.2), sz + rng.uniform(-0.15, 0.15)]),
        "wire_from": round(rng.uniform(-0.6, 0.6), 3),
        "wire_to": round(rng.uniform(-0.6, 0.6), 3),
        "wire_tilt": round(rng.uniform(-0.25, 0.25), 3),
        "arm_from": _round([rng.uniform(-1.0, 1.0), -3.6, rng.uniform(2.0, 2.3)]),
        "arm_to": _round([rng.uniform(-1.0, 1.0), -3.6, rng.uniform(2.0, 2.3)]),
        "ambient": _round([rng.uniform(0.03, 0.06), rng.uniform(0.03, 0.06), rng.uniform(0.04, 0.07)]),
        "key": _round([key_side * rng.uniform(2.5, 4.0), rng.uniform(-4.5, -3.0), rng.uniform(3.0, 4.5)]),
        "key_power": round(rng.uniform(300, 500), 1),
        "key_colour": _round([1.0, rng.uniform(0.85, 0.95), rng.uniform(0.7, 0.85)]),
        "key_moved": _round([-key_side * rng.uniform(2.5, 4.0), rng.uniform(-3.5, -1.0), rng.uniform(2.0, 3.5)]),
        "key_moved_colour": _round([rng.uniform(0.7, 0.85), rng.uniform(0.85, 0.95), 1.0]),
        "practical": _round([rng.uniform(-2.5, 2.5), 3.2, rng.uniform(1.5, 2.8)]),
        "practical_power": round(rng.uniform(40, 90), 1),
        "practical_colour": _round([1.0, rng.uniform(0.55, 0.75), rng.uniform(0.25, 0.45)]),
        "lens": round(rng.uniform(30, 40), 2),
        "fstop": round(rng.uniform(2.0, 4.0), 2),
        "camera_from": _round([-truck / 2, rng.uniform(-6.8, -6.2), rng.uniform(1.2, 1.5)]),
        "camera_to": _round([truck / 2, rng.uniform(-6.6, -6.0), rng.uniform(1.2, 1.5)]),
        "pan_from": round(rng.uniform(-4.0, 4.0), 2),
        "pan_to": round(rng.uniform(-4.0, 4.0), 2),
    }
