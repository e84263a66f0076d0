"""Benchmark shot sets: which shots ``bench/quality.py --set NAME`` measures, read from a committed spec.

A set is a JSON file under ``bench/sets/`` (schema ``plateforge.benchset/1``)::

    {"schema": "plateforge.benchset/1", "name": "report", "purpose": "...",
     "steps": 600, "keys": [1, 2, 4, 8], "tools": ["cleanup", "matte", "relight", "look"],
     "shots": [{"kind": "analytic", "seed": 0, "width": 480, "height": 270, "frames": 24}, ...]}

``steps`` (training steps a run), ``keys`` (relight and look: the keyframe counts K) and
``tools`` are the set's bench settings; each shot names its ``kind`` and that kind's fields.
Kinds (:data:`SHOT_KINDS`): ``"analytic"`` is :func:`plateforge.shots.synthetic.make_shot` and its
matte and relit siblings at ``seed`` (fast, exact ground truth). Rendered (Cycles) shots and real
footage are further kinds: each adds an entry to :data:`SHOT_KINDS` naming the fields it needs,
and the bench a loader for it; a set naming a kind this code does not know is refused with the
known ones, never skipped.

**Tune and report.** Defaults and hyperparameters are chosen on the ``tune`` set only; the
``report`` set is what README figures come from. So that a report set cannot be quietly edited
after tuning started, every set's SHA-256 is recorded in ``bench/sets/SHA256SUMS`` (the format
``sha256sum -c`` reads) and :func:`load_set` refuses a set whose bytes no longer match it; the
results file records the hash of the set it measured.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plateforge.errors import UsageError

__all__ = ["HASHES_FILE", "SCHEMA", "SHOT_KINDS", "BenchSet", "ShotSpec", "load_set", "recorded_hashes"]

#: The schema a set file declares.
SCHEMA: Final = "plateforge.benchset/1"
#: Beside the set files: ``<sha256>  <file name>`` per line.
HASHES_FILE: Final = "SHA256SUMS"
#: Per shot kind, the fields its spec must give (all integers), beside ``kind``.
SHOT_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "analytic": ("seed", "width", "height", "frames"),
}
#: The tools a set may name (what bench/quality.py measures).
TOOLS: Final = ("cleanup", "matte", "relight", "look")


@dataclass(frozen=True)
class ShotSpec:
    """One shot of a set: its kind and that kind's fields (:data:`SHOT_KINDS`)."""

    kind: str
    seed: int
    width: int
    height: int
    frames: int

    @property
    def id(self) -> str:
        """The shot's name in results files: ``<kind>-<seed>``."""
        return f"{self.kind}-{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "width": self.width, "height": self.height, "frames": self.frames}


@dataclass(frozen=True)
class BenchSet:
    """A parsed set file (see the module doc) and the SHA-256 of its bytes."""

    name: str
    purpose: str
    steps: int
    keys: tuple[int, ...]
    tools: tuple[str, ...]
    shots: tuple[ShotSpec, ...]
    path: Path
    sha256: str


def recorded_hashes(folder: Path) -> dict[str, str]:
    """File name -> SHA-256 as ``folder/SHA256SUMS`` records them."""
    path = folder / HASHES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the set hashes {path}: {error}") from None
    hashes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise UsageError(f"{path}:{number}: expected '<64 hex digits>  <file name>', got {line[:80]!r}")
        hashes[name.strip()] = digest.lower()
    return hashes


def _int(where: str, data: Mapping[str, Any], key: str, low: int) -> int:
    value = data.get(key)
    if type(value) is not int or value < low:
        raise UsageError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
    return value


def _shot(where: str, data: object) -> ShotSpec:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a shot is a JSON object, got {data!r}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SHOT_KINDS:
        raise UsageError(f"{where}: unknown shot kind {kind!r}; known kinds: {sorted(SHOT_KINDS)}")
    unknown = sorted(set(data) - {"kind", *SHOT_KINDS[kind]})
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {unknown} for a {kind!r} shot; it takes {list(SHOT_KINDS[kind])}")
    return ShotSpec(
        kind=kind,
        seed=_int(where, data, "seed", 0),
        width=_int(where, data, "width", 32),
        height=_int(where, data, "height", 32),
        frames=_int(where, data, "frames", 3),
    )


def load_set(path: Path, *, check_hash: bool = True) -> BenchSet:
    """The set in ``path``. Refused (UsageError naming what was expected and found): a file that is
    not a set of schema :data:`SCHEMA`, a bad field, and with ``check_hash`` a file whose SHA-256
    differs from the one ``SHA256SUMS`` beside it records (an edited or unrecorded set)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the bench set {path}: {error}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if check_hash:
        recorded = recorded_hashes(path.parent).get(path.name)
        if recorded is None:
            raise UsageError(f"{path}: no hash recorded in {path.parent / HASHES_FILE}; a set is frozen before use")
        if recorded != digest:
            raise UsageError(
                f"{path}: its SHA-256 is {digest}, but {HASHES_FILE} records {recorded}: the set was edited "
                "after it was frozen (a report set must not change once tuning started; make a new set instead)"
            )
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise UsageError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError(f"{path}: expected a bench set of schema {SCHEMA!r}, found {found!r}")
    where = str(path)
    keys = data.get("keys")
    if not isinstance(keys, list) or not keys or not all(type(k) is int and k >= 1 for k in keys):
        raise UsageError(f"{where}: keys must be a non-empty list of integers >= 1, got {keys!r}")
    tools = data.get("tools")
    if not isinstance(tools, list) or not tools or not all(t in TOOLS for t in tools):
        raise UsageError(f"{where}: tools must be a non-empty list of {list(TOOLS)}, got {tools!r}")
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise UsageError(f"{where}: shots must be a non-empty list, got {shots!r}")
    specs = tuple(_shot(f"{where}: shots[{i}]", s) for i, s in enumerate(shots))
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{where}: a shot is listed twice: {ids}")
    return BenchSet(
        name=str(data.get("name") or path.stem),
        purpose=str(data.get("purpose", "")),
        steps=_int(where, data, "steps", 1),
        keys=tuple(keys),
        tools=tuple(tools),
        shots=specs,
        path=path,
        sha256=digest,
    )
