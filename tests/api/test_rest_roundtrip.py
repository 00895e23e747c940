"""Create -> read -> update -> vread -> history -> search -> delete for every served type.

Driven by the registry, so a type added there is covered here; payloads are the IG examples.
Runs on SQLite and PostgreSQL (`module_server` is parametrized over both backends).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.registry import REGISTRY
from app.store.indexing import index_entries
from tests.support.conformance import assert_conforms
from tests.support.ig_examples import example_for, example_ig
from tests.support.live_server import LiveServer

TYPES = sorted(REGISTRY.resources)
BUNDLE = "http://hl7.org/fhir/StructureDefinition/Bundle"


def _query_value(param_type: str, system: str | None, value: str) -> str:
    if param_type == "reference":
        return f"{system}/{value}" if system else value
    if param_type == "token" and system:
        return f"{system}|{value}"
    return value


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if "search" in entry and entry["search"]["mode"] == "match"
    ]


@pytest.mark.parametrize("resource_type", TYPES)
def test_round_trip(module_server: LiveServer, resource_type: str) -> None:
    example = example_for(resource_type)
    with module_server.client() as client:
        created = client.post(f"/fhir/{resource_type}", json=example)
        assert created.status_code == 201, created.text
        body = created.json()
        rid = body["id"]
        assert rid != example.get("id"), "create must assign the id, not take the client's"
        assert body["meta"]["versionId"] == "1"
        assert created.headers["etag"] == 'W/"1"'
        assert (
            created.headers["location"] == f"{module_server.fhir}/{resource_type}/{rid}/_history/1"
        )
        assert created.headers["content-type"].startswith("application/fhir+json")

        read = client.get(f"/fhir/{resource_type}/{rid}")
        assert read.status_code == 200
        assert read.json() == body
        # the core definition and the example's declared profiles, in the example's IG version
        assert_conforms(read.json(), ig=example_ig(resource_type))
        assert read.headers["etag"] == 'W/"1"'

        if "update" in REGISTRY.resources[resource_type].interactions:
            _update_search_and_delete(module_server, client, resource_type, body)
        else:
            _refuse_changes(client, resource_type, body)


def _update_search_and_delete(
    server: LiveServer, client: httpx.Client, resource_type: str, body: dict[str, Any]
) -> None:
    rid = body["id"]
    changed = {**body, "language": "fr-CA"}
    updated = client.put(
        f"/fhir/{resource_type}/{rid}", json=changed, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["language"] == "fr-CA"

    stale = client.put(f"/fhir/{resource_type}/{rid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"

    first = client.get(f"/fhir/{resource_type}/{rid}/_history/1")
    assert first.status_code == 200 and first.json().get("language") != "fr-CA"
    second = client.get(f"/fhir/{resource_type}/{rid}/_history/2")
    assert second.json()["language"] == "fr-CA"
    history = client.get(f"/fhir/{resource_type}/{rid}/_history").json()
    assert_conforms(history, BUNDLE, ig=example_ig(resource_type))
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]

    by_id = client.get(f"/fhir/{resource_type}", params={"_id": rid}).json()
    assert_conforms(by_id, BUNDLE, ig=example_ig(resource_type))
    assert by_id["total"] == 1 and _ids(by_id) == [rid]
    _search_every_indexed_param(client, resource_type, changed, rid)

    deleted = client.delete(f"/fhir/{resource_type}/{rid}")
    assert deleted.status_code == 204
    assert client.get(f"/fhir/{resource_type}/{rid}").status_code == 410
    assert client.get(f"/fhir/{resource_type}", params={"_id": rid}).json()["total"] == 0
    assert client.get(f"/fhir/{resource_type}/{rid}/_history/2").status_code == 200


def _refuse_changes(client: httpx.Client, resource_type: str, body: dict[str, Any]) -> None:
    """An append-only type (AuditEvent): PUT and DELETE answer 405 and change nothing; the one
    version is read, vread, listed in the history and found by every search parameter."""
    rid = body["id"]
    changed = {**body, "language": "fr-CA"}
    for refused in (
        client.put(f"/fhir/{resource_type}/{rid}", json=changed),
        client.delete(f"/fhir/{resource_type}/{rid}"),
    ):
        assert refused.status_code == 405, refused.text
        assert refused.headers["allow"] == "GET, POST"
        assert refused.json()["issue"][0]["expression"] == [resource_type]
    assert client.get(f"/fhir/{resource_type}/{rid}").json() == body
    assert client.get(f"/fhir/{resource_type}/{rid}/_history/1").json() == body
    assert client.get(f"/fhir/{resource_type}/{rid}/_history/2").status_code == 404
    history = client.get(f"/fhir/{resource_type}/{rid}/_history").json()
    assert_conforms(history, BUNDLE, ig=example_ig(resource_type))
    assert [e["resource"] for e in history["entry"]] == [body]
    by_id = client.get(f"/fhir/{resource_type}", params={"_id": rid}).json()
    assert_conforms(by_id, BUNDLE, ig=example_ig(resource_type))
    assert by_id["total"] == 1 and _ids(by_id) == [rid]
    _search_every_indexed_param(client, resource_type, body, rid)


def _search_every_indexed_param(
    client: httpx.Client, resource_type: str, resource: dict[str, Any], rid: str
) -> None:
    spec = REGISTRY.resources[resource_type]
    entries = index_entries(spec, resource)
    for param in spec.search_params:
        mine = [e for e in entries if e.param == param.name]
        for entry in mine[:2]:
            value = _query_value(param.type, entry.system, entry.value)
            found = client.get(
                f"/fhir/{resource_type}", params={param.name: value, "_count": "500"}
            )
            assert found.status_code == 200, found.text
            assert rid in _ids(found.json()), (
                f"{param.name}={value} did not find {resource_type}/{rid}"
            )


def test_every_type_has_a_searchable_example() -> None:
    """Guard: the round trip above really exercises search parameters with values."""
    unsearched = [t for t in TYPES if not index_entries(REGISTRY.resources[t], example_for(t))]
    assert unsearched == []
