"""Group commit on the SQLite write connection (`app.store.sqlite_writer`): engineering tests.

Every `SqliteWriteEngine.begin()` block is a SAVEPOINT inside a transaction shared by the blocks
that run in the same turns of the event loop; one COMMIT ends them all, and each caller resumes
only after it. These tests run on a real database file brought to head by the migrations (rows go
to `used_assertion_ids`), count the COMMITs the engine's own `sqlite3` connection really executes
(its trace callback), and look at what is durable through separate `sqlite3` connections.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from app.store.migrate import upgrade_database
from app.store.sqlite_writer import LoopConnection, SqliteWriteEngine
from app.store.tables import used_assertion_ids

CLIENT = "group-commit-test"
WRITERS = 12


class _BlockFailedError(Exception):
    """Raised inside a `begin()` block by the test."""


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    """A migrated database file, plus `parent`/`child` tables with a deferred foreign key."""
    path = tmp_path / "group-commit.db"
    upgrade_database(f"sqlite+aiosqlite:///{path}")
    with closing(sqlite3.connect(path, isolation_level=None)) as setup:
        setup.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        setup.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL "
            "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        # RAISE(ROLLBACK) ends the whole transaction, not just the statement
        setup.execute(
            "CREATE TRIGGER child_veto BEFORE INSERT ON child WHEN NEW.id = 666 "
            "BEGIN SELECT RAISE(ROLLBACK, 'vetoed'); END"
        )
    return path


@pytest.fixture
async def engine(database_file: Path) -> AsyncIterator[SqliteWriteEngine]:
    writer = SqliteWriteEngine(f"sqlite+aiosqlite:///{database_file}")
    try:
        yield writer
    finally:
        await writer.dispose()


async def _insert_jti(conn: LoopConnection, jti: str) -> None:
    await conn.execute(
        insert(used_assertion_ids).values(client_id=CLIENT, jti=jti, expires_at=2_000_000_000)
    )


async def _write(engine: SqliteWriteEngine, jti: str) -> None:
    async with engine.begin() as conn:
        await _insert_jti(conn, jti)


def _committed_jtis(path: Path) -> set[str]:
    """The `jti`s another connection of this process sees: what is committed."""
    with closing(sqlite3.connect(path)) as reader:
        rows = reader.execute(
            "SELECT jti FROM used_assertion_ids WHERE client_id = ?", (CLIENT,)
        ).fetchall()
    return {jti for (jti,) in rows}


def _count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as reader:
        (count,) = reader.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert isinstance(count, int)
    return count


async def _traced(engine: SqliteWriteEngine) -> list[str]:
    """The statements the engine's own `sqlite3` connection executes from now on."""
    statements: list[str] = []
    async with engine.begin() as conn:
        conn.raw.set_trace_callback(statements.append)
    assert statements[-1] == "COMMIT", "commit() is traced as the COMMIT statement it runs"
    statements.clear()
    return statements


