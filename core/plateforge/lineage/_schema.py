"""The index's one schema, as versioned migrations.

Each migration is a version number and its statements; :func:`migrate` applies, in order and
each in one transaction, those a database lacks, and records each in ``lineage_schema``. A
database written by a newer release (a version this one does not know) is refused with the
known versions, never altered. Every row is owned by the file it was read from (``owner``, the
path in ``indexed_files``), so re-indexing one file replaces exactly its rows.
"""

from __future__ import annotations

import datetime

from plateforge.errors import LineageIndexError
from plateforge.lineage._db import Database

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

_V1 = (
    # What was indexed: one row per file (a model folder counts as one), with the size and mtime
    # that tell an unchanged file, the run that last read it, and why it could not be, if so.
    """CREATE TABLE indexed_files (
        path TEXT PRIMARY KEY, kind TEXT NOT NULL, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL,
        run INTEGER NOT NULL, problem TEXT)""",
    "CREATE TABLE index_runs (run INTEGER PRIMARY KEY, started TEXT NOT NULL)",
    # A model folder's card: the weights' hash is the model's identity (what frames record).
    """CREATE TABLE models (
        owner TEXT PRIMARY KEY, sha256 TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
        tool TEXT NOT NULL, arch TEXT NOT NULL, created TEXT NOT NULL,
        parent_sha256 TEXT, parent_name TEXT, parent_version TEXT,
        base_sha256 TEXT, base_name TEXT, base_licence TEXT)""",
    "CREATE INDEX models_sha256 ON models (sha256)",
    "CREATE INDEX models_parent ON models (parent_sha256)",
    "CREATE INDEX models_base ON models (base_sha256)",
    """CREATE TABLE model_sources (
        owner TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL, licence TEXT NOT NULL,
        rights_holder TEXT NOT NULL)""",
    "CREATE INDEX model_sources_owner ON model_sources (owner)",
    "CREATE INDEX model_sources_sha256 ON model_sources (sha256)",
    """CREATE TABLE model_contributors (
        owner TEXT NOT NULL, source_sha256 TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL)""",
    "CREATE INDEX model_contributors_owner ON model_contributors (owner)",
    # A manifest's files (absolute paths), with their terms and the hash registered, if any.
    """CREATE TABLE manifest_files (
        owner TEXT NOT NULL, dataset TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT,
        licence TEXT NOT NULL, rights_holder TEXT NOT NULL)""",
    "CREATE INDEX manifest_files_owner ON manifest_files (owner)",
    "CREATE INDEX manifest_files_file ON manifest_files (file)",
    """CREATE TABLE manifest_contributors (
        owner TEXT NOT NULL, file TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL)""",
    "CREATE INDEX manifest_contributors_owner ON manifest_contributors (owner)",
    # An output EXR's provenance: the model (by hash) that made it, from which source.
    """CREATE TABLE frames (
        owner TEXT PRIMARY KEY, pattern TEXT NOT NULL, frame INTEGER, model TEXT NOT NULL,
        model_version TEXT NOT NULL, model_sha256 TEXT NOT NULL, tool TEXT NOT NULL,
        source_file TEXT NOT NULL, source_sha256 TEXT NOT NULL, written_ns BIGINT NOT NULL,
        record TEXT NOT NULL)""",
    "CREATE INDEX frames_model ON frames (model_sha256)",
    "CREATE TABLE frame_inputs (owner TEXT NOT NULL, sha256 TEXT NOT NULL)",
    "CREATE INDEX frame_inputs_owner ON frame_inputs (owner)",
    "CREATE INDEX frame_inputs_sha256 ON frame_inputs (sha256)",
)

#: version -> statements. Append a new version; never edit one that has shipped.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1}
#: The version this release writes.
SCHEMA_VERSION = max(MIGRATIONS)

#: Tables every owned row lives in (those with an ``owner`` column), for replacing a file's rows.
OWNED_TABLES = (
    "models",
    "model_sources",
    "model_contributors",
    "manifest_files",
    "manifest_contributors",
    "frames",
    "frame_inputs",
)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def current_version(db: Database) -> int:
    if not db.has_table("lineage_schema"):
        return 0
    rows = db.execute("SELECT MAX(version) FROM lineage_schema")
    return int(rows[0][0] or 0)


def migrate(db: Database) -> int:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; return the version it had."""
    with db.transaction():
        if not db.has_table("lineage_schema"):
            db.execute("CREATE TABLE lineage_schema (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
    found = current_version(db)
    if found > SCHEMA_VERSION:
        raise LineageIndexError(
            f"the lineage index {db.label} has schema version {found}, written by a newer plateforge; this release "
            f"knows versions {', '.join(str(v) for v in sorted(MIGRATIONS))}: upgrade plateforge, or index into "
            "another database"
        )
    for version in sorted(v for v in MIGRATIONS if v > found):
        with db.transaction():
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute("INSERT INTO lineage_schema (version, applied) VALUES (?, ?)", (version, _now()))
    return found
