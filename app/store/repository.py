"""The resource repository: versioned FHIR resources and their search index, behind one interface.

Reads go through `ResourceStore`; every write happens inside `ResourceStore.transaction()`, one
database transaction per unit of work, so a request that fails part-way leaves nothing behind.
Domain code receives `StoredResource` values (JSON bytes plus version metadata), never ORM rows.
AuditEvents are written to and read from tables of their own (`app.store.audit_log`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from app.fhir.outcomes import FhirError, gone, not_found
from app.registry import Registry
from app.store.audit_log import AUDIT_EVENT, AuditLog, check_served, event_rows, insert_event
from app.store.db import Database, SqlConnection
from app.store.ids import new_row_id
from app.store.indexing import index_entries
from app.store.lookup_cache import LookupCache
from app.store.row_writes import (
    Row,
    RowWrite,
    insert_alone,
    row_write,
    run_write,
    run_write_many,
)
from app.store.search import IndexCriterion, SearchQuery, ValueMatch
from app.store.search_sql import date_condition
from app.store.sqlite_writer import LoopConnection, SqliteWriteEngine
from app.store.stored import (
    SearchPage,
    StoredResource,
    format_instant,
    now_us,
    stored_from_row,
)
from app.store.tables import (
    audit_event_patients,
    audit_events,
    resource_versions,
    resources,
    search_index,
)

# Built once (`app.store.row_writes`): raw SQL on the SQLite write connection, the SQLAlchemy
# statement on PostgreSQL (the write hot path).
_ROW_COLUMNS = ("resource_type", "id", "version_id", "last_updated_us", "deleted", "body")
_INSERT_RESOURCE = row_write(insert(resources), _ROW_COLUMNS)
_INSERT_VERSION = row_write(insert(resource_versions), _ROW_COLUMNS)
_INSERT_INDEX = row_write(
    insert(search_index), ("resource_type", "resource_id", "param", "system", "value")
)
_DELETE_INDEX = row_write(
    delete(search_index).where(
        search_index.c.resource_type == bindparam("w_type"),
        search_index.c.resource_id == bindparam("w_id"),
    )
)
_NEXT_VERSION = row_write(
    update(resources)
    .where(
        resources.c.resource_type == bindparam("w_type"),
        resources.c.id == bindparam("w_id"),
        resources.c.version_id == bindparam("w_version"),
    )
    .values(
        version_id=bindparam("version_id"),
        last_updated_us=bindparam("last_updated_us"),
        deleted=bindparam("deleted"),
        body=bindparam("body"),
    )
)


def new_id() -> str:
    """A new resource id (time-ordered: `app.store.ids`)."""
    return new_row_id()


def _with_meta(resource: dict[str, Any], resource_id: str, version: int, stamp: int) -> bytes:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = format_instant(stamp)
    body = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    body.update({k: v for k, v in resource.items() if k not in body})
    return orjson.dumps(body)


def _first_version(resource: dict[str, Any], resource_id: str) -> StoredResource:
    stamp = now_us()
    body = _with_meta(resource, resource_id, 1, stamp)
    return StoredResource(resource["resourceType"], resource_id, 1, stamp, False, body)


def _index_rows(
    registry: Registry, resource_type: str, resource_id: str, resource: dict[str, Any]
) -> list[dict[str, Any]]:
    """The `search_index` rows of `resource`'s content."""
    spec = registry.resource(resource_type)
    if spec is None:
        return []
    return [
        {
            "resource_type": resource_type,
            "resource_id": resource_id,
            "param": entry.param,
            "system": entry.system,
            "value": entry.value,
        }
        for entry in index_entries(spec, resource)
    ]


def _row_values(stored: StoredResource) -> dict[str, Any]:
    """The columns of a `resources` / `resource_versions` row holding `stored`."""
    return {
        "resource_type": stored.resource_type,
        "id": stored.id,
        "version_id": stored.version_id,
        "last_updated_us": stored.last_updated_us,
        "deleted": stored.deleted,
        "body": None if stored.body is None else stored.body.decode("utf-8"),
    }


