"""The index's database: an embedded SQLite file by default, a PostgreSQL server when a show
outgrows one file. Plain DB-API (``sqlite3`` from the standard library, ``psycopg`` 3 for
PostgreSQL) behind one small class, so the schema and every query are written once.

SQL is written with ``?`` placeholders and only portable types (TEXT, INTEGER, BIGINT); for
PostgreSQL the placeholders become ``%s``. No statement holds a literal ``?`` or ``%``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from plateforge.errors import LineageIndexError

__all__ = ["DEFAULT_FILE", "ENV_DB", "Database", "open_database", "resolve_url"]

#: The index file made in the current folder when neither ``--db`` nor the variable names one.
DEFAULT_FILE = "plateforge-lineage.sqlite"
#: The variable naming the index (a file path, ``sqlite:///path`` or ``postgresql://…``).
ENV_DB = "PLATEFORGE_LINEAGE_DB"

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]


def resolve_url(given: str | None) -> str:
    """``--db`` if given, else :data:`ENV_DB`, else :data:`DEFAULT_FILE` in the current folder."""
    return given or os.environ.get(ENV_DB) or os.path.abspath(DEFAULT_FILE)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Database:
    """One open connection. ``execute`` runs one statement and returns its rows (if any)."""

    def __init__(self, connection: Any, dialect: Dialect, label: str) -> None:
        self._connection = connection
        self.dialect: Dialect = dialect
        #: The database, as messages name it (a PostgreSQL URL without its password).
        self.label = label

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(self._sql(sql), tuple(params))
            return [tuple(r) for r in cursor.fetchall()] if cursor.description is not None else []
        finally:
            cursor.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        cursor = self._connection.cursor()
        try:
            cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
        finally:
            cursor.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        if self.dialect == "postgresql":
            with self._connection.transaction():
                yield
            return
        # IMMEDIATE: a second indexer waits for this one instead of failing half-way.
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        if self.dialect == "postgresql":
            found = self.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", (name,))
        else:
            found = self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(found)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_POSTGRES = re.compile(r"^postgres(ql)?(\+psycopg)?://", re.IGNORECASE)


def open_database(url: str) -> Database:
    """Open (creating a SQLite file if needed) the database ``url`` names: a file path or
    ``sqlite:///path``, or ``postgresql://user[:password]@host[:port]/dbname``."""
    if _POSTGRES.match(url):
        return _open_postgres(url)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path:
        raise LineageIndexError(
            f"cannot open the lineage index {_redacted(url)!r}: give a file path, sqlite:///PATH or postgresql://…"
        )
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise LineageIndexError(f"cannot create the lineage index {path!r}: the folder {folder} does not exist")
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=60.0)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses at most the last commits, never the file
    except sqlite3.Error as exc:
        raise LineageIndexError(f"cannot open the lineage index {path!r}: {exc}") from None
    return Database(connection, "sqlite", path)


def _open_postgres(url: str) -> Database:
    label = _redacted(url)
    try:
        import psycopg
    except ImportError:
        raise LineageIndexError(
            f"the lineage index {label} is a PostgreSQL database, which needs psycopg: "
            "pip install 'plateforge[postgres]'"
        ) from None
    dsn = re.sub(r"^postgres(ql)?\+psycopg://", "postgresql://", url, flags=re.IGNORECASE)
    try:
        connection = psycopg.connect(dsn, autocommit=True, connect_timeout=20)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LineageIndexError(f"cannot connect to the lineage index {label}: {first}") from None
    return Database(connection, "postgresql", label)
