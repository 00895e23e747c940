"""AuditEvents in tables of their own (`app.store.audit_log`, migration 0005): engineering tests
on both backends, real databases.

An AuditEvent is one `audit_events` row and one `audit_event_patients` key per patient it names,
nothing in the generic tables; it is read, vread, listed and searched (`patient`, `_id`,
`_lastUpdated`, paging) like any resource, and never changed. Migration 0005 moves the live
AuditEvents of an older database there, leaving what the generic API allowed before (superseded
versions, deleted events) readable where it was; its downgrade puts the events back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import text

from app.fhir.outcomes import FhirError
from app.registry import REGISTRY, Registry, SearchParam
from app.store.db import Database
from app.store.migrate import alembic_config, upgrade_database
from app.store.repository import ResourceStore
from app.store.search import DateCriterion, IndexCriterion, SearchQuery, ValueMatch
from app.store.stored import StoredResource
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store, on_database

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])


def _event(*patients: str, action: str = "E") -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110100"},
        "action": action,
        "recorded": "2026-12-07T10:00:00.000Z",
        "agent": [{"who": {"display": "an EHR"}, "requestor": True}],
        "source": {"observer": {"display": "greenlight"}},
        "entity": [{"what": {"reference": f"Patient/{p}"}} for p in patients],
    }


def _by_patient(*alternatives: ValueMatch) -> IndexCriterion:
    return IndexCriterion("patient", alternatives)


async def _ids(store: ResourceStore, query: SearchQuery) -> list[str]:
    return [event.id for event in (await store.search(query)).items]


@BOTH
def test_an_event_is_one_row_and_a_key_per_patient(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        before = await store.count_rows()
        async with store.transaction() as tx:
            in_transaction = await tx.create(_event("p-1", "p-2", "p-1"))
        alone = await store.create_alone(_event())
        after = await store.count_rows()
        grown = {table: after[table] - before[table] for table in after}
        assert grown == {
            "resources": 0,
            "resource_versions": 0,
            "search_index": 0,
            "audit_events": 2,
            "audit_event_patients": 2,  # p-1 once, p-2; the second event names nobody
        }
        for stored in (in_transaction, alone):
            assert await store.read("AuditEvent", stored.id) == stored
            assert await store.vread("AuditEvent", stored.id, 1) == stored
            assert await store.history("AuditEvent", stored.id) == [stored]
            assert stored.json()["meta"]["versionId"] == "1"

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_events_are_searched_by_patient_id_time_and_page(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        made: list[StoredResource] = []
        for patients in (("a",), ("b",), ("a", "b"), ()):
            made.append(await store.create_alone(_event(*patients)))
            await asyncio.sleep(0.002)  # distinct milliseconds
        first, second, both, nobody = (m.id for m in made)
        every = SearchQuery("AuditEvent")
        assert await _ids(store, every) == [first, second, both, nobody], "oldest first"
        on_a = SearchQuery("AuditEvent", index=[_by_patient(ValueMatch("a"))])
        assert await _ids(store, on_a) == [first, both]
        typed = ValueMatch("b", system="Patient", any_system=False)
        assert await _ids(store, SearchQuery("AuditEvent", index=[_by_patient(typed)])) == [
            second,
            both,
        ]
        either = SearchQuery("AuditEvent", index=[_by_patient(ValueMatch("a"), ValueMatch("b"))])
        assert await _ids(store, either) == [first, second, both], "comma: OR"
        on_both = SearchQuery(
            "AuditEvent", index=[_by_patient(ValueMatch("a")), _by_patient(ValueMatch("b"))]
        )
        assert await _ids(store, on_both) == [both], "repeated parameter: AND"
        other_type = ValueMatch("a", system="Group", any_system=False)
        assert await _ids(store, SearchQuery("AuditEvent", index=[_by_patient(other_type)])) == []
        assert await _ids(store, SearchQuery("AuditEvent", ids=[(both, nobody, "none")])) == [
            both,
            nobody,
        ]
        since = DateCriterion("ge", made[2].last_updated_us, made[2].last_updated_us + 1000)
        assert await _ids(store, SearchQuery("AuditEvent", dates=[since])) == [both, nobody]
        page = await store.search(SearchQuery("AuditEvent", count=2, offset=1))
        assert page.total == 4 and [e.id for e in page.items] == [second, both]
        counted = await store.search(SearchQuery("AuditEvent", summary_count=True))
        assert counted.total == 4 and not counted.items

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_an_event_is_never_changed(backend_name: str, new_database_url: DatabaseFactory) -> None:
    async def scenario(_database: Database, store: ResourceStore) -> None:
        stored = await store.create_alone(_event("p-1"))
        before = await store.count_rows()
        for change in ("update", "delete"):
            with pytest.raises(FhirError) as refused:
                async with store.transaction() as tx:
                    if change == "update":
                        await tx.update({**stored.json(), "action": "R"}, stored.id)
                    else:
                        await tx.delete("AuditEvent", stored.id)
            assert refused.value.status == 405
        assert await store.count_rows() == before
        assert await store.read("AuditEvent", stored.id) == stored
        with pytest.raises(ValueError, match="search"):
            await store.find_by_token("AuditEvent", "patient", "p-1")

    on_a_new_store(new_database_url(backend_name), scenario)


def test_a_registry_with_an_unserved_auditevent_parameter_is_refused() -> None:
    spec = REGISTRY.resources["AuditEvent"]
    extra = SearchParam("agent", "reference", ("agent.who.reference",), "Who took part")
    widened = dataclasses.replace(spec, search_params=(*spec.search_params, extra))
    registry = Registry(resources={**REGISTRY.resources, "AuditEvent": widened})
    with pytest.raises(ValueError, match="agent"):
        ResourceStore(None, registry)  # type: ignore[arg-type]


# --- migration 0005 --------------------------------------------------------------------------
_ROW = (
    "INSERT INTO {table} (resource_type, id, version_id, last_updated_us, deleted, body) "
    "VALUES ('AuditEvent', :id, :version, :stamp, :deleted, :body)"
)
_INDEX = (
    "INSERT INTO search_index (resource_type, resource_id, param, system, value) "
    "VALUES ('AuditEvent', :id, 'patient', 'Patient', :patient)"
)
_T0 = 1_796_000_000_000_000


def _old_body(rid: str, version: int, patient: str) -> str:
    event = {**_event(patient), "id": rid, "meta": {"versionId": str(version)}}
    return orjson.dumps(event).decode("utf-8")


# What the code before 0005 wrote: (id, version, deleted, patient, current?)
_OLD_ROWS = (
    ("old-one", 1, False, "p-1", True),
    ("old-changed", 1, False, "p-1", False),
    ("old-changed", 2, False, "p-2", True),
    ("old-deleted", 1, False, "p-3", False),
    ("old-deleted", 2, True, "p-3", True),
)


async def _write_before_0005(database: Database) -> None:
    async with database.writer.begin() as conn:
        for n, (rid, version, deleted, patient, current) in enumerate(_OLD_ROWS):
            values = {
                "id": rid,
                "version": version,
                "stamp": _T0 + n * 1000,
                "deleted": deleted,
                "body": None if deleted else _old_body(rid, version, patient),
            }
            table = "resources" if current else "resource_versions"
            await conn.execute(text(_ROW.format(table=table)), values)
            if current and not deleted:
                await conn.execute(text(_INDEX), {"id": rid, "patient": patient})


async def _after_0005(database: Database) -> None:
    store = ResourceStore(database, REGISTRY)
    assert await store.count_rows() == {
        "resources": 1,  # the deleted event's last version, where it was
        "resource_versions": 2,
        "search_index": 0,
        "audit_events": 2,
        "audit_event_patients": 2,
    }
    one = await store.read("AuditEvent", "old-one")
    assert one.json()["entity"] == [{"what": {"reference": "Patient/p-1"}}]
    changed = await store.history("AuditEvent", "old-changed")
    assert [v.version_id for v in changed] == [2, 1]
    assert (await store.vread("AuditEvent", "old-changed", 1)).json()["meta"]["versionId"] == "1"
    assert await store.read("AuditEvent", "old-changed") == changed[0]
    with pytest.raises(FhirError) as deleted:
        await store.read("AuditEvent", "old-deleted")
    assert deleted.value.status == 410
    assert [v.deleted for v in await store.history("AuditEvent", "old-deleted")] == [True, False]
    for patient, expected in (("p-1", ["old-one"]), ("p-2", ["old-changed"]), ("p-3", [])):
        query = SearchQuery("AuditEvent", index=[_by_patient(ValueMatch(patient))])
        assert await _ids(store, query) == expected
    new = await store.create_alone(_event("p-1"))
    query = SearchQuery("AuditEvent", index=[_by_patient(ValueMatch("p-1"))])
    assert await _ids(store, query) == ["old-one", new.id]


async def _after_downgrade(database: Database) -> None:
    async with database.reader.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT r.id, r.version_id, r.deleted, s.value FROM resources r "
                    "LEFT JOIN search_index s ON s.resource_type = r.resource_type "
                    "AND s.resource_id = r.id WHERE r.resource_type = 'AuditEvent'"
                )
            )
        ).all()
    moved_back = sorted((r[0], r[1], bool(r[2]), r[3]) for r in rows if r[0].startswith("old"))
    assert moved_back == [
        ("old-changed", 2, False, "p-2"),
        ("old-deleted", 2, True, None),
        ("old-one", 1, False, "p-1"),
    ]
    assert len(rows) == 4, "and the event written after 0005, with its patient"


@BOTH
def test_migration_0005_moves_live_events_and_downgrade_puts_them_back(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    url = new_database_url(backend_name)
    upgrade_database(url, "0004")
    on_database(url, _write_before_0005)
    upgrade_database(url)
    on_database(url, _after_0005)
    command.downgrade(alembic_config(url), "0004")
    on_database(url, _after_downgrade)
