"""Concurrent writers on both backends: no lost update, no spurious failure, exactly one winner
for a shared If-Match, and a unit of work that fails half-way leaves nothing behind.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.registry import REGISTRY
from app.store.db import create_database
from app.store.migrate import upgrade_database
from app.store.repository import ResourceStore
from tests.conftest import DatabaseFactory
from tests.support.db_rows import row_counts
from tests.support.ig_examples import example_for
from tests.support.live_server import LiveServer

WRITERS = 20


async def _concurrent_puts(server: LiveServer, rid: str, if_match: str | None) -> list[int]:
    base = example_for("Patient")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:

        async def put(n: int) -> int:
            headers = {"If-Match": if_match} if if_match else {}
            body = {**base, "id": rid, "gender": "female" if n % 2 else "male"}
            response = await client.put(f"/fhir/Patient/{rid}", json=body, headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(put(n) for n in range(WRITERS))))


def test_concurrent_updates_are_serialized(server: LiveServer) -> None:
    with server.client() as client:
        rid = client.post("/fhir/Patient", json=example_for("Patient")).json()["id"]
    statuses = asyncio.run(_concurrent_puts(server, rid, None))
    assert statuses == [200] * WRITERS
    with server.client() as client:
        assert client.get(f"/fhir/Patient/{rid}").json()["meta"]["versionId"] == str(WRITERS + 1)
        history = client.get(f"/fhir/Patient/{rid}/_history").json()
    assert history["total"] == WRITERS + 1


def test_shared_if_match_has_exactly_one_winner(server: LiveServer) -> None:
    with server.client() as client:
        rid = client.post("/fhir/Patient", json=example_for("Patient")).json()["id"]
    statuses = asyncio.run(_concurrent_puts(server, rid, 'W/"1"'))
    assert sorted(statuses) == [200] + [412] * (WRITERS - 1)


def test_concurrent_creates_all_land(server: LiveServer) -> None:
    async def create_all() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            responses = await asyncio.gather(
                *(client.post("/fhir/Patient", json=example_for("Patient")) for _ in range(WRITERS))
            )
        return [r.status_code for r in responses]

    before = row_counts(server.settings.database_url)["resources"]
    assert asyncio.run(create_all()) == [201] * WRITERS
    assert row_counts(server.settings.database_url)["resources"] == before + WRITERS


class _AbortError(Exception):
    pass


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_unit_of_work_is_all_or_nothing(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    url = new_database_url(backend_name)
    upgrade_database(url)

    async def scenario() -> None:
        database = create_database(url, pool_size=1)
        store = ResourceStore(database, REGISTRY)
        try:
            with pytest.raises(_AbortError):
                async with store.transaction() as tx:
                    await tx.create(example_for("Patient"))
                    await tx.create(example_for("Coverage"))
                    await tx.create(example_for("AuditEvent"))
                    raise _AbortError
            counts = await store.count_rows()
            assert "resources" in counts and "audit_events" in counts
            assert set(counts.values()) == {0}, counts
        finally:
            await database.dispose()

    asyncio.run(scenario())
