"""Work on a Greenlight database from the test process, on engines of its own, disposed after."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.registry import REGISTRY
from app.store.db import Database, create_database
from app.store.migrate import upgrade_database
from app.store.repository import ResourceStore

T = TypeVar("T")


def with_and_without_point_reader(database: Database) -> list[Database]:
    """`database` as the app builds it and, on SQLite, the same database without the inline point
    reader (whose reads then go through SQLAlchemy, as on an in-memory database or PostgreSQL)."""
    if database.point_reader is None:
        return [database]
    return [database, dataclasses.replace(database, point_reader=None)]


def on_database(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """`work`'s result, run on a connection pool of our own to the database at `database_url`."""

    async def run() -> T:
        database = create_database(database_url, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def on_a_new_store(
    database_url: str, scenario: Callable[[Database, ResourceStore], Awaitable[None]]
) -> None:
    """Migrate the new, empty database at `database_url` and run `scenario` on it and its store."""
    upgrade_database(database_url)

    async def run() -> None:
        database = create_database(database_url, pool_size=2)
        try:
            await scenario(database, ResourceStore(database, REGISTRY))
        finally:
            await database.dispose()

    asyncio.run(run())
