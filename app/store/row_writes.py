"""Prebuilt row writes (INSERT, UPDATE, DELETE) that skip SQLAlchemy's per-call work on SQLite.

The hot writes (a resource, its version and index rows, a `jti`) are the same few statements
with new values. Through SQLAlchemy each execution builds an execution context, processes the
parameters and wraps a result: more time than SQLite takes to insert the row. A `RowWrite` is
compiled for SQLite once, at import; on the process's SQLite write connection
(`LoopConnection`) it runs as that SQL text with positional values, on any other connection
(PostgreSQL, in-memory SQLite) as the SQLAlchemy statement it was built from. A single row's
write gives the number of rows written (`run_write`); a list of rows (`run_write_many`) gives
nothing, as asyncpg does not count them. A constraint violation is SQLAlchemy's
`IntegrityError` either way.

Only columns that need no conversion on the way in may be bound (integers, text, and booleans,
which SQLite stores as 0/1 as SQLAlchemy does; not enums, which SQLAlchemy stores by name), and
every bound column must be listed and given: a column left to its SQLAlchemy default would be
filled on one path and missing on the other. Anything else is refused when the write is built,
not when it runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Enum, Integer, String
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BindParameter

from app.store.db import SqlConnection, WriteEngine
from app.store.sqlite_writer import LoopConnection, SqliteWriteEngine

_SQLITE = SQLiteDialect_pysqlite()
_PLAIN_TYPES = (Integer, String, Boolean)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class RowWrite:
    """A DML statement, its SQLite text and the parameter names in the text's order."""

    statement: UpdateBase
    sqlite_sql: str
    names: tuple[str, ...]

    def values(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.names)


def row_write(statement: UpdateBase, columns: Sequence[str] = ()) -> RowWrite:
    """Prebuild `statement`; `columns` are the columns an INSERT sets or an UPDATE assigns."""
    compiled = statement.compile(dialect=_SQLITE, column_keys=list(columns))
    names = tuple(compiled.positiontup or ())
    for name in names:
        bound = compiled.binds[name].type
        if isinstance(bound, Enum) or not isinstance(bound, _PLAIN_TYPES):
            raise TypeError(f"{compiled.string}: parameter {name} is {bound!r}, not plain")
    defaulted = set(names) - set(columns) - _where_names(statement)
    if defaulted:
        raise TypeError(
            f"{compiled.string}: give {', '.join(sorted(defaulted))} explicitly (a default)"
        )
    return RowWrite(statement, compiled.string, names)


def _where_names(statement: UpdateBase) -> set[str]:
    """Names of the bound parameters a statement carries itself (WHERE, explicit values)."""
    return {
        str(node.key) for node in visitors.iterate(statement) if isinstance(node, BindParameter)
    }


async def run_write(conn: SqlConnection, write: RowWrite, row: Row) -> int:
    """Execute `write` with one row's values; the number of rows written."""
    if isinstance(conn, LoopConnection):
        try:
            return conn.raw.execute(write.sqlite_sql, write.values(row)).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(write.sqlite_sql, None, exc) from None
    return (await conn.execute(write.statement, dict(row))).rowcount


async def run_write_many(conn: SqlConnection, write: RowWrite, rows: Sequence[Row]) -> None:
    """Execute `write` once per row of a non-empty sequence."""
    if isinstance(conn, LoopConnection):
        try:
            conn.raw.executemany(write.sqlite_sql, map(write.values, rows))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(write.sqlite_sql, None, exc) from None
        return
    await conn.execute(write.statement, [dict(row) for row in rows])


async def write_one(engine: WriteEngine, write: RowWrite, row: Row) -> int:
    """`write` with one row's values as a transaction of its own; the number of rows written,
    once committed. On the SQLite write engine it joins the open batch without a savepoint
    (`SqliteWriteEngine.execute_one`)."""
    if isinstance(engine, SqliteWriteEngine):
        try:
            return await engine.execute_one(write.sqlite_sql, write.values(row))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(write.sqlite_sql, None, exc) from None
    async with engine.begin() as conn:
        return await run_write(conn, write, row)


async def insert_alone(
    engine: WriteEngine,
    inserts: Sequence[tuple[RowWrite, Sequence[Row]]],
    resource_types: Sequence[str] = (),
) -> None:
    """New rows that nothing else in a transaction reads or conflicts with (a new resource under
    a new id and its index rows), as a transaction of their own, once committed. On the SQLite
    write engine they are inserted just before the batch's COMMIT, with the other such rows of
    the batch (`SqliteWriteEngine.insert_at_commit`: a failure fails the whole batch);
    `resource_types` are the types of the resources they write."""
    if isinstance(engine, SqliteWriteEngine):
        await engine.insert_at_commit(
            [
                (write.sqlite_sql, [write.values(row) for row in rows])
                for write, rows in inserts
                if rows
            ],
            resource_types,
        )
        return
    async with engine.begin() as conn:
        for write, rows in inserts:
            if rows:
                await run_write_many(conn, write, rows)
