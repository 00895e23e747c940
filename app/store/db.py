"""Engines and connections for the embedded SQLite default and PostgreSQL.

SQLite gets WAL, a busy timeout and two engines: reads use deferred transactions so they run side
by side, writes use `BEGIN IMMEDIATE` so a read-then-write transaction can never fail half-way on
a lock upgrade. A file-based database writes through one connection per process on the event loop
(`app.store.sqlite_writer`); an in-memory one through the async driver. PostgreSQL uses one pool
for both.

Code that writes takes a `SqlConnection` (what both `writer.begin()` kinds yield) and only awaits
`execute`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from app.store.sqlite_reads import SqlitePointReader
from app.store.sqlite_writer import SqliteWriteEngine


class SqlConnection(Protocol):
    """What repositories use of a connection: SQLAlchemy `AsyncConnection` or `LoopConnection`."""

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...


class WriteEngine(Protocol):
    """`begin()` a write transaction: `AsyncEngine` or `SqliteWriteEngine`."""

    def begin(self) -> AbstractAsyncContextManager[SqlConnection]: ...

    async def dispose(self) -> None: ...


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a file-based SQLite database."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Database:
    """The engines of one database: `reader` for queries, `writer` for transactions that write."""

    url: str
    reader: AsyncEngine
    writer: WriteEngine
    point_reader: SqlitePointReader | None = None

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    async def dispose(self) -> None:
        if self.point_reader is not None:
            self.point_reader.close()
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def create_database(url: str, *, pool_size: int = 10) -> Database:
    """Engines for `url` (sqlite+aiosqlite:// or postgresql+asyncpg://)."""
    if is_sqlite(url):
        ensure_sqlite_directory(url)
        # Every transaction ends in our own COMMIT or ROLLBACK (engine.begin / connect blocks), so
        # the pool's reset-on-return ROLLBACK would only cost one more thread hand-off.
        reader = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_reset_on_return=None
        )
        _configure_sqlite(reader, immediate=False)
        point_reader = SqlitePointReader.for_url(url)
        if point_reader is not None:  # a file: its own connections see the same database
            return Database(url, reader, SqliteWriteEngine(url), point_reader)
        writer = create_async_engine(url, pool_size=2, max_overflow=2, pool_reset_on_return=None)
        _configure_sqlite(writer, immediate=True)
        return Database(url, reader, writer)
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    return Database(url, engine, engine)
