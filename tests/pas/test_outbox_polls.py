"""The outbox worker's idle poll (`app.pas.outbox`): engineering tests, both backends.

On SQLite the two look-ups of every poll (a row due? subscriptions wanting heartbeats?) run as
plain SQL on the point reader; elsewhere through SQLAlchemy. Both paths must give the same
answers on the same rows: each case asks the worker as the app builds it and, on SQLite, a worker
without the point reader.
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update

from app.config import Settings
from app.pas.outbox import PENDING, OutboxWorker, enqueue
from app.registry import REGISTRY
from app.store.db import Database
from app.store.repository import ResourceStore
from app.store.stored import now_us
from app.store.tables import pas_outbox, pas_subscriptions
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store, with_and_without_point_reader

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
SECOND_US = 1_000_000


def _workers(database: Database) -> list[OutboxWorker]:
    """The worker as the app builds it and, on SQLite, one without the point reader."""
    settings = Settings()
    return [OutboxWorker(d, REGISTRY, settings) for d in with_and_without_point_reader(database)]


async def _subscription(
    database: Database, subscription_id: str, *, status: str, heartbeat: int | None
) -> None:
    async with database.writer.begin() as conn:
        await conn.execute(
            insert(pas_subscriptions).values(
                subscription_id=subscription_id,
                owner="tester",
                status=status,
                endpoint="http://127.0.0.1:9/notify",
                headers="[]",
                payload_type="application/fhir+json",
                content="id-only",
                org_filters="[]",
                heartbeat_seconds=heartbeat,
                events_count=3,
                last_sent_us=None,
                created_us=now_us() - 120 * SECOND_US,
                pas_version="2.0.1",
            )
        )


@BOTH
def test_an_idle_poll_finds_nothing_due_on_either_path(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(database: Database, _store: ResourceStore) -> None:
        for worker in _workers(database):
            assert await worker._anything_due(now_us()) is False
            assert await worker._heartbeat_subscriptions() == []

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_a_due_row_is_seen_and_a_future_or_leased_one_is_not_on_either_path(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(database: Database, _store: ResourceStore) -> None:
        async with database.writer.begin() as conn:
            await enqueue(conn, "event", "sub-1", {"resourceType": "Bundle"})
        stamp = now_us()
        for worker in _workers(database):
            assert await worker._anything_due(stamp + SECOND_US) is True
            assert await worker._anything_due(stamp - 60 * SECOND_US) is False  # not due yet
        async with database.writer.begin() as conn:  # claimed: leased for a minute
            await conn.execute(
                update(pas_outbox)
                .where(pas_outbox.c.status == PENDING)
                .values(locked_until_us=stamp + 60 * SECOND_US)
            )
        for worker in _workers(database):
            assert await worker._anything_due(stamp + SECOND_US) is False

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_only_active_subscriptions_asking_for_heartbeats_are_listed_on_either_path(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(database: Database, _store: ResourceStore) -> None:
        await _subscription(database, "beating", status="active", heartbeat=60)
        await _subscription(database, "quiet", status="active", heartbeat=None)
        await _subscription(database, "off", status="off", heartbeat=60)
        answers = [await w._heartbeat_subscriptions() for w in _workers(database)]
        for found in answers:
            assert [s.subscription_id for s in found] == ["beating"]
            (beating,) = found
            assert (beating.pas_version, beating.heartbeat_seconds) == ("2.0.1", 60)
            assert (beating.events_count, beating.last_sent_us) == (3, None)
        assert all(found == answers[0] for found in answers)

    on_a_new_store(new_database_url(backend_name), scenario)
