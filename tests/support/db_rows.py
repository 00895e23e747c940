"""Row counts of a Greenlight database, read from the test process (proves nothing was written)."""

from __future__ import annotations

from app.registry import REGISTRY
from app.store.db import Database
from app.store.repository import ResourceStore
from tests.support.databases import on_database


def row_counts(database_url: str) -> dict[str, int]:
    """Counts of the resource, version, index and audit tables, on a connection of our own."""

    async def count(database: Database) -> dict[str, int]:
        return await ResourceStore(database, REGISTRY).count_rows()

    return on_database(database_url, count)


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
