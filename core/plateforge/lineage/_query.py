"""Questions a show asks of the index: what depends on a source, a licence or a model; whose work
trained what, and how much it was used; the whole chain behind one frame.

Models are known by their weights' hash (``weights_sha256`` on the card, ``modelHash`` in every
output frame), so copies of one model in several folders are one model. Lineage runs from a model
to its children through the ``parent`` of fine-tunes (``plateforge train --init``) and the
``base_model`` of adapters, transitively.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from plateforge.errors import UsageError
from plateforge.exr import sha256_file
from plateforge.lineage._db import Database

__all__ = [
    "Affected",
    "AffectedFrame",
    "AffectedModel",
    "Credit",
    "affected",
    "credits",
    "frame_ranges",
    "parse_since",
]


@dataclass(frozen=True)
class AffectedModel:
    sha256: str
    name: str
    version: str
    tool: str
    #: The folders that hold this model (copies share one hash).
    folders: tuple[str, ...]
    #: Why it is affected: "trained on it", or "fine-tuned from NAME@VERSION" / "adapter on …".
    why: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class AffectedFrame:
    path: str
    pattern: str
    frame: int | None
    model: str
    model_version: str
    model_sha256: str
    why: str


@dataclass(frozen=True)
class Affected:
    models: tuple[AffectedModel, ...]
    frames: tuple[AffectedFrame, ...]

    def ranges(self) -> dict[str, str]:
        """Per output pattern, its affected frames in Open Job Description range syntax."""
        by_pattern: dict[str, list[int]] = {}
        for frame in self.frames:
            if frame.frame is not None:
                by_pattern.setdefault(frame.pattern, []).append(frame.frame)
        return {pattern: frame_ranges(numbers) for pattern, numbers in sorted(by_pattern.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": m.name, "version": m.version, "tool": m.tool, "sha256": m.sha256,
                    "folders": list(m.folders), "why": m.why,
                }
                for m in self.models
            ],
            "frames": [
                {
                    "path": f.path, "pattern": f.pattern, "frame": f.frame, "model": f.model,
                    "model_version": f.model_version, "model_sha256": f.model_sha256, "why": f.why,
                }
                for f in self.frames
            ],
            "ranges": self.ranges(),
        }  # fmt: skip


def frame_ranges(frames: Iterable[int]) -> str:
    """Frames as an Open Job Description range expression: runs of consecutive frames as
    ``a-b``, others alone, comma separated (``1001-1010,1012``)."""
    numbers = sorted(set(frames))
    parts: list[str] = []
    start = previous = None
    for number in [*numbers, None]:
        if start is not None and previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None and previous is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    return ",".join(parts)


# -- the model graph -----------------------------------------------------------------------------


@dataclass
class _Model:
    sha256: str
    name: str
    version: str
    tool: str
    folders: list[str] = field(default_factory=list)
    parent: str | None = None  # the parent's key (see _key)
    base: str | None = None  # the base model's weights sha256
    parent_ref: str = ""
    base_ref: str = ""

    @property
    def key(self) -> str:
        return _key(self.name, self.version, self.sha256)


def _key(name: str, version: str, sha256: str) -> str:
    """A model's identity: its weights' hash with its name and version. A fine-tune that never
    beat its start publishes its parent's very weights, under its own name: two models."""
    return f"{name}@{version}#{sha256}"


def _models(db: Database) -> dict[str, _Model]:
    models: dict[str, _Model] = {}
    rows = db.execute(
        "SELECT owner, sha256, name, version, tool, parent_sha256, parent_name, parent_version, base_sha256, "
        "base_name FROM models ORDER BY owner"
    )
    for owner, sha, name, version, tool, parent, parent_name, parent_version, base, base_name in rows:
        model = models.setdefault(_key(name, version, sha), _Model(sha, name, version, tool))
        model.folders.append(owner)
        model.parent = _key(parent_name, parent_version, parent) if parent else None
        model.parent_ref = f"{parent_name}@{parent_version}" if parent else ""
        model.base = base
        model.base_ref = base_name or ""
    return models


def _descendants(models: dict[str, _Model], seeds: dict[str, str]) -> dict[str, str]:
    """``seeds`` (model key -> why) and every model that descends from one, through parents and
    base models, transitively; each with why it is there."""
    found = dict(seeds)
    frontier = list(seeds)
    while frontier:
        ancestor = frontier.pop()
        ancestor_sha = models[ancestor].sha256 if ancestor in models else ""
        for key, model in models.items():
            if key in found:
                continue
            if model.parent == ancestor:
                found[key] = f"fine-tuned from {model.parent_ref}"
            elif model.base is not None and model.base == ancestor_sha:
                found[key] = f"adapter on base model {model.base_ref}"
            else:
                continue
            frontier.append(key)
    return found


