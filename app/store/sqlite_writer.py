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

Checkpoints (copying the WAL back into the database file, with its fsyncs) would otherwise run
inside whichever COMMIT crosses SQLite's auto-checkpoint threshold, stalling the event loop for
milliseconds. The write connection turns auto-checkpointing off and, at most once per
`checkpoint_seconds` after commits, a worker thread runs a PASSIVE checkpoint on a connection of
its own (it never blocks writers; readers keep their snapshots).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

log = logging.getLogger("greenlight.store")

_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
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

    def __init__(
        self, url: str, *, busy_seconds: float = 15.0, checkpoint_seconds: float = 1.0
    ) -> None:
        self.busy_seconds = busy_seconds
        self.checkpoint_seconds = checkpoint_seconds
        parsed = make_url(url).set(drivername="sqlite+pysqlite")
        self._path = parsed.database
        self._engine: Engine = create_engine(
            parsed,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        self._connection: Connection | None = None
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._checkpointed_at = time.monotonic()

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
                "PRAGMA wal_autocheckpoint=0",  # checkpoints run in a thread (`_checkpoint`)
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
        self._after_commit()

    def _after_commit(self) -> None:
        now = time.monotonic()
        if self._checkpointing is not None or now - self._checkpointed_at < self.checkpoint_seconds:
            return
        self._checkpointed_at = now
        future = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        self._checkpointing = future
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("WAL checkpoint failed: %s", future.exception())

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint, in a worker thread, on the checkpointer's own connection."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                str(self._path), isolation_level=None, check_same_thread=False
            )
            self._checkpointer.execute("PRAGMA busy_timeout=1000")
        self._checkpointer.execute(_CHECKPOINT).fetchall()

    async def dispose(self) -> None:
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
