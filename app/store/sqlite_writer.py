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

Transactions that start in the same turns of the event loop share one COMMIT (group commit).
Each `begin()` block is a SAVEPOINT inside the open SQLite transaction, released when the block
ends and rolled back to when it raises, so a block is still all or nothing; the block's caller
resumes only once the shared COMMIT is done (or raises the COMMIT's error), so nothing is
reported written before it is. A COMMIT writes each changed page to the WAL once, however many
blocks changed it: concurrent requests that each insert a few rows share most pages. A savepoint
copies each page it changes that an earlier block of the batch already changed into a statement
journal; with `temp_store=MEMORY` that journal stays in memory, where SQLite's default spills
it to a temporary file past 64 KB (seen under CRD load: a file created and deleted about once a
second, more often with larger batches).

Writes that stand alone (a new resource under a new id that nothing else reads or conflicts with,
such as the audit record of a CDS Hooks call) can skip the savepoint and the per-row statements:
`insert_at_commit` queues their rows on the batch, and just before the COMMIT every queued row of
one statement is inserted by a single `executemany`. Such a block cannot be undone on its own, so
a failure to insert those rows fails the whole batch, like a failed COMMIT.

Each batch also records which resource types its blocks wrote (`LoopConnection.wrote`, the
`resource_types` of `insert_at_commit`); once its COMMIT is done (or has failed) the engine's
count of committed writes of each such type goes up. `freshness(type)` pairs that count with
SQLite's `data_version` of the write connection, which changes only when another connection (a
second worker, `greenlight demo-data`) commits. The pair stays the same only while nothing
changes that type's rows (it may also change when nothing relevant did), which lets a reader
keep what it read (`app.store.lookup_cache`).

Checkpoints (copying the WAL back into the database file, with its fsyncs) would otherwise run
inside whichever COMMIT crosses SQLite's auto-checkpoint threshold, stalling the event loop for
milliseconds. The write connection turns auto-checkpointing off and, at most once per
`checkpoint_seconds` after commits, a worker thread runs a PASSIVE checkpoint on a connection of
its own (it never blocks writers; readers keep their snapshots).

A PASSIVE checkpoint copies the WAL back but never resets it: SQLite starts the WAL over only
when a write begins after a checkpoint that copied every frame, and under steady writes new
frames always arrive while the checkpoint runs. The WAL then grows without bound (measured:
~36 KB per CRD call, 833 MB after 24,000 calls, each call slower as it grew). So when a PASSIVE
checkpoint finds the WAL longer than `restart_frames` (it then makes a second pass for the frames
written during the first), the next COMMIT, still holding this process's writer lock, has a
worker thread run a RESTART checkpoint: it takes SQLite's write lock (this process holds no write
transaction then; under steady writes a checkpoint waiting in SQLite's busy handler for a gap
between transactions seldom found one), copies the few frames left, syncs the database file, and
makes the next write start the WAL over from its beginning. The WAL file keeps its size (about
`restart_frames` pages) and is written again from the start; truncating it instead cost 100-190
ms against 6-21 ms measured. This process's writers wait on the lock meanwhile and the loop stays
free; another process's write lock, or readers of older snapshots, are waited for 250 ms at
most, after which the RESTART gives up until the next PASSIVE checkpoint finds the WAL still
too long.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

log = logging.getLogger("greenlight.store")

_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
_RESTART = "PRAGMA wal_checkpoint(RESTART)"
#: WAL length (frames, i.e. pages: 256 MB of 4 KB pages) above which the WAL is restarted; up
#: to ~400 MB of WAL measured no slower per call
RESTART_FRAMES = 65_536
_DATA_VERSION = "PRAGMA data_version"
_SAVEPOINT = "SAVEPOINT greenlight_write"
_RELEASE = "RELEASE greenlight_write"
_ROLLBACK_TO = "ROLLBACK TO greenlight_write"
_FIRST_RETRY_SECONDS = 0.0005
_LONGEST_RETRY_SECONDS = 0.05


class LoopConnection:
    """A connection inside a write transaction; statements run on the calling thread.

    `raw` is the same connection's `sqlite3.Connection`, for prebuilt writes
    (`app.store.row_writes`).
    """

    __slots__ = ("_batch", "_connection", "raw")

    def __init__(self, connection: Connection, raw: sqlite3.Connection, batch: _Batch) -> None:
        self._connection = connection
        self.raw = raw
        self._batch = batch

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)

    def wrote(self, resource_type: str) -> None:
        """Record that this transaction writes resources of `resource_type` (see `freshness`)."""
        self._batch.written.add(resource_type)


