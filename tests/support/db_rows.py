"""Row counts of a Greenlight database, read from the test process (proves nothing was written)."""

from __future__ import annotations

import asyncio

from app.registry import REGISTRY
from app.store.db import create_database
from app.store.repository import ResourceStore


def row_counts(database_url: str) -> dict[str, int]:
    """Counts of the resource, version and index tables, on a connection of our own."""

    async def count() -> dict[str, int]:
        database = create_database(database_url, pool_size=1)
        try:
            return await ResourceStore(database, REGISTRY).count_rows()
        finally:
            await database.dispose()

    return asyncio.run(count())


def assert_no_nulls(value: object, path: str = "$") -> None:
    """FHIR JSON never carries null: fail naming the first path that does."""
    if value is None:
        raise AssertionError(f"null at {path}")
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_nulls(item, f"{path}[{index}]")