def _in(db: Database, sql: str, values: Sequence[Any], before: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """``sql`` with ``IN ({})`` filled with ``values``, in chunks a driver takes."""
    rows: list[tuple[Any, ...]] = []
    ordered = list(values)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows += db.execute(sql.format(", ".join("?" * len(chunk))), [*before, *chunk])
    return rows


# -- affected ------------------------------------------------------------------------------------


def _source_hashes(db: Database, source: str) -> dict[str, str]:
    """sha256 -> file of the source ``source`` names: the file, or every file in the folder,
    hashed now (a dataset need not have been registered, nor indexed), and what the indexed
    manifests list at or under that path with the hashes they registered (the bytes a model was
    trained on, should the file have changed since)."""
    path = os.path.abspath(source)
    found: dict[str, str] = {}
    if os.path.isfile(path):
        found[sha256_file(path)] = path
    elif os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(f for f in files if not f.startswith(".")):
                file = os.path.join(folder, name)
                if os.path.isfile(file):
                    found.setdefault(sha256_file(file), file)
    under = path.rstrip(os.sep) + os.sep
    for file, sha in db.execute("SELECT file, sha256 FROM manifest_files WHERE sha256 IS NOT NULL"):
        if file == path or file.startswith(under):
            found.setdefault(sha, file)
    if not found:
        raise UsageError(
            f"--source {source!r}: no such file or folder (or an empty one), and no indexed manifest lists a "
            "registered file at or under it"
        )
    return found


def _resolve_model(models: dict[str, _Model], given: str) -> list[_Model]:
    folder = os.path.abspath(given)
    return [
        m
        for m in models.values()
        if given in (m.sha256, m.name, f"{m.name}@{m.version}")
        or folder in m.folders
        or os.path.dirname(folder) in m.folders
    ]


def _frames_of_unindexed(db: Database, given: str) -> list[tuple[Any, ...]]:
    """Frames whose record names ``given`` (NAME, NAME@VERSION or hash) as their model: a
    built-in tool has no model folder, yet its frames say what made them."""
    name, _, version = given.partition("@")
    return db.execute(
        "SELECT owner, pattern, frame, model, model_version, model_sha256 FROM frames "
        "WHERE model_sha256 = ? OR (model = ? AND (? = '' OR model_version = ?))",
        (given, name, version, version),
    )


def affected(
    db: Database, *, source: str | None = None, licence: str | None = None, model: str | None = None
) -> Affected:
    """What must be redone if ``source`` (a file or folder), ``licence`` (an id as manifests write
    it) or ``model`` (NAME, NAME@VERSION, weights sha256 or folder) is withdrawn: the models
    trained on it, their fine-tunes and adapters, transitively, and every output frame made by
    one of them or made directly from the withdrawn files. Exactly one of the three is given."""
    given = [k for k, v in (("--source", source), ("--licence", licence), ("--model", model)) if v]
    if len(given) != 1:
        raise UsageError(f"give exactly one of --source, --licence or --model (got {', '.join(given) or 'none'})")
    models = _models(db)
    seeds: dict[str, str] = {}
    direct: list[tuple[Any, ...]] = []
    withdrawn: dict[str, str] = {}  # sha256 of withdrawn files -> file
    if source is not None:
        withdrawn = _source_hashes(db, source)
        rows = _in(db, "SELECT DISTINCT m.name, m.version, m.sha256 FROM model_sources s JOIN models m "
                   "ON m.owner = s.owner WHERE s.sha256 IN ({})", sorted(withdrawn))  # fmt: skip
        seeds = {_key(*row): "trained on it" for row in rows}
    elif licence is not None:
        rows = db.execute(
            "SELECT DISTINCT m.name, m.version, m.sha256 FROM model_sources s JOIN models m ON m.owner = s.owner "
            "WHERE s.licence = ?",
            (licence,),
        )
        seeds = {_key(*row): f"trained on {licence} material" for row in rows}
        for row in db.execute("SELECT DISTINCT name, version, sha256 FROM models WHERE base_licence = ?", (licence,)):
            seeds.setdefault(_key(*row), f"adapter on a {licence} base model")
        withdrawn = {
            sha: file
            for file, sha in db.execute(
                "SELECT file, sha256 FROM manifest_files WHERE licence = ? AND sha256 IS NOT NULL", (licence,)
            )
        }
    elif model is not None:
        seeds = {m.key: "named" for m in _resolve_model(models, model)}
        direct = _frames_of_unindexed(db, model)
        if not seeds and not direct:
            known = sorted({f"{m.name}@{m.version}" for m in models.values()})
            raise UsageError(
                f"--model {model!r}: no indexed model or frame has that name, NAME@VERSION, weights sha256 or "
                f"folder; the index knows the models {', '.join(known) or '(none)'} (run plateforge lineage index)"
            )
    reached = _descendants(models, seeds)
    out_models = tuple(
        AffectedModel(m.sha256, m.name, m.version, m.tool, tuple(m.folders), why)
        for m, why in sorted(((models[k], w) for k, w in reached.items()), key=lambda mw: mw[0].key)
    )
    frames: dict[str, AffectedFrame] = {}
    columns = "owner, pattern, frame, model, model_version, model_sha256"
    hashes = sorted({m.sha256 for m in out_models})

    def frame(row: tuple[Any, ...], why: str) -> AffectedFrame:
        path, pattern, number, name, version, sha = row
        return AffectedFrame(path, pattern, number, name, version, sha, why)

    for row in _in(db, f"SELECT {columns} FROM frames WHERE model_sha256 IN ({{}})", hashes):
        if _key(row[3], row[4], row[5]) in reached:
            frames[row[0]] = frame(row, f"made by {row[3]}@{row[4]}")
    if model is not None:
        for row in direct:
            frames.setdefault(row[0], frame(row, f"made by {row[3]}@{row[4]}"))
    if withdrawn:
        sql = f"SELECT {columns} FROM frames WHERE owner IN (SELECT owner FROM frame_inputs WHERE sha256 IN ({{}}))"
        for row in _in(db, sql, sorted(withdrawn)):
            frames.setdefault(row[0], frame(row, "made from the withdrawn material"))
    ordered = tuple(sorted(frames.values(), key=lambda f: (f.pattern, f.frame if f.frame is not None else 0, f.path)))
    return Affected(models=out_models, frames=ordered)


# -- credits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credit:
    """One contributor's part: what they did, the models their work trained (directly or through
    a fine-tune or adapter), and the output frames those models made."""

    name: str
    roles: tuple[str, ...]
    models: tuple[str, ...]
    frames: int
    shots: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "models": list(self.models),
            "frames": self.frames,
            "shots": list(self.shots),
        }