async def test_awaited_one_after_another_each_block_commits(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    statements = await _traced(engine)
    for n in range(3):
        await _write(engine, f"sequential-{n}")
    assert statements.count("COMMIT") == 3
    assert _committed_jtis(database_file) == {f"sequential-{n}" for n in range(3)}


async def test_concurrent_blocks_share_commits_and_all_rows_land(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    statements = await _traced(engine)
    results = await asyncio.gather(*(_write(engine, f"concurrent-{n}") for n in range(WRITERS)))
    assert results == [None] * WRITERS
    commits = statements.count("COMMIT")
    assert 1 <= commits < WRITERS
    assert statements.count("BEGIN IMMEDIATE") == commits
    assert statements.count("SAVEPOINT greenlight_write") == WRITERS
    assert statements.count("RELEASE greenlight_write") == WRITERS
    assert _committed_jtis(database_file) == {f"concurrent-{n}" for n in range(WRITERS)}


async def test_a_block_is_durable_when_its_caller_resumes(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    async with engine.begin() as conn:
        await _insert_jti(conn, "alone")
        assert "alone" not in _committed_jtis(database_file), "not committed inside the block"
    assert "alone" in _committed_jtis(database_file)

    seen_on_resume: dict[str, bool] = {}

    async def write_then_look(jti: str) -> None:
        await _write(engine, jti)
        seen_on_resume[jti] = jti in _committed_jtis(database_file)

    statements = await _traced(engine)
    await asyncio.gather(*(write_then_look(f"shared-{n}") for n in range(WRITERS)))
    assert statements.count("COMMIT") < WRITERS, "the blocks shared a batch"
    assert seen_on_resume == {f"shared-{n}": True for n in range(WRITERS)}


async def test_a_failing_block_rolls_back_only_its_own_writes(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    async def failing() -> None:
        async with engine.begin() as conn:
            await _insert_jti(conn, "doomed-1")
            await _insert_jti(conn, "doomed-2")
            raise _BlockFailedError

    statements = await _traced(engine)
    results = await asyncio.gather(
        _write(engine, "before"), failing(), _write(engine, "after"), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], _BlockFailedError)
    assert results[2] is None
    assert statements.count("COMMIT") == 1, "all three blocks were in one batch"
    assert statements.count("ROLLBACK TO greenlight_write") == 1
    assert _committed_jtis(database_file) == {"before", "after"}


async def test_an_integrity_error_reaches_only_its_own_caller(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    await _write(engine, "taken")

    async def duplicate() -> None:
        async with engine.begin() as conn:
            await _insert_jti(conn, "written-before-the-duplicate")
            await _insert_jti(conn, "taken")

    statements = await _traced(engine)
    results = await asyncio.gather(
        _write(engine, "first"), duplicate(), _write(engine, "last"), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], IntegrityError)
    assert isinstance(results[1].orig, sqlite3.IntegrityError)
    assert results[2] is None
    assert statements.count("COMMIT") == 1, "all three blocks were in one batch"
    assert _committed_jtis(database_file) == {"taken", "first", "last"}


async def test_a_failed_commit_fails_every_block_of_the_batch(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    async def orphan() -> None:
        async with engine.begin() as conn:
            # accepted now, checked by SQLite at COMMIT: there is no parent 404
            await conn.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 404)"))

    async def with_parent() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO parent (id) VALUES (7)"))
            await conn.execute(text("INSERT INTO child (id, parent_id) VALUES (2, 7)"))

    statements = await _traced(engine)
    results = await asyncio.gather(
        _write(engine, "batch-1"),
        orphan(),
        with_parent(),
        _write(engine, "batch-2"),
        return_exceptions=True,
    )
    assert statements.count("RELEASE greenlight_write") == 4, "every block itself succeeded"
    assert statements.count("COMMIT") == 1
    assert len(results) == 4
    for result in results:
        assert isinstance(result, IntegrityError), result
        assert "FOREIGN KEY" in str(result.orig)
    assert _committed_jtis(database_file) == set()
    assert _count(database_file, "parent") == 0
    assert _count(database_file, "child") == 0


async def test_after_a_failed_commit_the_lock_is_released_and_the_next_block_works(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    async def orphan() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 404)"))

    with pytest.raises(IntegrityError):
        await orphan()
    other = sqlite3.connect(database_file, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY while the failed transaction is open
        other.execute("ROLLBACK")
    finally:
        other.close()
    await _write(engine, "after-the-failure")
    assert _committed_jtis(database_file) == {"after-the-failure"}


async def test_an_error_that_rolls_back_the_transaction_fails_its_whole_batch(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    async def vetoed() -> None:
        async with engine.begin() as conn:
            await _insert_jti(conn, "vetoed-block")
            await conn.execute(text("INSERT INTO parent (id) VALUES (666)"))
            await conn.execute(text("INSERT INTO child (id, parent_id) VALUES (666, 666)"))

    statements = await _traced(engine)
    early, veto, late = await asyncio.gather(
        _write(engine, "early"), vetoed(), _write(engine, "late"), return_exceptions=True
    )
    assert isinstance(veto, IntegrityError)
    assert "vetoed" in str(veto.orig)
    # `early` was released into the same transaction, which SQLite rolled back: it is not written
    assert isinstance(early, sqlite3.OperationalError)
    assert late is None, "the next block starts a new transaction"
    assert statements.count("BEGIN IMMEDIATE") == 2
    assert statements.count("COMMIT") == 1
    assert _committed_jtis(database_file) == {"late"}
    assert _count(database_file, "parent") == 0


async def test_dispose_waits_for_the_pending_batch(database_file: Path) -> None:
    engine = SqliteWriteEngine(f"sqlite+aiosqlite:///{database_file}")
    writer = asyncio.create_task(_write(engine, "pending"))
    await asyncio.sleep(0)  # the block runs and releases its savepoint; its COMMIT is pending
    assert not writer.done()
    assert "pending" not in _committed_jtis(database_file)
    await engine.dispose()
    assert "pending" in _committed_jtis(database_file)
    await asyncio.wait_for(writer, timeout=5)  # resumed by the COMMIT, not left waiting


_RECORD = "INSERT INTO used_assertion_ids (client_id, jti, expires_at) VALUES (?, ?, ?)"


async def test_a_single_statement_write_joins_the_batch_and_resumes_after_its_commit(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    """`execute_one` (no savepoint): the row is durable when the caller resumes, and shares the
    COMMIT of the blocks around it."""

    async def one(jti: str) -> int:
        written = await engine.execute_one(_RECORD, (CLIENT, jti, 2_000_000_000))
        assert jti in _committed_jtis(database_file)
        return written

    results = await asyncio.gather(one("single-a"), _write(engine, "block-b"), one("single-c"))
    assert results[0] == results[2] == 1
    assert _committed_jtis(database_file) == {"single-a", "block-b", "single-c"}


async def test_a_failing_single_statement_write_leaves_its_batch_intact(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    """A duplicate key backs out only that statement: the writes before and after it in the
    same batch commit, and the caller gets the IntegrityError."""
    await _write(engine, "already-there")

    async def duplicate() -> None:
        await engine.execute_one(_RECORD, (CLIENT, "already-there", 2_000_000_000))

    outcomes = await asyncio.gather(
        _write(engine, "before"), duplicate(), _write(engine, "after"), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert _committed_jtis(database_file) == {"already-there", "before", "after"}


async def test_steady_writes_do_not_grow_the_wal_without_bound(database_file: Path) -> None:
    """Under writes that never pause, PASSIVE checkpoints never let SQLite start the WAL over
    (every row written would stay in it: one page or more each); past `restart_frames` a RESTART
    checkpoint between two batches does. Two seconds of back-to-back batches of ~3 KB rows leave
    the WAL file far shorter than the rows written, and every row committed."""
    engine = SqliteWriteEngine(
        f"sqlite+aiosqlite:///{database_file}", checkpoint_seconds=0.0, restart_frames=256
    )
    written = 0
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            await asyncio.gather(
                *(
                    engine.execute_one(_RECORD, (CLIENT, f"{written + i}-{'x' * 3000}", 0))
                    for i in range(8)
                )
            )
            written += 8
        wal_pages = (database_file.parent / f"{database_file.name}-wal").stat().st_size // 4096
    finally:
        await engine.dispose()
    assert written > 1000, written  # enough writes for the WAL to have grown past the limit
    assert wal_pages < written / 2, (wal_pages, written)
    assert _count(database_file, "used_assertion_ids") == written


def _rows_at_commit(*jtis: str) -> list[tuple[str, list[tuple[str, str, int]]]]:
    return [(_RECORD, [(CLIENT, jti, 2_000_000_000) for jti in jtis])]


async def test_rows_inserted_at_commit_join_the_batch_without_a_savepoint(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    """`insert_at_commit`: the rows of every caller in the batch are inserted after the other
    blocks, just before the one COMMIT, and each caller resumes once they are durable."""

    async def at_commit(*jtis: str) -> None:
        await engine.insert_at_commit(_rows_at_commit(*jtis))
        assert set(jtis) <= _committed_jtis(database_file)

    statements = await _traced(engine)
    await asyncio.gather(
        at_commit("appended-1", "appended-2"), _write(engine, "block"), at_commit("appended-3")
    )
    assert statements.count("COMMIT") == 1
    assert statements.count("SAVEPOINT greenlight_write") == 1, "only the begin() block has one"
    block_released = statements.index("RELEASE greenlight_write")
    appended = [i for i, sql in enumerate(statements) if sql.startswith("INSERT")][1:]
    assert len(appended) == 3, statements  # one execution per row, after the block's own INSERT
    assert block_released < min(appended) and max(appended) < statements.index("COMMIT")
    assert _committed_jtis(database_file) == {"appended-1", "appended-2", "appended-3", "block"}


async def test_a_failing_insert_at_commit_fails_its_whole_batch(
    engine: SqliteWriteEngine, database_file: Path
) -> None:
    """Rows inserted at COMMIT cannot be backed out alone: when one fails (here a duplicate
    key), no write of the batch is committed, every caller gets the error, and the next write
    starts a new transaction."""
    await _write(engine, "already-there")
    outcomes = await asyncio.gather(
        _write(engine, "same-batch-block"),
        engine.insert_at_commit(_rows_at_commit("fresh", "already-there")),
        engine.insert_at_commit(_rows_at_commit("innocent")),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, sqlite3.IntegrityError) for outcome in outcomes), outcomes
    assert _committed_jtis(database_file) == {"already-there"}
    await engine.insert_at_commit(_rows_at_commit("next-batch"))
    assert _committed_jtis(database_file) == {"already-there", "next-batch"}
