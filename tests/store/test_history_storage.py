"""Where versions are stored (`app.store.repository`, migration 0004): engineering tests.

`resource_versions` holds superseded versions only; the current version lives only in
`resources`; vread and history read both. Migration 0004 turns a database written in the old
layout (every version, the current one included, in `resource_versions`) into the new one, and its
downgrade puts the copies of the current versions back. Both backends, real databases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import text

from app.fhir.outcomes import FhirError
from app.registry import REGISTRY
from app.store.db import Database, create_database
from app.store.migrate import alembic_config, upgrade_database
from app.store.repository import ResourceStore
from app.store.stored import StoredResource
from tests.conftest import DatabaseFactory
from tests.support.databases import on_a_new_store, with_and_without_point_reader
from tests.support.ig_examples import example_for

BOTH = pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])

VersionKey = tuple[str, str, int]
VersionRow = tuple[str, str, int, int, bool, str | None]

_SELECT_COLUMNS = "resource_type, id, version_id, last_updated_us, deleted, body"


async def _rows(database: Database, table: str) -> list[VersionRow]:
    """Every row of `resources` or `resource_versions`, sorted by key here (not by the
    database's collation)."""
    async with database.reader.connect() as conn:
        result = await conn.execute(text(f"SELECT {_SELECT_COLUMNS} FROM {table}"))  # noqa: S608
        return sorted((r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in result)


def _as_row(stored: StoredResource) -> VersionRow:
    body = None if stored.body is None else stored.body.decode("utf-8")
    return (
        stored.resource_type,
        stored.id,
        stored.version_id,
        stored.last_updated_us,
        stored.deleted,
        body,
    )


def _stores(database: Database) -> list[ResourceStore]:
    """The store as the app builds it and, on SQLite, one without the inline point reader (its
    vread then goes through SQLAlchemy, as on an in-memory database)."""
    return [ResourceStore(d, REGISTRY) for d in with_and_without_point_reader(database)]


async def _status_of_vread(store: ResourceStore, rid: str, version: int) -> int:
    with pytest.raises(FhirError) as caught:
        await store.vread("Patient", rid, version)
    return caught.value.status


def _patient(gender: str) -> dict[str, Any]:
    return {**example_for("Patient"), "gender": gender}


@BOTH
def test_a_created_resource_has_no_history_row(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(database: Database, store: ResourceStore) -> None:
        async with store.transaction() as tx:
            created = await tx.create(_patient("male"))
        assert await _rows(database, "resource_versions") == []
        assert len(await _rows(database, "resources")) == 1

        for reader in _stores(database):
            assert await reader.read("Patient", created.id) == created
            assert await reader.vread("Patient", created.id, 1) == created
            assert await reader.history("Patient", created.id) == [created]
            assert await _status_of_vread(reader, created.id, 2) == 404
            assert await _status_of_vread(reader, created.id, 0) == 404

    on_a_new_store(new_database_url(backend_name), scenario)


@BOTH
def test_updates_and_delete_keep_every_superseded_version(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    async def scenario(database: Database, store: ResourceStore) -> None:
        async with store.transaction() as tx:
            v1 = await tx.create(_patient("male"))
        rid = v1.id
        async with store.transaction() as tx:
            v2, created = await tx.update({**_patient("female"), "id": rid}, rid, if_match=1)
            assert not created
        async with store.transaction() as tx:
            v3, _ = await tx.update({**_patient("other"), "id": rid}, rid)
        async with store.transaction() as tx:
            v4 = await tx.delete("Patient", rid, if_match=3)
        assert v4 is not None
        versions = [v1, v2, v3, v4]
        assert [v.version_id for v in versions] == [1, 2, 3, 4]
        assert [v.json()["gender"] for v in versions[:3]] == ["male", "female", "other"]

        history_rows = await _rows(database, "resource_versions")
        assert [row[2] for row in history_rows] == [1, 2, 3]
        assert history_rows == [_as_row(v) for v in versions[:3]]
        assert await _rows(database, "resources") == [_as_row(v4)]

        for reader in _stores(database):
            history = await reader.history("Patient", rid)
            assert history == versions[::-1]
            assert [(v.version_id, v.deleted) for v in history] == [
                (4, True),
                (3, False),
                (2, False),
                (1, False),
            ]
            for version in versions[:3]:
                stored = await reader.vread("Patient", rid, version.version_id)
                assert stored == version
                assert stored.json()["meta"]["versionId"] == str(version.version_id)
            assert await _status_of_vread(reader, rid, 4) == 410
            assert await _status_of_vread(reader, rid, 5) == 404

        # a resource written again after its deletion: the deletion becomes history too
        async with store.transaction() as tx:
            v5, recreated = await tx.update({**_patient("unknown"), "id": rid}, rid)
        assert recreated
        assert v5.version_id == 5
        assert [row[2:5] for row in await _rows(database, "resource_versions")] == [
            (1, v1.last_updated_us, False),
            (2, v2.last_updated_us, False),
            (3, v3.last_updated_us, False),
            (4, v4.last_updated_us, True),
        ]
        assert await store.history("Patient", rid) == [v5, *versions[::-1]]
        assert await store.vread("Patient", rid, 5) == v5

    on_a_new_store(new_database_url(backend_name), scenario)


def _old_layout_version(rid: str, version: int, *, deleted: bool = False) -> VersionRow:
    stamp = 1_750_000_000_000_000 + version * 1_000_000
    if deleted:
        return ("Patient", rid, version, stamp, True, None)
    body = {
        "resourceType": "Patient",
        "id": rid,
        "meta": {"versionId": str(version)},
        "gender": "female" if version % 2 else "male",
    }
    return ("Patient", rid, version, stamp, False, orjson.dumps(body).decode("utf-8"))


# Written by the code before 0004: each resource's versions (the last one is current).
OLD_LAYOUT: dict[str, list[VersionRow]] = {
    "old-live": [_old_layout_version("old-live", v) for v in (1, 2, 3)],
    "old-deleted": [
        _old_layout_version("old-deleted", 1),
        _old_layout_version("old-deleted", 2, deleted=True),
    ],
    "old-single": [_old_layout_version("old-single", 1)],
}

_INSERT = (
    "INSERT INTO {table} (resource_type, id, version_id, last_updated_us, deleted, body) "
    "VALUES (:resource_type, :id, :version_id, :last_updated_us, :deleted, :body)"
)


def _parameters(row: VersionRow) -> dict[str, Any]:
    names = ("resource_type", "id", "version_id", "last_updated_us", "deleted", "body")
    return dict(zip(names, row, strict=True))


def _stored(row: VersionRow) -> StoredResource:
    body = None if row[5] is None else row[5].encode("utf-8")
    return StoredResource(row[0], row[1], row[2], row[3], row[4], body)


async def _write_old_layout(url: str) -> None:
    database = create_database(url, pool_size=1)
    try:
        async with database.writer.begin() as conn:
            for versions in OLD_LAYOUT.values():
                for row in versions:
                    await conn.execute(
                        text(_INSERT.format(table="resource_versions")), _parameters(row)
                    )
                await conn.execute(
                    text(_INSERT.format(table="resources")), _parameters(versions[-1])
                )
    finally:
        await database.dispose()


async def _table(url: str, table: str) -> list[VersionRow]:
    database = create_database(url, pool_size=1)
    try:
        return await _rows(database, table)
    finally:
        await database.dispose()


async def _check_every_version_is_read(url: str) -> None:
    database = create_database(url, pool_size=2)
    try:
        for reader in _stores(database):
            for rid, versions in OLD_LAYOUT.items():
                expected = [_stored(row) for row in versions]
                assert await reader.history("Patient", rid) == expected[::-1]
                for stored in expected:
                    if stored.deleted:
                        assert await _status_of_vread(reader, rid, stored.version_id) == 410
                    else:
                        assert await reader.vread("Patient", rid, stored.version_id) == stored
    finally:
        await database.dispose()


async def _update_old_live(url: str) -> StoredResource:
    database = create_database(url, pool_size=1)
    try:
        store = ResourceStore(database, REGISTRY)
        async with store.transaction() as tx:
            stored, created = await tx.update(
                {"resourceType": "Patient", "id": "old-live", "gender": "unknown"},
                "old-live",
                if_match=3,
            )
        assert not created
        return stored
    finally:
        await database.dispose()


@BOTH
def test_migration_0004_drops_the_copies_of_current_versions_and_downgrade_restores_them(
    backend_name: str, new_database_url: DatabaseFactory
) -> None:
    url = new_database_url(backend_name)
    upgrade_database(url, "0003")
    asyncio.run(_write_old_layout(url))
    every_version = sorted(row for versions in OLD_LAYOUT.values() for row in versions)
    current = sorted(versions[-1] for versions in OLD_LAYOUT.values())
    superseded = sorted(row for versions in OLD_LAYOUT.values() for row in versions[:-1])
    assert asyncio.run(_table(url, "resource_versions")) == every_version

    upgrade_database(url)
    assert asyncio.run(_table(url, "resource_versions")) == superseded
    assert asyncio.run(_table(url, "resources")) == current
    asyncio.run(_check_every_version_is_read(url))

    # the migrated data takes new writes: version 3 of old-live becomes history
    v4 = asyncio.run(_update_old_live(url))
    assert v4.version_id == 4
    assert asyncio.run(_table(url, "resource_versions")) == sorted(
        [*superseded, OLD_LAYOUT["old-live"][-1]]
    )

    command.downgrade(alembic_config(url), "0003")
    now_current = [_as_row(v4) if row[1] == "old-live" else row for row in current]
    assert asyncio.run(_table(url, "resources")) == sorted(now_current)
    assert asyncio.run(_table(url, "resource_versions")) == sorted([*every_version, _as_row(v4)]), (
        "every version, the current ones included, as before 0004"
    )