def _immutable(resource_type: str, resource_id: str) -> FhirError:
    """AuditEvents are never changed (`app.store.audit_log`)."""
    return FhirError.single(
        405,
        "not-supported",
        f"{resource_type}/{resource_id} cannot be changed: the audit trail is append-only",
        resource_type,
        headers={"Allow": "GET, POST"},  # as the REST layer answers (`app.api.resources`)
    )


def _changed_concurrently(current: StoredResource) -> FhirError:
    return FhirError.single(
        409, "conflict", f"{current.resource_type}/{current.id} was changed concurrently; retry"
    )


def parse_if_match(header: str | None) -> int | None:
    """`W/"3"` or `"3"` -> 3; raise 400 on anything else."""
    if header is None:
        return None
    text = header.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise FhirError.single(
            400, "invalid", f"If-Match '{header}' is not a version ETag", "If-Match"
        )
    return int(text)


def _check_if_match(current: StoredResource | None, if_match: int | None) -> None:
    """Raise 412 when an `If-Match` version is given and is not the live current version."""
    if if_match is None:
        return
    if current is not None and not current.deleted:
        if current.version_id == if_match:
            return
        have = str(current.version_id)
    else:
        have = "none"
    raise FhirError.single(
        412,
        "conflict",
        f"If-Match version {if_match} does not match the current version ({have})",
        "If-Match",
    )


