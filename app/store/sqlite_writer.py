"""Write transactions on a file-based SQLite database: one connection per process, on the loop.

SQLite runs one write transaction at a time. Through the async driver each transaction cost
about seven thread hand-offs, and concurrent writers on separate pooled connections queued inside
SQLite's busy handler, which sleeps in steps of up to 100 ms: that is where `patient-create` and
CRD spent most of their latency (bench/README.md). Here a process has one write connection and
an `asyncio.Lock` queues its writers, so no writer in this process ever meets the busy handler,
and each statement runs inline (an insert takes tens of microseconds; WAL with
`synchronous=NORMAL` does not fsync on commit).

Another process (a second worker, `greenlight demo-data`) may hold the write lock. `BEGIN
IMMEDIATE` is then retried with an asynchronous back-off rather than blocking the event loop, for
up to `busy_seconds`. Once it succeeds the transaction owns the write lock, so its statements and
its COMMIT never wait.

`begin()` yields a connection with the one method the repositories use, `await execute(...)`,
so code written against SQLAlchemy's `AsyncConnection` runs unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

_FIRST_RETRY_SECONDS = 0.0005
_LONGEST_RETRY_SECONDS = 0.05


class LoopConnection:
    """A connection inside a write transaction; statements run on the calling thread."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)


def _is_busy(error: OperationalError) -> bool:
    original = error.orig
    return isinstance(original, sqlite3.OperationalError) and getattr(
        original, "sqlite_errorcode", None
    ) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteWriteEngine:
    """`begin()` for write transactions, with the interface of SQLAlchemy's `AsyncEngine.begin`."""

    def __init__(self, url: str, *, busy_seconds: float = 15.0) -> None:
        self.busy_seconds = busy_seconds
        self._engine: Engine = create_engine(
            make_url(url).set(drivername="sqlite+pysqlite"),
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        self._connection: Connection | None = None
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {loop: asyncio.Lock()}  # one loop at a time serves the app
            lock = self._locks[loop]
        return lock

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect()
            raw = connection.connection.dbapi_connection
            assert raw is not None
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA busy_timeout=0",  # waits happen in `_begin`, off the event loop
                "PRAGMA foreign_keys=ON",
            ):
                raw.execute(pragma)
            self._connection = connection
        return self._connection

    async def _begin(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_seconds
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                connection.rollback()
                if not _is_busy(exc) or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LONGEST_RETRY_SECONDS)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[LoopConnection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        async with self._lock():
            connection = self._connect()
            await self._begin(connection)
            try:
                yield LoopConnection(connection)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    async def dispose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
