"""Loading the demo payer on both backends: counts, idempotence, and that every member id, NPI
and logical id the Inferno CRD, DTR and PAS fixtures send resolves on the demo payer.

Requirements: "`greenlight demo-data` (idempotent) loads one payer Organization, two plans, a
dozen members ... and prints what it loaded"; "the demo payer knows the members, providers and
codes that the Inferno fixtures use".
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.demo import payer
from app.demo.loader import load_demo_data, load_into
from app.demo.npi import NPI_SYSTEM
from app.dtr.content import content_for
from app.registry import REGISTRY
from app.store.db import create_database
from app.store.migrate import upgrade_database
from app.store.repository import ResourceStore
from app.store.search import parse_search
from tests.conftest import BACKENDS, DatabaseFactory, ServerFactory, SettingsFactory
from tests.demo.inferno_inputs import hook_contexts, request_resources

PROJECT = Path(__file__).resolve().parents[2]
DOCUMENTATION = content_for((PROJECT / "questionnaires").resolve()).resources()
EXPECTED = Counter(r["resourceType"] for r in [*payer.demo_resources(), *DOCUMENTATION])


async def _search(store: ResourceStore, resource_type: str, **params: str) -> list[dict[str, Any]]:
    spec = REGISTRY.resource(resource_type)
    assert spec is not None
    query = parse_search(
        spec,
        list(params.items()),
        fhir_base="http://localhost/fhir",
        default_count=100,
        max_count=500,
        strict=True,
    )
    return [item.json() for item in (await store.search(query)).items]


async def _versions(store: ResourceStore) -> dict[str, int]:
    versions: dict[str, int] = {}
    for resource in payer.demo_resources():
        stored = await store.read(resource["resourceType"], resource["id"])
        versions[f"{resource['resourceType']}/{resource['id']}"] = stored.version_id
    return versions


async def test_loading_twice_changes_nothing(
    backend: str, new_database_url: DatabaseFactory, make_settings: SettingsFactory
) -> None:
    url = new_database_url(backend)
    await asyncio.to_thread(upgrade_database, url)
    settings = make_settings(url)

    first = await load_demo_data(settings)
    assert first.total("created") == sum(EXPECTED.values())
    assert {t: c["created"] for t, c in first.counts().items()} == dict(EXPECTED)

    second = await load_demo_data(settings)
    assert not second.changed
    assert second.total("unchanged") == sum(EXPECTED.values())
    assert [(r.resource_type, r.id, r.version_id) for r in second.resources] == [
        (r.resource_type, r.id, r.version_id) for r in first.resources
    ]
    text = second.describe()
    assert f"0 created, 0 updated, {sum(EXPECTED.values())} unchanged" in text
    for member in payer.MEMBERS:
        assert member.member_id_value in text
    assert "1304582715" in text and "gold-carded" in text

    database = create_database(url)
    try:
        store = ResourceStore(database, REGISTRY)
        assert set((await _versions(store)).values()) == {1}
        for resource_type, count in EXPECTED.items():
            assert len(await _search(store, resource_type, _count="500")) == count, resource_type
        rows = await store.count_rows()
        assert rows["resources"] == sum(EXPECTED.values())
        assert rows["resource_versions"] == 0, "nothing superseded: no history rows"
    finally:
        await database.dispose()


async def test_a_changed_resource_is_updated_and_the_rest_left_alone(
    backend: str, new_database_url: DatabaseFactory
) -> None:
    url = new_database_url(backend)
    await asyncio.to_thread(upgrade_database, url)
    database = create_database(url)
    try:
        store = ResourceStore(database, REGISTRY)
        await load_into(store)
        tampered = (await store.read("Patient", "chen-robert")).json()
        tampered["gender"] = "unknown"
        async with store.transaction() as tx:
            await tx.update(tampered, "chen-robert")
            await tx.delete("Coverage", "cov-okafor-linda")

        report = await load_into(store)
        changed = {
            (r.resource_type, r.id): r.outcome for r in report.resources if r.outcome != "unchanged"
        }
        assert changed == {
            ("Patient", "chen-robert"): "updated",
            ("Coverage", "cov-okafor-linda"): "created",
        }
        restored = await store.read("Patient", "chen-robert")
        assert restored.version_id == 3
        assert restored.json()["gender"] == "male"
        assert (await store.read("Coverage", "cov-okafor-linda")).version_id == 3
    finally:
        await database.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def demo_store(
    request: pytest.FixtureRequest, new_database_url: DatabaseFactory
) -> AsyncIterator[ResourceStore]:
    """A database of each backend holding the demo payer (shared by the read-only tests)."""
    url = new_database_url(request.param)
    await asyncio.to_thread(upgrade_database, url)
    database = create_database(url)
    store = ResourceStore(database, REGISTRY)
    await load_into(store)
    try:
        yield store
    finally:
        await database.dispose()


async def test_inferno_patients_resolve_by_identifier(demo_store: ResourceStore) -> None:
    patient_ids = {m.patient_id for m in payer.MEMBERS}
    checked = 0
    for item in request_resources("Patient"):
        for ident in item.resource.get("identifier", []):
            token = f"{ident['system']}|{ident['value']}"
            found = await _search(demo_store, "Patient", identifier=token)
            assert len(found) == 1, f"{item.path}: Patient?identifier={token}"
            if item.resource.get("id") in patient_ids:
                assert found[0]["id"] == item.resource["id"], item.path
            checked += 1
    assert checked >= 20


async def test_inferno_coverages_resolve_by_member_and_subscriber_id(
    demo_store: ResourceStore,
) -> None:
    checked = 0
    for item in request_resources("Coverage"):
        coverage = item.resource
        subscriber_id = coverage.get("subscriberId")
        if subscriber_id:
            found = await _search(demo_store, "Coverage", identifier=subscriber_id)
            assert found, f"{item.path}: Coverage?identifier={subscriber_id}"
            assert {c["subscriberId"] for c in found} == {subscriber_id}
            if coverage.get("id") in {c["id"] for c in payer.demo_resources()}:
                assert coverage["id"] in {c["id"] for c in found}, item.path
            checked += 1
        for ident in coverage.get("identifier", []):
            token = f"{ident['system']}|{ident['value']}"
            found = await _search(demo_store, "Coverage", identifier=token)
            assert [c["id"] for c in found] == ["InsuranceExample"], f"{item.path}: {token}"
            checked += 1
    assert checked >= 30
    # the member number (type MB) of the PAS 2.2.1 Coverage, and the member ids we assigned
    for member in payer.MEMBERS:
        token = f"{member.member_id['system']}|{member.member_id_value}"
        found = await _search(demo_store, "Coverage", identifier=token)
        assert [c["id"] for c in found] == [member.coverage_id]
        found = await _search(demo_store, "Patient", identifier=token)
        assert [p["id"] for p in found] == [member.patient_id]


async def test_inferno_practitioner_and_organization_npis_resolve(
    demo_store: ResourceStore,
) -> None:
    stored_ids = {(r["resourceType"], r["id"]) for r in payer.demo_resources()}
    checked = 0
    for item in request_resources("Practitioner", "Organization"):
        resource = item.resource
        is_payer = any(
            coding.get("code") in ("PR", "pay")
            for concept in resource.get("type", [])
            for coding in concept.get("coding", [])
        )
        for ident in resource.get("identifier", []):
            if ident.get("system") not in (NPI_SYSTEM, payer.PAS_PAYER_ID_SYSTEM):
                continue
            token = f"{ident['system']}|{ident['value']}"
            found = await _search(demo_store, item.type, identifier=token)
            assert len(found) == 1, f"{item.path}: {item.type}?identifier={token}"
            if is_payer:
                assert found[0]["id"] == payer.PAYER_ORGANIZATION_ID, item.path
            elif (item.type, resource.get("id")) in stored_ids and resource["id"] != "pra1255":
                assert found[0]["id"] == resource["id"], item.path
            checked += 1
    assert checked >= 60


async def test_pas_bundle_participants_exist_under_the_fixture_ids(
    demo_store: ResourceStore,
) -> None:
    """The v2.0.1 / v2.2.1 server-suite bundles' members and providers are stored by logical id
    (the insurer, Organization/InsurerExample, is our payer under its own id)."""
    types = ("Patient", "Coverage", "Practitioner", "PractitionerRole", "Location", "Organization")
    seen: set[tuple[str, str]] = set()
    for under in ("davinci-pas-test-kit/extracted/v201", "davinci-pas-test-kit/extracted/v221"):
        for item in request_resources(*types, under=under):
            if item.resource["id"] != "InsurerExample":
                seen.add((item.type, item.resource["id"]))
    assert seen == {
        ("Patient", "SubscriberExample"),
        ("Coverage", "InsuranceExample"),
        ("Organization", "UMOExample"),
        ("Practitioner", "ReferralPractitionerExample"),
        ("PractitionerRole", "ReferralPractitionerRoleExample"),
        ("Location", "ReferralLocationExample"),
    }
    for resource_type, resource_id in sorted(seen):
        await demo_store.read(resource_type, resource_id)


async def test_crd_hook_context_patients_and_users_exist(demo_store: ResourceStore) -> None:
    contexts = hook_contexts()
    assert len(contexts) >= 10
    for path, context in contexts:
        await demo_store.read("Patient", context["patientId"])
        if "userId" in context:
            resource_type, _, resource_id = context["userId"].partition("/")
            await demo_store.read(resource_type, resource_id)
        else:
            assert "order_dispatch" in path  # order-dispatch has no userId


def test_served_over_http(
    backend: str,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    start_server: ServerFactory,
) -> None:
    """A conformance tester's view: the fixtures' identities through GET /fhir/... searches."""
    url = new_database_url(backend)
    upgrade_database(url)
    asyncio.run(load_demo_data(make_settings(url)))
    server = start_server(url)
    with server.client() as client:
        for resource_type, token, expected in [
            ("Coverage", "10A3D58WH456", "cov015"),
            ("Coverage", "http://davinci-pas.org/MEMBERID|MEM-1234567", "InsuranceExample"),
            ("Coverage", "PFP123450000", "CoverageExample"),
            ("Patient", "http://davinci-pas.org/MIN|12345678901", "SubscriberExample"),
            ("Practitioner", f"{NPI_SYSTEM}|1122334455", "pra1234"),
            ("Practitioner", f"{NPI_SYSTEM}|1234567893", "ReferralPractitionerExample"),
            ("Organization", f"{NPI_SYSTEM}|8189991234", "UMOExample"),
            ("Organization", f"{NPI_SYSTEM}|789312", payer.PAYER_ORGANIZATION_ID),
        ]:
            response = client.get(f"/fhir/{resource_type}", params={"identifier": token})
            assert response.status_code == 200
            bundle = response.json()
            assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [expected], token


def test_cli_prints_what_it_loaded(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GREENLIGHT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        "GREENLIGHT_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "app.cli", "demo-data"]
    total = sum(EXPECTED.values())
    first = subprocess.run(
        command, env=env, cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert f"{total} created, 0 updated, 0 unchanged" in first.stdout
    assert "Greenlight Silver HMO" in first.stdout and "cancelled" in first.stdout
    second = subprocess.run(
        command, env=env, cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert f"0 created, 0 updated, {total} unchanged" in second.stdout