def parse_since(text: str) -> int:
    """``YYYY-MM-DD`` (UTC midnight) or an ISO 8601 time, as nanoseconds since the epoch."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: write a date as YYYY-MM-DD, or a time as YYYY-MM-DDTHH:MM") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000


def credits(db: Database, *, since_ns: int | None = None) -> list[Credit]:
    """Per contributor named on an indexed model card or manifest: the models their work trained and the
    output frames (files written at or after ``since_ns``, if given) those models made; the
    most frames first. A "shot" is one output sequence (its file pattern)."""
    models = _models(db)
    owner_key = {owner: m.key for m in models.values() for owner in m.folders}
    people: dict[str, tuple[set[str], set[str]]] = {}
    for owner, name, role in db.execute("SELECT owner, name, role FROM model_contributors"):
        roles, trained = people.setdefault(name, (set(), set()))
        roles.add(role)
        trained.add(owner_key[owner])
    # Contributors of footage no indexed model was trained on yet are listed too, with nothing.
    for name, role in db.execute("SELECT DISTINCT name, role FROM manifest_contributors"):
        people.setdefault(name, (set(), set()))[0].add(role)
    frames_by_model: dict[str, list[str]] = {}
    for name, version, sha, pattern, written in db.execute(
        "SELECT model, model_version, model_sha256, pattern, written_ns FROM frames"
    ):
        if since_ns is None or int(written) >= since_ns:
            frames_by_model.setdefault(_key(name, version, sha), []).append(pattern)
    out: list[Credit] = []
    for name, (roles, trained) in people.items():
        reached = _descendants(models, dict.fromkeys(trained, ""))
        patterns = [p for key in reached for p in frames_by_model.get(key, [])]
        refs = sorted({f"{models[key].name}@{models[key].version}" for key in reached})
        out.append(Credit(name, tuple(sorted(roles)), tuple(refs), len(patterns), tuple(sorted(set(patterns)))))
    return sorted(out, key=lambda c: (-c.frames, c.name))
