"""Walking folders into the index: output EXRs, model folders and dataset manifests.

* An EXR whose first part carries plateforge provenance (``plateforge/model`` …, see
  :mod:`plateforge.provenance`) is an output frame; any other EXR (a plate) is noted and skipped.
* A folder holding ``card.json`` and ``model.safetensors`` is a model; its card (checked against
  the one inside the weights, :func:`plateforge.modelcards.read_model_card`, without rehashing the
  weights) gives its hash, parent, base model, sources and contributors.
* A ``.toml`` file whose schema is ``plateforge.dataset/…`` is a manifest; other TOML is skipped.

Incremental: a file whose size and modification time are those recorded is not read again; a
changed file has its rows replaced (in one transaction), a file gone from a walked folder has
its rows removed. A file that cannot be read is reported, and its old rows are removed.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plateforge.errors import ExrError, ManifestError, ModelIntegrityError, UsageError
from plateforge.exr import read_exr_header
from plateforge.lineage._db import Database
from plateforge.lineage._schema import OWNED_TABLES
from plateforge.modelcards import CARD_FILE, WEIGHTS_FILE, read_model_card
from plateforge.provenance import from_attributes

__all__ = ["IndexReport", "frame_pattern", "index_paths"]

_FRAME = re.compile(r"^(.*[._-])(-?\d+)(\.[^.]+)$")
_DATASET_SCHEMA = re.compile(r'^\s*schema\s*=\s*["\']plateforge\.dataset/', re.MULTILINE)


@dataclass
class IndexReport:
    """What one ``index`` run did, by path."""

    run: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: Files looked at that hold nothing for the index (plates, other TOML).
    ignored: int = 0
    #: (path, why) for files that could not be read.
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"indexed run {self.run}: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged, {self.ignored} without lineage"
        )
        return text + (f", {len(self.problems)} unreadable" if self.problems else "")


def frame_pattern(path: str) -> tuple[str, int | None]:
    """``(pattern, frame)`` of a numbered file: ``/o/sh010.1001.exr`` -> ``(/o/sh010.####.exr, 1001)``;
    a file without a frame number is its own pattern."""
    folder, name = os.path.split(path)
    match = _FRAME.match(name)
    if not match:
        return path, None
    head, digits, tail = match.groups()
    width = len(digits.lstrip("-"))
    return os.path.join(folder, f"{head}{'#' * width}{tail}"), int(digits)


# -- what a path holds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    path: str
    kind: str  # "model", "exr", "manifest"
    size: int
    mtime_ns: int


def _stat(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _model_item(folder: str) -> _Item:
    card_size, card_mtime = _stat(os.path.join(folder, CARD_FILE))
    weights_size, weights_mtime = _stat(os.path.join(folder, WEIGHTS_FILE))
    # Either file changing changes the signature.
    return _Item(folder, "model", card_size + weights_size, max(card_mtime, weights_mtime))


def _walk(root: str) -> Iterator[_Item]:
    if os.path.isfile(root):
        name = os.path.basename(root)
        if name in (CARD_FILE, WEIGHTS_FILE):
            yield _model_item(os.path.dirname(root))
        elif name.lower().endswith((".exr", ".toml")):
            yield _Item(root, "exr" if name.lower().endswith(".exr") else "manifest", *_stat(root))
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found: list[_Item] = []
        try:  # a file removed between listing and stat is simply not there
            if CARD_FILE in files and WEIGHTS_FILE in files:
                found.append(_model_item(folder))
        except FileNotFoundError:
            pass
        for name in sorted(files):
            lower = name.lower()
            if name.startswith(".") or not lower.endswith((".exr", ".toml")):
                continue
            path = os.path.join(folder, name)
            try:
                found.append(_Item(path, "exr" if lower.endswith(".exr") else "manifest", *_stat(path)))
            except FileNotFoundError:
                continue
        yield from found


# -- rows of each kind ---------------------------------------------------------------------------

Rows = dict[str, list[tuple[Any, ...]]]


def _model_rows(item: _Item) -> Rows:
    card = read_model_card(item.path, verify=False)
    parent = card.get("parent") or {}
    base = card.get("base_model") or {}
    rows: Rows = {
        "models": [
            (
                item.path, card["weights_sha256"], card["name"], card["version"], card["tool"], card["net"]["arch"],
                card["created"], parent.get("sha256"), parent.get("name"), parent.get("version"),
                base.get("sha256"), base.get("name"), base.get("licence"),
            )
        ],
        "model_sources": [],
        "model_contributors": [],
    }  # fmt: skip
    for source in card["sources"]:
        rows["model_sources"].append(
            (item.path, source["path"], source["sha256"], source["licence"], source["rights_holder"])
        )
        for person in source.get("contributors", []):
            rows["model_contributors"].append((item.path, source["sha256"], person["name"], person["role"]))
    return rows


def _frame_rows(item: _Item) -> Rows | None:
    parts = read_exr_header(item.path)  # an ExrError naming the file when it is not a readable EXR
    record = from_attributes(parts[0].attributes) if parts else {}
    if not record.get("model"):
        return None  # a plate, or an EXR no plateforge model made
    pattern, number = frame_pattern(item.path)
    if number is None and record.get("frame", "").lstrip("-").isdigit():
        number = int(record["frame"])
    inputs: set[str] = set()
    try:
        table = json.loads(record.get("inputsSha256") or "{}")
    except ValueError:
        table = {}
    if isinstance(table, dict):
        for by_frame in table.values():
            if isinstance(by_frame, dict):
                inputs.update(v for v in by_frame.values() if isinstance(v, str))
    if record.get("sourceFileSha256"):
        inputs.add(record["sourceFileSha256"])
    return {
        "frames": [
            (
                item.path, pattern, number, record["model"], record.get("modelVersion", ""),
                record.get("modelHash", ""), record.get("tool", ""), record.get("sourceFile", ""),
                record.get("sourceFileSha256", ""), item.mtime_ns, json.dumps(record, sort_keys=True),
            )
        ],
        "frame_inputs": [(item.path, digest) for digest in sorted(inputs)],
    }  # fmt: skip


def _manifest_rows(item: _Item) -> Rows | None:
    try:
        text = Path(item.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read '{item.path}': {exc}") from None
    if not _DATASET_SCHEMA.search(text):
        return None
    from plateforge.manifest_format import parse_manifest  # the one reader of the format

    manifest = parse_manifest(text, path=Path(item.path))
    rows: Rows = {"manifest_files": [], "manifest_contributors": []}
    for source_file in manifest.resolve():
        file = str(source_file.path)
        rows["manifest_files"].append(
            (item.path, manifest.name, file, source_file.sha256, source_file.licence, source_file.rights_holder)
        )
        for person in source_file.contributors:
            rows["manifest_contributors"].append((item.path, file, person.name, person.role))
    return rows


_READERS: dict[str, Callable[[_Item], Rows | None]] = {
    "model": _model_rows,
    "exr": _frame_rows,
    "manifest": _manifest_rows,
}
_COLUMNS = {
    "models": 13,
    "model_sources": 5,
    "model_contributors": 4,
    "manifest_files": 6,
    "manifest_contributors": 4,
    "frames": 11,
    "frame_inputs": 2,
}


# -- the run -------------------------------------------------------------------------------------


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _drop(db: Database, path: str) -> None:
    for table in OWNED_TABLES:
        db.execute(f"DELETE FROM {table} WHERE owner = ?", (path,))


def _new_run(db: Database) -> int:
    with db.transaction():
        last = db.execute("SELECT MAX(run) FROM index_runs")[0][0]
        run = int(last or 0) + 1
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        db.execute("INSERT INTO index_runs (run, started) VALUES (?, ?)", (run, started))
    return run


def index_paths(
    db: Database,
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> IndexReport:
    """Index every output EXR, model folder and manifest under ``paths`` (folders or files) into
    ``db`` (migrated: :func:`plateforge.lineage.open_index`); see the module doc. ``progress``
    gets ``(done, total, path)`` after each file read: the folders are walked (names and stats
    only) before any file is read, so ``total``, the files new or changed, is known from the
    first."""
    roots = [os.path.abspath(os.fspath(p)) for p in paths]
    missing = [r for r in roots if not os.path.exists(r)]
    if missing:
        raise UsageError(f"nothing to index at {', '.join(repr(m) for m in missing)}: no such file or folder")
    report = IndexReport(run=_new_run(db))
    known = {
        row[0]: (row[1], int(row[2]), int(row[3]))
        for row in db.execute("SELECT path, kind, size, mtime_ns FROM indexed_files")
        if _inside(row[0], roots)
    }
    seen: set[str] = set()
    to_read: list[tuple[_Item, bool]] = []  # (item, replacing rows it had)
    for root in roots:
        for item in _walk(root):
            if item.path in seen:
                continue
            seen.add(item.path)
            before = known.get(item.path)
            if before is not None and before[1:] == (item.size, item.mtime_ns):
                report.unchanged += 1
                continue
            to_read.append((item, before is not None))
    for done, (item, replacing) in enumerate(to_read, 1):
        _read_one(db, item, report, replacing=replacing)
        if progress is not None:
            progress(done, len(to_read), item.path)
    for gone in sorted(set(known) - seen):
        with db.transaction():
            _drop(db, gone)
            db.execute("DELETE FROM indexed_files WHERE path = ?", (gone,))
        report.removed.append(gone)
    return report


def _read_one(db: Database, item: _Item, report: IndexReport, *, replacing: bool) -> None:
    problem: str | None = None
    rows: Rows | None = None
    try:
        rows = _READERS[item.kind](item)
    except (ExrError, ModelIntegrityError, ManifestError, OSError) as exc:
        problem = str(exc)
        report.problems.append((item.path, problem))
    kind = item.kind if rows is not None or problem is not None else "none"
    with db.transaction():
        _drop(db, item.path)
        for table, values in (rows or {}).items():
            marks = ", ".join("?" * _COLUMNS[table])
            db.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
        db.execute("DELETE FROM indexed_files WHERE path = ?", (item.path,))
        db.execute(
            "INSERT INTO indexed_files (path, kind, size, mtime_ns, run, problem) VALUES (?, ?, ?, ?, ?, ?)",
            (item.path, kind, item.size, item.mtime_ns, report.run, problem),
        )
    if rows is None and problem is None:
        report.ignored += 1
    elif problem is None:
        (report.updated if replacing else report.added).append(item.path)
