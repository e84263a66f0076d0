"""Benchmark shot sets: which shots ``bench/quality.py --set NAME`` measures, read from a committed spec.

A set is a JSON file under ``bench/sets/`` (schema ``plateforge.benchset/1``)::

    {"schema": "plateforge.benchset/1", "name": "report", "purpose": "...",
     "steps": 600, "keys": [1, 2, 4, 8], "tools": ["cleanup", "matte", "relight", "look"],
     "shots": [{"kind": "analytic", "seed": 0, "width": 480, "height": 270, "frames": 24}, ...]}

``steps`` (training steps a run), ``keys`` (relight and look: the keyframe counts K) and
``tools`` are the set's bench settings; each shot names its ``kind`` and that kind's fields.
Kinds (:data:`SHOT_KINDS`), each with the tools it can be scored on (:data:`KIND_TOOLS`; the
bench skips the others and says so in its results file):

* ``"analytic"``: :func:`plateforge.shots.synthetic.make_shot` and its matte and relit siblings
  at ``seed``, ``width`` x ``height``, ``frames`` (fast, exact ground truth); every tool.
* ``"footage"``: :func:`plateforge_server.tools.cleanup.footage.make_footage_shot` at ``seed``
  (real photographs moved by a known camera with parallax, a rig drawn over them); cleanup only.
* ``"cycles"``: the Cycles render (bench/cycles) called ``name`` in the spec file
  ``cycles-<spec>.json`` beside the set (``spec`` is ``"tune"`` or ``"report"``); every tool. Its
  seed, size and frames are the render's, read from that file (the spec's ``seed``, ``width``,
  ``height``, ``frames``), so a set cannot name a shot the spec lacks.

A set naming a kind this code does not know is refused with the known ones, never skipped.

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

__all__ = [
    "CYCLES_SPECS",
    "HASHES_FILE",
    "KIND_TOOLS",
    "SCHEMA",
    "SHOT_KINDS",
    "BenchSet",
    "ShotSpec",
    "load_set",
    "recorded_hashes",
]

#: The schema a set file declares.
SCHEMA: Final = "plateforge.benchset/1"
#: Beside the set files: ``<sha256>  <file name>`` per line.
HASHES_FILE: Final = "SHA256SUMS"
#: Per shot kind, the fields its spec gives beside ``kind``, and their JSON type.
SHOT_KINDS: Final[Mapping[str, Mapping[str, type]]] = {
    "analytic": {"seed": int, "width": int, "height": int, "frames": int},
    "footage": {"seed": int, "width": int, "height": int, "frames": int},
    "cycles": {"spec": str, "name": str},
}
#: The tools a set may name (what bench/quality.py measures).
TOOLS: Final = ("cleanup", "matte", "relight", "look")
#: Per shot kind, the tools its ground truth can score: footage has a clean plate, no matte or relit truth.
KIND_TOOLS: Final[Mapping[str, tuple[str, ...]]] = {"analytic": TOOLS, "footage": ("cleanup",), "cycles": TOOLS}
#: The Cycles spec files a ``cycles`` shot may name (``cycles-<spec>.json`` beside the set).
CYCLES_SPECS: Final = ("tune", "report")


@dataclass(frozen=True)
class ShotSpec:
    """One shot of a set: its kind and that kind's fields (:data:`SHOT_KINDS`).

    Every shot has a seed, size and frame count: a ``cycles`` shot's are its render's, and it also
    carries the Cycles ``spec`` file and the shot's ``name`` there."""

    kind: str
    seed: int
    width: int
    height: int
    frames: int
    spec: str | None = None
    name: str | None = None

    @property
    def id(self) -> str:
        """The shot's name in results files: ``<kind>-<seed>``, or ``cycles-<name>``."""
        return f"{self.kind}-{self.name}" if self.kind == "cycles" else f"{self.kind}-{self.seed}"

    @property
    def tools(self) -> tuple[str, ...]:
        """The tools this shot's kind can be scored on (:data:`KIND_TOOLS`)."""
        return KIND_TOOLS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The fields, as ``ShotSpec(**d)`` takes them back (a cycles shot's ``spec`` and ``name`` too)."""
        fields: dict[str, Any] = {
            "kind": self.kind,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
        }
        if self.kind == "cycles":
            fields |= {"spec": self.spec, "name": self.name}
        return fields


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


def _cycles_entry(where: str, folder: Path, spec: str, name: str, check_hash: bool) -> Mapping[str, Any]:
    """Shot ``name`` of the Cycles spec ``folder/cycles-<spec>.json`` (the report spec checked against its hash)."""
    if spec not in CYCLES_SPECS:
        raise UsageError(f"{where}: a cycles shot's spec must be one of {list(CYCLES_SPECS)}, got {spec!r}")
    path = folder / f"cycles-{spec}.json"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{where}: cannot read the Cycles spec {path}: {error}") from None
    if check_hash and spec == "report":
        recorded = recorded_hashes(folder).get(path.name)
        if recorded != hashlib.sha256(raw).hexdigest():
            raise UsageError(f"{where}: {path} does not match its hash in {HASHES_FILE} (recorded: {recorded})")
    try:
        shots = json.loads(raw)["shots"]
        entries = {str(e["name"]): e for e in shots}
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{where}: {path} is not a Cycles spec with named shots: {error!r}") from None
    if name not in entries:
        raise UsageError(f"{where}: no Cycles shot {name!r} in {path.name}; its shots: {sorted(entries)}")
    entry: Mapping[str, Any] = entries[name]
    return entry


def _shot(where: str, data: object, folder: Path, check_hash: bool) -> ShotSpec:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a shot is a JSON object, got {data!r}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SHOT_KINDS:
        raise UsageError(f"{where}: unknown shot kind {kind!r}; known kinds: {sorted(SHOT_KINDS)}")
    fields = SHOT_KINDS[kind]
    unknown = sorted(set(data) - {"kind", *fields})
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {unknown} for a {kind!r} shot; it takes {list(fields)}")
    if kind == "cycles":
        for key in fields:
            if not isinstance(data.get(key), str) or not data[key]:
                raise UsageError(f"{where}: {key} must be a non-empty string, got {data.get(key)!r}")
        entry = _cycles_entry(where, folder, data["spec"], data["name"], check_hash)
        rendered = f"{where}: Cycles shot {data['name']!r}"
        return ShotSpec(
            kind=kind, seed=_int(rendered, entry, "seed", 0), width=_int(rendered, entry, "width", 32),
            height=_int(rendered, entry, "height", 32), frames=_int(rendered, entry, "frames", 3),
            spec=data["spec"], name=data["name"],
        )  # fmt: skip
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
    specs = tuple(_shot(f"{where}: shots[{i}]", s, path.parent, check_hash) for i, s in enumerate(shots))
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{where}: a shot is listed twice: {ids}")
    unscored = [t for t in tools if not any(t in s.tools for s in specs)]
    if unscored:
        kinds = {k: list(KIND_TOOLS[k]) for k in sorted({s.kind for s in specs})}
        raise UsageError(f"{where}: no shot of this set can score {unscored} (the tools of its kinds: {kinds})")
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
