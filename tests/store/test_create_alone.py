"""`ResourceStore.create_alone`, how each CDS Hooks call's AuditEvent is stored: engineering
tests on both backends, real databases.

A resource stored alone is version 1 under a new id, readable and found by search as soon as the
call returns (an AuditEvent in the audit tables, `app.store.audit_log`; another type through its
search index, as `tests/store/test_lookup_cache.py` shows); on SQLite many such calls at once
share one COMMIT with the other writes of the batch (`SqliteWriteEngine.insert_at_commit`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.store.db import Database
from app.store.repository import ResourceStore
from app.store.search import IndexCriterion, SearchQuery, ValueMatch
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
CALLS = 12


def _audit_event(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110100"},
        "action": "E",
        "recorded": "2026-12-07T10:00:00.000Z",
        "agent": [{"who": {"display": "an EHR"}, "requestor": True}],
        "source": {"observer": {"display": "cds-services/order-sign-crd"}},
        "entity": [{"what": {"reference": f"Patient/{patient}"}}],
    }


async def _events_of(store: ResourceStore, patient: str) -> list[str]:
    """Ids of the AuditEvents naming `patient`, found as `AuditEvent?patient=<id>` finds them."""
    criterion = IndexCriterion("patient", (ValueMatch(patient),))
    page = await store.search(SearchQuery("AuditEvent", index=[criterion]))
    return [event.id for event in page.items]


@BOTH
def test_stored_alone_is_readable_and_found_when_the_call_returns(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        stored = await store.create_alone(_audit_event("p-alone"))
        assert stored.version_id == 1
        read = (await store.read("AuditEvent", stored.id)).json()
        assert read["id"] == stored.id
        assert read["meta"]["versionId"] == "1"
        assert read["entity"] == [{"what": {"reference": "Patient/p-alone"}}]
        assert await _events_of(store, "p-alone") == [stored.id]

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_concurrent_calls_each_store_their_own_resource(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    """Concurrent calls (on SQLite: one batch, one `executemany` per table) each get their own
    resource, durable and found by its own patient, beside a transaction of the same batch."""

    async def scenario(_database: Database, store: ResourceStore) -> None:
        async def in_a_transaction() -> str:
            async with store.transaction() as tx:
                return (await tx.create(_audit_event("p-transaction"))).id

        alone, transaction_id = await asyncio.gather(
            asyncio.gather(*(store.create_alone(_audit_event(f"p-{n}")) for n in range(CALLS))),
            in_a_transaction(),
        )
        assert len({s.id for s in alone} | {transaction_id}) == CALLS + 1
        for n, resource in enumerate(alone):
            assert await _events_of(store, f"p-{n}") == [resource.id]
            assert (await store.read("AuditEvent", resource.id)).body == resource.body
        assert await _events_of(store, "p-transaction") == [transaction_id]

    on_a_new_store(new_database_url(backend_name), scenario)
