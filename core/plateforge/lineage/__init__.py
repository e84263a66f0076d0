"""The lineage index: which frames and models came from which footage, licences and artists.

``plateforge lineage index DIR...`` walks output EXRs (their provenance headers), model folders
(their cards) and dataset manifests into a database: an embedded SQLite file by default
(:data:`DEFAULT_FILE` in the current folder, or :data:`ENV_DB`), a PostgreSQL server when a show
outgrows one file. The queries answer what a show must act on: what to redo when a licence or a
source is withdrawn (:func:`affected`), whose work trained the tools and how much they were used
(:func:`credits`), and the whole chain behind one frame (:func:`frame_chain`). Host side: no
torch, nothing from the server but the manifest reader.
"""

from __future__ import annotations

from plateforge.lineage._chain import frame_chain
from plateforge.lineage._db import DEFAULT_FILE, ENV_DB, Database, open_database, resolve_url
from plateforge.lineage._query import (
    Affected,
    AffectedFrame,
    AffectedModel,
    Credit,
    affected,
    credits,
    frame_ranges,
    parse_since,
)
from plateforge.lineage._report import (
    affected_csv,
    affected_frames,
    affected_json,
    credits_csv,
    credits_html,
    credits_json,
)
from plateforge.lineage._scan import IndexReport, frame_pattern, index_paths
from plateforge.lineage._schema import MIGRATIONS, SCHEMA_VERSION, migrate

__all__ = [
    "DEFAULT_FILE",
    "ENV_DB",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Affected",
    "AffectedFrame",
    "AffectedModel",
    "Credit",
    "Database",
    "IndexReport",
    "affected",
    "affected_csv",
    "affected_frames",
    "affected_json",
    "credits",
    "credits_csv",
    "credits_html",
    "credits_json",
    "frame_chain",
    "frame_pattern",
    "frame_ranges",
    "index_paths",
    "migrate",
    "open_database",
    "open_index",
    "parse_since",
    "resolve_url",
]


def open_index(url: str | None = None) -> Database:
    """The index ``url`` names (:func:`resolve_url`), opened and migrated to :data:`SCHEMA_VERSION`."""
    db = open_database(resolve_url(url))
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db
