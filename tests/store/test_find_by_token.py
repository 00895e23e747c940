"""`ResourceStore.find_by_token`, the indexed lookup behind a member's Coverage on each CRD call:
engineering tests on both backends, real databases.

It answers live resources carrying the value, each once, oldest first; on SQLite the query is
driven by the index lookup, so its cost does not grow with the number of resources of the type.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.store.db import Database
from app.store.migrate import upgrade_database
from app.store.repository import _BY_INDEXED_VALUE_SQL, ResourceStore
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
MEMBER_ID = "M-1001"


def _coverage(*identifiers: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [{"system": system, "value": value} for system, value in identifiers],
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/payer"}],
    }


@BOTH
def test_live_matches_once_each_oldest_first(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        async with store.transaction() as tx:
            first = await tx.create(_coverage(("urn:payer:member", MEMBER_ID)))
            # the same value under two systems: one index row each, one answer
            second = await tx.create(
                _coverage(("urn:payer:member", MEMBER_ID), ("urn:payer:card", MEMBER_ID))
            )
            gone = await tx.create(_coverage(("urn:payer:member", MEMBER_ID)))
            await tx.create(_coverage(("urn:payer:member", "M-2002")))
        async with store.transaction() as tx:
            await tx.delete("Coverage", gone.id)
        found = await store.find_by_token("Coverage", "identifier", MEMBER_ID)
        oldest_first = sorted([first, second], key=lambda r: (r.last_updated_us, r.id))
        assert [f.id for f in found] == [r.id for r in oldest_first]
        assert found[0].json()["identifier"][0]["value"] == MEMBER_ID
        limited = await store.find_by_token("Coverage", "identifier", MEMBER_ID, limit=1)
        assert [f.id for f in limited] == [oldest_first[0].id]
        assert await store.find_by_token("Coverage", "identifier", "M-9999") == []

    on_a_new_store(new_database_url(backend_name), scenario)


def test_sqlite_lookup_starts_from_the_search_index(new_database_url: DatabaseFactory) -> None:
    """The plan reads the matching index rows first, then each resource by primary key; it never
    walks the resources of the type (linear in members, as the `id IN (...)` form was planned)."""
    url = new_database_url("sqlite")
    upgrade_database(url)
    path = make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        plan = [
            str(row[3])
            for row in connection.execute(
                "EXPLAIN QUERY PLAN " + _BY_INDEXED_VALUE_SQL,
                ("Coverage", "identifier", MEMBER_ID, 20),
            )
        ]
    searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
    assert searches == [
        "SEARCH s USING INDEX ix_search_lookup (resource_type=? AND param=? AND value=?)",
        "SEARCH r USING INDEX sqlite_autoindex_resources_1 (resource_type=? AND id=?)",
    ], plan