class ResourceWriter:
    """Writes inside one open transaction (see `ResourceStore.transaction`)."""

    def __init__(self, conn: SqlConnection, registry: Registry) -> None:
        self._conn = conn
        self._registry = registry

    async def current(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The current version, locked for the rest of the transaction (PostgreSQL row lock;
        SQLite write transactions are already exclusive)."""
        row = (
            await self._conn.execute(_CURRENT_ROW_LOCKED, {"t": resource_type, "i": resource_id})
        ).first()
        return None if row is None else stored_from_row(resource_type, resource_id, row)

    async def create(
        self, resource: dict[str, Any], resource_id: str | None = None
    ) -> StoredResource:
        """Store a new resource (version 1) under `resource_id` or a new id."""
        resource_type = resource["resourceType"]
        rid = resource_id or new_id()
        stored = _first_version(resource, rid)
        if resource_type == AUDIT_EVENT:
            self._wrote(resource_type)
            await insert_event(self._conn, self._registry.resource(resource_type), stored, resource)
            return stored
        try:
            await run_write(self._conn, _INSERT_RESOURCE, _row_values(stored))
        except IntegrityError:
            raise FhirError.single(
                409, "conflict", f"{resource_type}/{rid} already exists", f"{resource_type}.id"
            ) from None
        await self._index(resource_type, rid, resource, new=True)
        return stored

    async def update(
        self, resource: dict[str, Any], resource_id: str, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version (or create it when absent); returns (stored, created)."""
        resource_type = resource["resourceType"]
        if resource_type == AUDIT_EVENT:
            raise _immutable(resource_type, resource_id)
        current = await self.current(resource_type, resource_id)
        _check_if_match(current, if_match)
        if current is None:
            return await self.create(resource, resource_id), True
        stored = await self._next_version(current, resource)
        return stored, current.deleted

    async def delete(
        self, resource_type: str, resource_id: str, if_match: int | None = None
    ) -> StoredResource | None:
        """Mark deleted as a new version; None when there was nothing to delete."""
        if resource_type == AUDIT_EVENT:
            raise _immutable(resource_type, resource_id)
        current = await self.current(resource_type, resource_id)
        _check_if_match(current, if_match)
        if current is None or current.deleted:
            return None
        return await self._next_version(current, None)

    async def _next_version(
        self, current: StoredResource, resource: dict[str, Any] | None
    ) -> StoredResource:
        """Write version current+1 (None = a deletion), only if nobody else wrote in between."""
        version = current.version_id + 1
        stamp = max(now_us(), current.last_updated_us + 1000)
        body = None if resource is None else _with_meta(resource, current.id, version, stamp)
        try:  # the superseded version moves to the history
            await run_write(self._conn, _INSERT_VERSION, _row_values(current))
        except IntegrityError:
            raise _changed_concurrently(current) from None
        written = await run_write(
            self._conn,
            _NEXT_VERSION,
            {
                "w_type": current.resource_type,
                "w_id": current.id,
                "w_version": current.version_id,
                "version_id": version,
                "last_updated_us": stamp,
                "deleted": body is None,
                "body": None if body is None else body.decode("utf-8"),
            },
        )
        if written != 1:
            raise _changed_concurrently(current)
        await self._index(current.resource_type, current.id, resource, new=False)
        return StoredResource(current.resource_type, current.id, version, stamp, body is None, body)

    def _wrote(self, resource_type: str) -> None:
        """Note a write of `resource_type` for `SqliteWriteEngine.freshness`."""
        if isinstance(self._conn, LoopConnection):
            self._conn.wrote(resource_type)

    async def _index(
        self, resource_type: str, resource_id: str, resource: dict[str, Any] | None, *, new: bool
    ) -> None:
        """The search index rows of the resource's new content (replacing the old ones)."""
        self._wrote(resource_type)  # every write of a resource passes here
        if not new:
            await run_write(
                self._conn, _DELETE_INDEX, {"w_type": resource_type, "w_id": resource_id}
            )
        if resource is None:
            return
        rows = _index_rows(self._registry, resource_type, resource_id, resource)
        if rows:
            await run_write_many(self._conn, _INSERT_INDEX, rows)


def _value_condition(match: ValueMatch) -> ColumnElement[bool]:
    if match.system_only:
        return search_index.c.system == match.system
    if match.prefix:
        return search_index.c.value.startswith(match.value, autoescape=True)
    condition = search_index.c.value == match.value
    if not match.any_system:
        system_clause = (
            search_index.c.system.is_(None)
            if match.system is None
            else search_index.c.system == match.system
        )
        condition = and_(condition, system_clause)
    return condition


def _index_condition(resource_type: str, criterion: IndexCriterion) -> ColumnElement[bool]:
    return exists(
        select(search_index.c.row_id).where(
            search_index.c.resource_type == resource_type,
            search_index.c.resource_id == resources.c.id,
            search_index.c.param == criterion.param,
            or_(*(_value_condition(m) for m in criterion.alternatives)),
        )
    )


class _PointRow(NamedTuple):
    version_id: int
    last_updated_us: int
    deleted: int  # SQLite booleans are integers
    body: str | None


# Built once: the point reads and the locked read of a write (SQLAlchemy caches them compiled).
_CURRENT_COLUMNS = (
    resources.c.version_id,
    resources.c.last_updated_us,
    resources.c.deleted,
    resources.c.body,
)
_VERSION_COLUMNS = (
    resource_versions.c.version_id,
    resource_versions.c.last_updated_us,
    resource_versions.c.deleted,
    resource_versions.c.body,
)
_CURRENT_ROW = select(*_CURRENT_COLUMNS).where(
    resources.c.resource_type == bindparam("t"), resources.c.id == bindparam("i")
)
_CURRENT_ROW_LOCKED = _CURRENT_ROW.with_for_update()  # inside a write transaction
# A version is in the history once superseded, else it is the current row.
_VERSION_ROW = union_all(
    select(*_VERSION_COLUMNS).where(
        resource_versions.c.resource_type == bindparam("t"),
        resource_versions.c.id == bindparam("i"),
        resource_versions.c.version_id == bindparam("v"),
    ),
    select(*_CURRENT_COLUMNS).where(
        resources.c.resource_type == bindparam("t"),
        resources.c.id == bindparam("i"),
        resources.c.version_id == bindparam("v"),
    ),
)
_HISTORY_ROWS = union_all(
    select(*_VERSION_COLUMNS).where(
        resource_versions.c.resource_type == bindparam("t"),
        resource_versions.c.id == bindparam("i"),
    ),
    select(*_CURRENT_COLUMNS).where(
        resources.c.resource_type == bindparam("t"), resources.c.id == bindparam("i")
    ),
).order_by(text("version_id DESC"))


_BY_TOKEN = (
    select(
        resources.c.id,
        resources.c.version_id,
        resources.c.last_updated_us,
        resources.c.deleted,
        resources.c.body,
    )
    .where(
        resources.c.resource_type == bindparam("t"),
        resources.c.deleted.is_(False),
        resources.c.id.in_(
            select(search_index.c.resource_id).where(
                search_index.c.resource_type == bindparam("t"),
                search_index.c.param == bindparam("p"),
                search_index.c.value == bindparam("v"),
            )
        ),
    )
    .order_by(resources.c.last_updated_us, resources.c.id)
    .limit(bindparam("n"))
)
# Driven by the index lookup (CROSS JOIN fixes SQLite's join order): written as `id IN (...)`,
# SQLite walked every resource of the type in `ix_resources_type_updated` order to avoid a sort,
# one step per member's Coverage on each CRD call. GROUP BY: one row per resource, however many
# systems carry the value.
_BY_INDEXED_VALUE_SQL = (
    "SELECT r.id, r.version_id, r.last_updated_us, r.deleted, r.body "
    "FROM search_index AS s CROSS JOIN resources AS r "
    "WHERE s.resource_type = ? AND s.param = ? AND s.value = ? "
    "AND r.resource_type = s.resource_type AND r.id = s.resource_id AND r.deleted = 0 "
    "GROUP BY r.id ORDER BY r.last_updated_us, r.id LIMIT ?"
)


class ResourceStore:
    """Reads and transactions over the database's resources."""

    def __init__(self, database: Database, registry: Registry) -> None:
        self.database = database
        self.registry = registry
        self._token_lookups: LookupCache[tuple[StoredResource, ...]] = LookupCache()
        self._audit_log = AuditLog(database)
        audit_spec = registry.resource(AUDIT_EVENT)
        if audit_spec is not None:
            check_served(audit_spec)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ResourceWriter]:
        """One database transaction: committed when the block ends, rolled back on any error."""
        async with self.database.writer.begin() as conn:
            yield ResourceWriter(conn, self.registry)

    async def create_alone(self, resource: dict[str, Any]) -> StoredResource:
        """Store a new resource under a new id as a transaction of its own, once committed.

        For a resource that no other write depends on, such as an audit record: its rows are
        written by `insert_alone` (on SQLite just before the next COMMIT, with the other such
        rows of the batch).
        """
        stored = _first_version(resource, new_id())
        if stored.resource_type == AUDIT_EVENT:
            spec = self.registry.resource(AUDIT_EVENT)
            rows: list[tuple[RowWrite, Sequence[Row]]] = event_rows(spec, stored, resource)
        else:
            index = _index_rows(self.registry, stored.resource_type, stored.id, resource)
            rows = [(_INSERT_RESOURCE, [_row_values(stored)]), (_INSERT_INDEX, index)]
        await insert_alone(self.database.writer, rows, (stored.resource_type,))
        return stored

    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """The current version; 404 when unknown, 410 when deleted."""
        if resource_type == AUDIT_EVENT:
            event = await self._audit_log.event(resource_id)
            if event is not None:
                return event  # else perhaps deleted before migration 0005 (`audit_log`)
        point = self.database.point_reader
        if point is not None:
            fast = point.current(resource_type, resource_id)
            row: Any = None if fast is None else _PointRow(*fast)
        else:
            async with self.database.reader.connect() as conn:
                row = (
                    await conn.execute(_CURRENT_ROW, {"t": resource_type, "i": resource_id})
                ).first()
        if row is None:
            raise not_found(resource_type, resource_id)
        stored = stored_from_row(resource_type, resource_id, row)
        if stored.deleted:
            raise gone(resource_type, resource_id)
        return stored

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        if resource_type == AUDIT_EVENT:
            event = await self._audit_log.event(resource_id)
            if event is not None and event.version_id == version_id:
                return event  # else perhaps superseded before migration 0005 (`audit_log`)
        point = self.database.point_reader
        if point is not None:
            fast = point.version(resource_type, resource_id, version_id)
            row: Any = None if fast is None else _PointRow(*fast)
        else:
            async with self.database.reader.connect() as conn:
                row = (
                    await conn.execute(
                        _VERSION_ROW, {"t": resource_type, "i": resource_id, "v": version_id}
                    )
                ).first()
        if row is None:
            raise FhirError.single(
                404,
                "not-found",
                f"{resource_type}/{resource_id} has no version {version_id}",
                f"{resource_type}.meta.versionId",
            )
        stored = stored_from_row(resource_type, resource_id, row)
        if stored.deleted:
            raise gone(resource_type, resource_id)
        return stored

    async def find_by_token(
        self, resource_type: str, param: str, value: str, limit: int = 20
    ) -> list[StoredResource]:
        """Live resources whose token parameter `param` has `value` (any system), oldest first:
        the one indexed query behind hot lookups such as a member id (`search` does more)."""
        if resource_type == AUDIT_EVENT:
            raise ValueError("AuditEvents are not in the search index: use search()")
        point, writer = self.database.point_reader, self.database.writer
        if point is not None and isinstance(writer, SqliteWriteEngine):
            key = (resource_type, param, value, limit)
            stamp = writer.freshness(resource_type)  # before the read (`app.store.lookup_cache`)
            kept = None if stamp is None else self._token_lookups.get(key, stamp)
            if kept is not None:
                return list(kept)
            found = point.rows(_BY_INDEXED_VALUE_SQL, key)
            answer = tuple(
                stored_from_row(resource_type, row[0], _PointRow(*row[1:])) for row in found
            )
            if stamp is not None:
                self._token_lookups.put(key, stamp, answer)
            return list(answer)
        async with self.database.reader.connect() as conn:
            rows = (
                await conn.execute(
                    _BY_TOKEN, {"t": resource_type, "p": param, "v": value, "n": limit}
                )
            ).all()
        return [stored_from_row(resource_type, row.id, row) for row in rows]

    async def history(self, resource_type: str, resource_id: str) -> list[StoredResource]:
        """Every version, newest first; 404 when the resource never existed."""
        async with self.database.reader.connect() as conn:
            rows = (await conn.execute(_HISTORY_ROWS, {"t": resource_type, "i": resource_id})).all()
        versions = [stored_from_row(resource_type, resource_id, row) for row in rows]
        if resource_type == AUDIT_EVENT:  # older versions from before migration 0005, if any
            event = await self._audit_log.event(resource_id)
            versions = ([] if event is None else [event]) + versions
        if not versions:
            raise not_found(resource_type, resource_id)
        return versions

    async def search(self, query: SearchQuery) -> SearchPage:
        if query.resource_type == AUDIT_EVENT:
            return await self._audit_log.search(query)
        conditions: list[ColumnElement[bool]] = [
            resources.c.resource_type == query.resource_type,
            resources.c.deleted.is_(False),
        ]
        conditions.extend(resources.c.id.in_(ids) for ids in query.ids)
        conditions.extend(_index_condition(query.resource_type, c) for c in query.index)
        conditions.extend(date_condition(resources.c.last_updated_us, c) for c in query.dates)
        async with self.database.reader.connect() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(resources).where(*conditions))
            ).scalar_one()
            if query.summary_count or query.count == 0:
                return SearchPage(total, [])
            rows = (
                await conn.execute(
                    select(
                        resources.c.id,
                        resources.c.version_id,
                        resources.c.last_updated_us,
                        resources.c.deleted,
                        resources.c.body,
                    )
                    .where(*conditions)
                    .order_by(resources.c.last_updated_us, resources.c.id)
                    .limit(query.count)
                    .offset(query.offset)
                )
            ).all()
        return SearchPage(
            total, [stored_from_row(query.resource_type, row.id, row) for row in rows]
        )

    async def count_rows(self) -> dict[str, int]:
        """Row counts of every table (used to prove that a failed request wrote nothing)."""
        async with self.database.reader.connect() as conn:
            return {
                table.name: (
                    await conn.execute(select(func.count()).select_from(table))
                ).scalar_one()
                for table in (
                    resources,
                    resource_versions,
                    search_index,
                    audit_events,
                    audit_event_patients,
                )
            }
