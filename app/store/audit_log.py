"""AuditEvents, stored apart from the other resources (`audit_events`, `audit_event_patients`).

Every CDS Hooks call, PAS submission and reviewer decision writes one, which makes it the
server's busiest write. As a generic resource an event took a `resources` row with its two
indexes and a `search_index` row with its two, and the search index grew by a row per CRD call.
Here the event's JSON is one `audit_events` row, and each patient it names one
`audit_event_patients` key (four B-trees instead of six), which together with `_id`,
`_lastUpdated` and paging serves every AuditEvent search the registry declares (its one search
parameter, `patient`; `check_served` keeps the two in step). Measured on a CRD call
(bench/results/crd.md, session 15): a quarter fewer SQLite instructions, 0.4% fewer in all, and
no difference over HTTP beyond this machine's noise.

The audit trail is append-only: AuditEvents are created, read and searched, never updated or
deleted (the registry leaves those interactions out; `ResourceWriter` refuses them). A database
written before migration 0005 may still hold superseded versions or deleted AuditEvents in the
generic tables; `ResourceStore` falls back to those for reads of an id not found here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from app.registry import ResourceSpec
from app.store.db import Database, SqlConnection
from app.store.indexing import index_entries
from app.store.row_writes import Row, RowWrite, row_write, run_write, run_write_many
from app.store.search import IndexCriterion, SearchQuery, ValueMatch
from app.store.search_sql import date_condition
from app.store.stored import SearchPage, StoredResource
from app.store.tables import audit_event_patients, audit_events

AUDIT_EVENT = "AuditEvent"
#: The AuditEvent search parameters `audit_event_patients` serves (beyond `_id`, `_lastUpdated`)
SERVED_PARAMS = frozenset({"patient"})

INSERT_EVENT = row_write(insert(audit_events), ("id", "version_id", "last_updated_us", "body"))
INSERT_PATIENT = row_write(insert(audit_event_patients), ("patient_id", "event_id"))

_EVENT_COLUMNS = (
    audit_events.c.id,
    audit_events.c.version_id,
    audit_events.c.last_updated_us,
    audit_events.c.body,
)


def check_served(spec: ResourceSpec) -> None:
    """Refuse a registry whose AuditEvent search parameters these tables cannot serve."""
    unserved = sorted({param.name for param in spec.search_params} - SERVED_PARAMS)
    if unserved:
        raise ValueError(f"AuditEvent search parameters not served by audit_log: {unserved}")


def event_rows(
    spec: ResourceSpec | None, stored: StoredResource, resource: dict[str, Any]
) -> list[tuple[RowWrite, Sequence[Row]]]:
    """The rows of a new AuditEvent (`stored`, the version 1 of `resource`), per statement."""
    assert stored.body is not None
    event = {
        "id": stored.id,
        "version_id": stored.version_id,
        "last_updated_us": stored.last_updated_us,
        "body": stored.body.decode("utf-8"),
    }
    patients = [
        {"patient_id": entry.value, "event_id": stored.id}
        for entry in (index_entries(spec, resource) if spec is not None else ())
        if entry.param == "patient"
    ]
    return [(INSERT_EVENT, [event]), (INSERT_PATIENT, patients)]


async def insert_event(
    conn: SqlConnection, spec: ResourceSpec | None, stored: StoredResource, resource: dict[str, Any]
) -> None:
    """Write a new AuditEvent's rows inside an open transaction."""
    (event_write, events), (patient_write, patients) = event_rows(spec, stored, resource)
    await run_write(conn, event_write, events[0])
    if patients:
        await run_write_many(conn, patient_write, patients)


def _to_stored(row: Any) -> StoredResource:
    """An `audit_events` row as a stored version (never deleted)."""
    body = row.body.encode("utf-8")
    return StoredResource(AUDIT_EVENT, row.id, row.version_id, row.last_updated_us, False, body)


def _patient_condition(criterion: IndexCriterion) -> ColumnElement[bool]:
    """Events naming any of the criterion's patients. Patient references are indexed by id
    with the system `Patient` (`app.store.indexing`): a match naming another system is none."""
    ids = [m.value for m in criterion.alternatives if _names_a_patient(m)]
    return exists(
        select(audit_event_patients.c.event_id).where(
            audit_event_patients.c.event_id == audit_events.c.id,
            audit_event_patients.c.patient_id.in_(ids),
        )
    )


def _names_a_patient(match: ValueMatch) -> bool:
    return not match.system_only and (match.any_system or match.system == "Patient")


def _conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [audit_events.c.id.in_(ids) for ids in query.ids]
    for criterion in query.index:
        if criterion.param not in SERVED_PARAMS:  # `check_served` keeps this from happening
            raise ValueError(f"AuditEvent search by {criterion.param} is not served")
        conditions.append(_patient_condition(criterion))
    conditions.extend(date_condition(audit_events.c.last_updated_us, c) for c in query.dates)
    return conditions


class AuditLog:
    """Reads of the stored AuditEvents."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def event(self, event_id: str) -> StoredResource | None:
        """The event with this id, or None."""
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(select(*_EVENT_COLUMNS).where(audit_events.c.id == event_id))
            ).first()
        return None if row is None else _to_stored(row)

    async def search(self, query: SearchQuery) -> SearchPage:
        """The events matching `query`, oldest first (as every search: time, then id)."""
        conditions = _conditions(query)
        async with self.database.reader.connect() as conn:
            total = (
                await conn.execute(
                    select(func.count()).select_from(audit_events).where(*conditions)
                )
            ).scalar_one()
            if query.summary_count or query.count == 0:
                return SearchPage(total, [])
            rows: Sequence[Any] = (
                await conn.execute(
                    select(*_EVENT_COLUMNS)
                    .where(*conditions)
                    .order_by(audit_events.c.last_updated_us, audit_events.c.id)
                    .limit(query.count)
                    .offset(query.offset)
                )
            ).all()
        return SearchPage(total, [_to_stored(row) for row in rows])
