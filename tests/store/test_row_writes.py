"""Prebuilt row writes (`app.store.row_writes`) on both backends: engineering tests.

On a SQLite file the write connection is a `LoopConnection` and `run_write` runs the prebuilt SQL
text on its `sqlite3` connection; on PostgreSQL it is SQLAlchemy's `AsyncConnection` and the
statement runs through SQLAlchemy. Both must write the same rows, report the same row counts and
raise SQLAlchemy's `IntegrityError` on a constraint violation. A throwaway table (every column of
a type `row_write` accepts) is created in a fresh database of each backend.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable

from app.store.db import Database, SqlConnection, create_database
from app.store.row_writes import RowWrite, row_write, run_write, run_write_many
from app.store.sqlite_writer import LoopConnection
from tests.conftest import DatabaseFactory

metadata = MetaData()

ITEMS = Table(
    "row_write_items",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("big", BigInteger, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("note", Text, nullable=True),
)
ITEM_COLUMNS = ("kind", "n", "big", "flag", "note")

INSERT_ITEM = row_write(insert(ITEMS), ITEM_COLUMNS)
UPDATE_FROM = row_write(
    update(ITEMS)
    .where(ITEMS.c.kind == bindparam("w_kind"), ITEMS.c.n >= bindparam("w_from"))
    .values(note=bindparam("note"), flag=bindparam("flag"))
)
DELETE_KIND = row_write(delete(ITEMS).where(ITEMS.c.kind == bindparam("w_kind")))

# `deleted` is bound by the compiled INSERT (its default) although it is not among the columns.
DEFAULTED = Table(
    "row_write_defaulted",
    metadata,
    Column("k", Integer, primary_key=True),
    Column("deleted", Boolean, nullable=False, default=False),
)

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])

Row = tuple[Any, ...]


def _item(
    n: int, *, kind: str = "a", flag: bool = False, note: str | None = None
) -> dict[str, Any]:
    return {"kind": kind, "n": n, "big": 2**40 + n, "flag": flag, "note": note}


def _as_row(item: dict[str, Any]) -> Row:
    return tuple(item[name] for name in ITEM_COLUMNS)


@pytest.fixture
async def database(backend_name: str, new_database_url: DatabaseFactory) -> AsyncIterator[Database]:
    database = create_database(new_database_url(backend_name), pool_size=1)
    try:
        async with database.writer.begin() as conn:
            await conn.execute(CreateTable(ITEMS))
            await conn.execute(CreateTable(DEFAULTED))
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def sqlalchemy_executions() -> Iterator[list[str]]:
    """The statements every SQLAlchemy engine of this process executes during the test."""
    executed: list[str] = []

    def record(*args: Any) -> None:
        executed.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def _rows(database: Database) -> list[Row]:
    async with database.reader.connect() as conn:
        result = await conn.execute(select(ITEMS).order_by(ITEMS.c.kind, ITEMS.c.n))
        return [tuple(row) for row in result]


async def _run(database: Database, write: RowWrite, row: Any) -> int:
    async with database.writer.begin() as conn:
        return await run_write(conn, write, row)


async def _run_many(database: Database, write: RowWrite, rows: list[Any]) -> None:
    async with database.writer.begin() as conn:
        await run_write_many(conn, write, rows)


def _check_path(backend_name: str, conn: SqlConnection, executed: list[str]) -> None:
    """The SQLite file writes through raw SQL (no SQLAlchemy execution), PostgreSQL through
    SQLAlchemy."""
    if backend_name == "sqlite":
        assert isinstance(conn, LoopConnection)
        assert executed == []
    else:
        assert isinstance(conn, AsyncConnection)
        assert executed != []


@BOTH
async def test_one_row_is_written_as_given(
    backend_name: str, database: Database, sqlalchemy_executions: list[str]
) -> None:
    item = _item(1, flag=True, note="first")
    async with database.writer.begin() as conn:
        sqlalchemy_executions.clear()
        written = await run_write(conn, INSERT_ITEM, item)
        _check_path(backend_name, conn, sqlalchemy_executions)
    assert written == 1
    assert await _rows(database) == [_as_row(item)]


@BOTH
async def test_a_list_of_rows_is_written(
    backend_name: str, database: Database, sqlalchemy_executions: list[str]
) -> None:
    items = [_item(n, flag=n % 2 == 0, note=None if n == 2 else f"n={n}") for n in range(4)]
    async with database.writer.begin() as conn:
        sqlalchemy_executions.clear()
        await run_write_many(conn, INSERT_ITEM, items)
        _check_path(backend_name, conn, sqlalchemy_executions)
    assert await _rows(database) == [_as_row(item) for item in items]


@BOTH
async def test_update_and_delete_report_the_rows_they_matched(database: Database) -> None:
    await _run_many(database, INSERT_ITEM, [_item(n) for n in range(3)])
    await _run(database, INSERT_ITEM, _item(0, kind="b"))

    updated = await _run(
        database, UPDATE_FROM, {"w_kind": "a", "w_from": 1, "note": "x", "flag": True}
    )
    assert updated == 2
    assert (
        await _run(database, UPDATE_FROM, {"w_kind": "c", "w_from": 0, "note": "y", "flag": True})
        == 0
    )
    assert await _rows(database) == [
        _as_row(_item(0)),
        _as_row(_item(1, flag=True, note="x")),
        _as_row(_item(2, flag=True, note="x")),
        _as_row(_item(0, kind="b")),
    ]

    assert await _run(database, DELETE_KIND, {"w_kind": "a"}) == 3
    assert await _run(database, DELETE_KIND, {"w_kind": "a"}) == 0
    assert await _rows(database) == [_as_row(_item(0, kind="b"))]


@BOTH
async def test_constraint_violations_are_sqlalchemy_integrity_errors(database: Database) -> None:
    await _run(database, INSERT_ITEM, _item(1, note="kept"))

    with pytest.raises(IntegrityError):  # duplicate primary key, one row
        await _run(database, INSERT_ITEM, _item(1, note="duplicate"))
    with pytest.raises(IntegrityError):  # duplicate inside a list: the whole block is undone
        await _run_many(database, INSERT_ITEM, [_item(2), _item(3), _item(1), _item(4)])
    with pytest.raises(IntegrityError):  # NOT NULL
        await _run(database, INSERT_ITEM, {**_item(5), "big": None})

    assert await _rows(database) == [_as_row(_item(1, note="kept"))]


@BOTH
async def test_an_update_onto_an_existing_key_is_an_integrity_error(database: Database) -> None:
    await _run_many(database, INSERT_ITEM, [_item(1), _item(2)])
    move = row_write(update(ITEMS).where(ITEMS.c.n == bindparam("w_n")).values(n=bindparam("n")))
    with pytest.raises(IntegrityError):
        await _run(database, move, {"w_n": 2, "n": 1})
    assert await _rows(database) == [_as_row(_item(1)), _as_row(_item(2))]


def test_columns_of_non_plain_types_are_refused_when_the_write_is_built() -> None:
    events = Table(
        "row_write_events",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(20)),
        Column("at", DateTime(timezone=True)),
        Column("payload", JSON),
    )
    plain = row_write(insert(events), ("id", "name"))
    assert plain.names == ("id", "name")

    with pytest.raises(TypeError, match="at"):
        row_write(insert(events), ("id", "name", "at"))
    with pytest.raises(TypeError, match="payload"):
        row_write(insert(events), ("id", "payload"))
    with pytest.raises(TypeError, match="since"):
        row_write(delete(events).where(events.c.at < bindparam("since")))
    with pytest.raises(TypeError, match="payload"):
        row_write(
            update(events)
            .where(events.c.id == bindparam("w_id"))
            .values(payload=bindparam("payload"))
        )


class _Colour(enum.StrEnum):
    RED = "r"


def test_an_enum_column_is_refused_when_the_write_is_built() -> None:
    """Enum is a String subclass, but SQLAlchemy stores a member's name where the raw path would
    bind its value: refused."""
    paints = Table(
        "row_write_paints",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("colour", Enum(_Colour, native_enum=False)),
    )
    with pytest.raises(TypeError):
        row_write(insert(paints), ("id", "colour"))


def test_a_column_left_to_its_default_is_refused_when_the_write_is_built() -> None:
    """SQLAlchemy would fill the default on one path and the raw SQL would miss it: every bound
    column must be given."""
    with pytest.raises(TypeError, match="give deleted explicitly"):
        row_write(insert(DEFAULTED), ("k",))
    assert row_write(insert(DEFAULTED), tuple(c.name for c in DEFAULTED.columns)).names
