"""Answers of `ResourceStore.find_by_token` kept between calls (`app.store.lookup_cache`):
engineering tests, real databases.

On SQLite a lookup's answer is served again without reading while no write of its resource type
has committed, in this process or any other; every kind of write that can change the answer
(create, update, delete, a resource stored alone, another connection's commit) is seen by the
next lookup. The freshness tests run on both backends (PostgreSQL keeps nothing: they hold
trivially there, and prove the same contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.registry import REGISTRY
from app.store.db import Database, create_database
from app.store.lookup_cache import LookupCache
from app.store.repository import ResourceStore
from app.store.row_writes import row_write, write_one
from app.store.sqlite_reads import SqlitePointReader
from app.store.tables import used_assertion_ids
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
MEMBER = "M-5150"


def _coverage(member_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [{"system": "urn:payer:member", "value": member_id}],
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/payer"}],
    }


async def _ids(store: ResourceStore, member_id: str = MEMBER) -> list[str]:
    return [found.id for found in await store.find_by_token("Coverage", "identifier", member_id)]


def _count_reads(database: Database) -> Callable[[], int]:
    """How many queries the SQLite point reader has run since this was called."""
    reader = database.point_reader
    assert isinstance(reader, SqlitePointReader)
    real = reader.rows
    count = 0

    def counted(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        nonlocal count
        count += 1
        return real(sql, params)

    reader.rows = counted  # type: ignore[method-assign]
    return lambda: count


def test_kept_answers_are_checked_against_their_stamp_and_bounded() -> None:
    cache: LookupCache[str] = LookupCache(capacity=2)
    cache.put("a", (1, 7), "first")
    assert cache.get("a", (1, 7)) == "first"
    assert cache.get("a", (2, 7)) is None  # this process wrote the type since
    assert cache.get("a", (1, 7)) is None  # and the stale answer is gone
    cache.put("a", (1, 7), "first")
    assert cache.get("a", (1, 8)) is None  # another connection committed since
    cache.put("a", (1, 7), "a")
    cache.put("b", (1, 7), "b")
    assert cache.get("a", (1, 7)) == "a"  # now the most recently used
    cache.put("c", (1, 7), "c")
    assert len(cache) == 2
    assert cache.get("b", (1, 7)) is None  # the least recently used went first
    assert cache.get("a", (1, 7)) == "a"
    assert cache.get("c", (1, 7)) == "c"


def test_sqlite_serves_an_unchanged_answer_without_reading(
    new_database_url: DatabaseFactory,
) -> None:
    """Writes of other types (an AuditEvent stored alone, a Patient, a replay-guard row) leave
    the Coverage answer kept; a Coverage write does not."""

    async def scenario(database: Database, store: ResourceStore) -> None:
        async with store.transaction() as tx:
            member = await tx.create(_coverage(MEMBER))
        reads = _count_reads(database)
        assert await _ids(store) == [member.id]
        assert await _ids(store) == [member.id]
        assert reads() == 1
        await store.create_alone({"resourceType": "AuditEvent", "action": "E"})
        async with store.transaction() as tx:
            await tx.create({"resourceType": "Patient", "gender": "female"})
        await write_one(
            database.writer,
            row_write(used_assertion_ids.insert(), ("client_id", "jti", "expires_at")),
            {"client_id": "ehr", "jti": "j-1", "expires_at": 2_000_000_000},
        )
        assert await _ids(store) == [member.id]
        assert reads() == 1
        async with store.transaction() as tx:
            await tx.create(_coverage("M-other"))
        assert await _ids(store) == [member.id]
        assert reads() == 2

    on_a_new_store(new_database_url("sqlite"), scenario)


@BOTH
def test_every_write_of_the_type_is_seen_by_the_next_lookup(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        assert await _ids(store) == []
        async with store.transaction() as tx:
            first = await tx.create(_coverage(MEMBER))
        assert await _ids(store) == [first.id]
        second = await store.create_alone(_coverage(MEMBER))
        # the same millisecond may order them either way (ids are random within it)
        assert sorted(await _ids(store)) == sorted([first.id, second.id])
        async with store.transaction() as tx:
            await tx.update(_coverage("M-moved"), first.id)
        assert await _ids(store) == [second.id]
        assert await _ids(store, "M-moved") == [first.id]
        async with store.transaction() as tx:
            await tx.delete("Coverage", second.id)
        assert await _ids(store) == []
        with pytest.raises(RuntimeError):  # a transaction rolled back changes nothing
            async with store.transaction() as tx:
                await tx.create(_coverage(MEMBER))
                raise RuntimeError("abandoned")
        assert await _ids(store) == []

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_another_connections_commit_is_seen(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    """Another process (here: a second set of engines on the same database, as a second worker
    or `greenlight demo-data` has) writes the member's Coverage after this store has looked."""

    async def scenario(database: Database, store: ResourceStore) -> None:
        assert await _ids(store) == []
        other_database = create_database(database.url, pool_size=1)
        try:
            other = ResourceStore(other_database, REGISTRY)
            async with other.transaction() as tx:
                theirs = await tx.create(_coverage(MEMBER))
        finally:
            await other_database.dispose()
        assert await _ids(store) == [theirs.id]

    on_a_new_store(new_database_url(backend_name), scenario)