def _is_busy(error: OperationalError) -> bool:
    original = error.orig
    return isinstance(original, sqlite3.OperationalError) and getattr(
        original, "sqlite_errorcode", None
    ) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Batch:
    """The blocks written since the open transaction's BEGIN, each waiting for its COMMIT.

    Each block waits on a future of its own, so a caller that is cancelled while waiting
    cancels only its wait, never the COMMIT the other blocks wait for.
    """

    __slots__ = ("_error", "_inserts", "_loop", "_settled", "_waiters", "written")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []
        self._settled = False
        self._error: BaseException | None = None
        self._inserts: dict[str, list[Sequence[Any]]] = {}  # INSERT text -> rows, in order
        self.written: set[str] = set()  # resource types the batch's blocks write

    def insert_later(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Rows for `insert_pending` to write just before the COMMIT."""
        self._inserts.setdefault(sql, []).extend(rows)

    def insert_pending(self, raw: sqlite3.Connection) -> None:
        """Write the rows given to `insert_later`: one `executemany` per statement, statements
        in the order they were first given."""
        for sql, rows in self._inserts.items():
            raw.executemany(sql, rows)
        self._inserts.clear()

    def waiter(self) -> asyncio.Future[None]:
        """A future done when the batch is committed (or raising why it was not)."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self._settled:
            self._resolve(waiter)
        else:
            self._waiters.append(waiter)
        return waiter

    def settle(self, error: BaseException | None) -> None:
        """Committed (`error` None) or failed: every block's wait ends."""
        if self._settled:
            return
        self._settled, self._error = True, error
        for waiter in self._waiters:
            self._resolve(waiter)
        self._waiters.clear()

    def _resolve(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():
            return  # its caller was cancelled
        if self._error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(self._error)


class SqliteWriteEngine:
    """`begin()` for write transactions, with the interface of SQLAlchemy's `AsyncEngine.begin`."""

    def __init__(
        self,
        url: str,
        *,
        busy_seconds: float = 15.0,
        checkpoint_seconds: float = 1.0,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self.busy_seconds = busy_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.restart_frames = restart_frames
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
        self._checkpointing: asyncio.Future[Any] | None = None
        self._restart_wanted = False
        self._checkpointed_at = time.monotonic()
        self._batch: _Batch | None = None
        self._committer: asyncio.Task[None] | None = None
        self._committed_writes: dict[str, int] = {}  # resource type -> batches that wrote it

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
                "PRAGMA temp_store=MEMORY",  # savepoint journals (see the module docstring)
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
        """One write transaction: committed when the block ends, rolled back if it raises.

        The block is a savepoint of the batch open now (see the module docstring); leaving it
        waits for that batch's COMMIT.
        """
        async with self._lock():
            connection, batch = await self._joined_batch()
            raw = self._raw_connection(connection)
            raw.execute(_SAVEPOINT)
            try:
                yield LoopConnection(connection, raw, batch)
                raw.execute(_RELEASE)
            except BaseException:
                self._undo(raw, batch)
                raise
            committed = batch.waiter()
        await committed

    async def execute_one(self, sql: str, values: Sequence[Any]) -> int:
        """One statement as a write of its own, in the open batch; the rows it wrote, once
        committed. No savepoint is needed: SQLite backs out a statement that fails (a constraint
        violation raises `sqlite3.IntegrityError`) and keeps the batch's other writes."""
        async with self._lock():
            connection, batch = await self._joined_batch()
            raw = self._raw_connection(connection)
            try:
                written = raw.execute(sql, values).rowcount
            except sqlite3.Error:
                if not raw.in_transaction:  # SQLite rolled the whole transaction back
                    self._fail(batch, sqlite3.OperationalError("the write transaction was lost"))
                raise
            committed = batch.waiter()
        await committed
        return written

    async def insert_at_commit(
        self,
        inserts: Sequence[tuple[str, Sequence[Sequence[Any]]]],
        resource_types: Sequence[str] = (),
    ) -> None:
        """Rows (`(INSERT text, rows)`, in order) to insert with the open batch, returning once
        committed: they are inserted just before the COMMIT, together with every other block's
        rows for the same statement (one `executemany` each), without a savepoint.
        `resource_types`: the types of the resources they write (see `freshness`).

        For rows that nothing else in the batch reads or conflicts with (a new resource under a
        new id, such as an audit record): a failure to insert them fails the whole batch, as a
        failed COMMIT does.
        """
        async with self._lock():
            _connection, batch = await self._joined_batch()
            for sql, rows in inserts:
                batch.insert_later(sql, rows)
            batch.written.update(resource_types)
            committed = batch.waiter()
        await committed

    def freshness(self, resource_type: str) -> tuple[int, int] | None:
        """A stamp that stays the same while no write to `resource_type` commits: the batches
        of this engine that wrote that type (counted once their COMMIT ended, committed or
        not), and the write connection's `data_version` (changed by every other connection's
        commit, whatever it wrote; never by this connection's own). Take it before reading.
        None when SQLite cannot tell now (the connection busy or failing)."""
        try:
            raw = self._raw_connection(self._connect())
            (data_version,) = raw.execute(_DATA_VERSION).fetchone()
        except sqlite3.Error:
            return None
        return self._committed_writes.get(resource_type, 0), int(data_version)

    def _count_writes(self, batch: _Batch) -> None:
        """The batch's COMMIT has ended: each type it wrote has (possibly) changed."""
        for resource_type in batch.written:
            self._committed_writes[resource_type] = self._committed_writes.get(resource_type, 0) + 1
        batch.written.clear()

    async def _joined_batch(self) -> tuple[Connection, _Batch]:
        """The write connection and the open batch (BEGIN IMMEDIATE first if none is open);
        call with the lock held."""
        connection = self._connect()
        batch = self._batch
        if batch is None:
            await self._begin(connection)
            batch = self._open_batch()
        return connection, batch

    def _open_batch(self) -> _Batch:
        loop = asyncio.get_running_loop()
        batch = _Batch(loop)
        self._batch = batch
        self._committer = loop.create_task(self._commit_when_idle(batch))
        return batch

    def _undo(self, raw: sqlite3.Connection, batch: _Batch) -> None:
        """Roll the failed block back to its savepoint; if SQLite already rolled the whole
        transaction back (an I/O error, a full disk), the batch fails with it."""
        try:
            if raw.in_transaction:
                raw.execute(_ROLLBACK_TO)
                raw.execute(_RELEASE)
                return
        except sqlite3.Error as exc:
            log.warning("rolling back a write to its savepoint failed: %s", exc)
        self._fail(batch, sqlite3.OperationalError("the write transaction was rolled back"))

    def _fail(self, batch: _Batch, error: BaseException) -> None:
        """End the batch's transaction (the write lock with it) and fail its blocks."""
        if self._batch is batch:
            self._batch = None
        if self._connection is not None:
            self._connection.rollback()  # SQLAlchemy's record of the transaction
            raw = self._raw_connection(self._connection)
            if raw.in_transaction:  # a failed COMMIT leaves SQLite's open: end it too
                raw.rollback()
        self._count_writes(batch)
        batch.settle(error)

    async def _commit_when_idle(self, batch: _Batch) -> None:
        """COMMIT the batch once the blocks that are ready to run in this loop turn have."""
        await asyncio.sleep(0)
        async with self._lock():
            if self._batch is not batch or self._connection is None:
                return  # failed (and rolled back) meanwhile
            self._batch = None
            try:
                batch.insert_pending(self._raw_connection(self._connection))
                self._connection.commit()
            except BaseException as exc:
                self._fail(batch, exc)
                return
            self._count_writes(batch)
            batch.settle(None)
            if self._restart_wanted and self._checkpointing is None:
                await self._restart_wal()
        self._after_commit()

    async def _restart_wal(self) -> None:
        """RESTART checkpoint in a worker thread, between batches, with the lock held: this
        process has no write transaction open and its writers wait on the lock meanwhile (the
        loop stays free for reads)."""
        self._restart_wanted = False
        restarting = asyncio.get_running_loop().run_in_executor(None, self._restart)
        self._checkpointing = restarting
        try:
            await restarting
        except sqlite3.Error as exc:
            log.warning("WAL restart failed: %s", exc)
        finally:
            self._checkpointing = None

    @staticmethod
    def _raw_connection(connection: Connection) -> sqlite3.Connection:
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    def _after_commit(self) -> None:
        now = time.monotonic()
        if self._checkpointing is not None or now - self._checkpointed_at < self.checkpoint_seconds:
            return
        self._checkpointed_at = now
        future = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        self._checkpointing = future
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[int]) -> None:
        self._checkpointing = None
        if future.cancelled():
            return
        if future.exception() is not None:
            log.warning("WAL checkpoint failed: %s", future.exception())
        elif future.result() >= self.restart_frames:
            self._restart_wanted = True  # at the end of the next COMMIT

    def _checkpointer_connection(self) -> sqlite3.Connection:
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                str(self._path), isolation_level=None, check_same_thread=False
            )
            # only the RESTART checkpoint waits (PASSIVE never does): for another process's
            # write lock, then for readers of older snapshots, holding the write lock
            self._checkpointer.execute("PRAGMA busy_timeout=250")
        return self._checkpointer

    def _checkpoint(self) -> int:
        """A PASSIVE checkpoint, in a worker thread, on the checkpointer's own connection; the
        number of frames in the WAL."""
        connection = self._checkpointer_connection()
        _busy, frames, _copied = connection.execute(_CHECKPOINT).fetchone()
        if frames >= self.restart_frames:  # a RESTART follows: copy what came meanwhile too,
            # so that it has little left to copy while this process's writers wait for it
            _busy, frames, _copied = connection.execute(_CHECKPOINT).fetchone()
        return int(frames)

    def _restart(self) -> None:
        """A RESTART checkpoint, in a worker thread (see the module docstring)."""
        self._checkpointer_connection().execute(_RESTART).fetchall()

    async def dispose(self) -> None:
        if self._committer is not None and not self._committer.done():
            await asyncio.wait([self._committer])
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
