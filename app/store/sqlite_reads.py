"""Point reads (read, vread) on SQLite through the standard library, on the event loop.

A primary-key lookup in SQLite takes microseconds; the async driver's thread hand-offs cost about
a millisecond per read (measured: see bench/README.md). In WAL mode readers never wait for
writers, so one read-only connection per process answers point reads inline without blocking
the loop. Writes, searches and PostgreSQL keep using SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

_CURRENT = (
    "SELECT version_id, last_updated_us, deleted, body FROM resources "
    "WHERE resource_type = ? AND id = ?"
)
# Superseded versions are in `resource_versions`; the current one only in `resources`.
_VERSION = (
    "SELECT version_id, last_updated_us, deleted, body FROM resource_versions "
    "WHERE resource_type = ?1 AND id = ?2 AND version_id = ?3 "
    "UNION ALL SELECT version_id, last_updated_us, deleted, body FROM resources "
    "WHERE resource_type = ?1 AND id = ?2 AND version_id = ?3"
)

Row = tuple[int, int, int, str | None]


class SqlitePointReader:
    """One read-only connection (autocommit: each statement reads one consistent snapshot)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def for_url(cls, url: str) -> SqlitePointReader | None:
        """A reader for a file-based SQLite URL; None for anything else (memory, PostgreSQL)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database:
            return None
        if parsed.database == ":memory:" or parsed.database.startswith("file:"):
            return None
        return cls(Path(parsed.database))

    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA busy_timeout=200")
            self._connection = connection
        return self._connection

    def current(self, resource_type: str, resource_id: str) -> Row | None:
        return self._one(_CURRENT, (resource_type, resource_id))

    def version(self, resource_type: str, resource_id: str, version_id: int) -> Row | None:
        return self._one(_VERSION, (resource_type, resource_id, version_id))

    def _one(self, sql: str, params: tuple[Any, ...]) -> Row | None:
        row: Row | None = self._conn().execute(sql, params).fetchone()
        return row

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """All rows of a read-only query (for the few hot lookups written as plain SQL)."""
        return list(self._conn().execute(sql, params).fetchall())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
