"""Search semantics: tokens, references, strings, _lastUpdated prefixes, paging, _summary=count."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.db_rows import assert_no_nulls
from tests.support.ig_examples import example_for
from tests.support.live_server import LiveServer

MEMBER_SYSTEM = "https://greenlight.example.org/member-id"


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def _patient(client: httpx.Client, member: str, family: str) -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": MEMBER_SYSTEM, "value": member}],
        "name": [{"family": family, "given": ["Test"]}],
    }
    created = client.post("/fhir/Patient", json=body)
    assert created.status_code == 201
    rid: str = created.json()["id"]
    return rid


def test_token_forms(module_server: LiveServer) -> None:
    with module_server.client() as client:
        rid = _patient(client, "TOK-001", "Tokenson")
        other = _patient(client, "TOK-002", "Tokenson")
        for query, expected in [
            (f"{MEMBER_SYSTEM}|TOK-001", {rid}),
            ("TOK-001", {rid}),
            ("|TOK-001", set()),  # the identifier has a system, so "no system" does not match
            (f"{MEMBER_SYSTEM}|TOK-001,{MEMBER_SYSTEM}|TOK-002", {rid, other}),
            ("https://other.example.org|TOK-001", set()),
        ]:
            found = client.get("/fhir/Patient", params={"identifier": query}).json()
            assert _ids(found) == expected, query
        system_only = client.get(
            "/fhir/Patient", params={"identifier": f"{MEMBER_SYSTEM}|", "_count": "500"}
        ).json()
        assert {rid, other} <= _ids(system_only)


def test_reference_forms_and_and_semantics(module_server: LiveServer) -> None:
    with module_server.client() as client:
        rid = _patient(client, "REF-001", "Refman")
        coverage = {**example_for("Coverage"), "beneficiary": {"reference": f"Patient/{rid}"}}
        coverage_id = client.post("/fhir/Coverage", json=coverage).json()["id"]
        for param, value in [
            ("patient", rid),
            ("patient", f"Patient/{rid}"),
            ("patient", f"{module_server.fhir}/Patient/{rid}"),
            ("beneficiary", f"Patient/{rid}"),
        ]:
            assert _ids(client.get("/fhir/Coverage", params={param: value}).json()) == {
                coverage_id
            }, value
        both = client.get("/fhir/Coverage", params=[("patient", rid), ("status", "active")]).json()
        assert _ids(both) == {coverage_id}
        contradiction = client.get(
            "/fhir/Coverage", params=[("patient", rid), ("status", "cancelled")]
        ).json()
        assert _ids(contradiction) == set()


def test_string_prefix_is_case_insensitive(module_server: LiveServer) -> None:
    with module_server.client() as client:
        rid = _patient(client, "STR-001", "Zyzzyva-Stringer")
        for value in ("zyzzyva", "ZYZZYVA-STR", "Zyzzyva-Stringer"):
            assert rid in _ids(client.get("/fhir/Patient", params={"family": value}).json()), value
        assert rid not in _ids(client.get("/fhir/Patient", params={"family": "stringer"}).json())


def test_last_updated_prefixes(module_server: LiveServer) -> None:
    with module_server.client() as client:
        rid = _patient(client, "DATE-001", "Datewell")
        stamp = client.get(f"/fhir/Patient/{rid}").json()["meta"]["lastUpdated"]
        day = stamp[:10]
        cases = {
            f"eq{day}": True,
            day: True,
            f"ge{stamp}": True,
            f"le{stamp}": True,
            f"gt{stamp}": False,
            f"lt{stamp}": False,
            f"ne{day}": False,
            "gt2999-01-01": False,
            "lt1990": False,
            "ge1990": True,
        }
        for value, expected in cases.items():
            found = client.get("/fhir/Patient", params={"_lastUpdated": value, "_id": rid}).json()
            assert (rid in _ids(found)) is expected, value


def test_paging_with_next_links_and_summary_count(module_server: LiveServer) -> None:
    marker = f"PAGE-{time.time_ns()}"
    with module_server.client() as client:
        created = {_patient(client, f"{marker}-{n}", "Pager") for n in range(7)}
        query = {
            "identifier": ",".join(f"{MEMBER_SYSTEM}|{marker}-{n}" for n in range(7)),
            "_count": "3",
        }
        page = client.get("/fhir/Patient", params=query).json()
        seen: list[str] = []
        pages = 0
        while True:
            assert_no_nulls(page)
            assert page["total"] == 7
            seen.extend(e["resource"]["id"] for e in page["entry"])
            pages += 1
            following = [link["url"] for link in page["link"] if link["relation"] == "next"]
            if not following:
                break
            assert following[0].startswith(module_server.fhir + "/Patient?")
            page = client.get(following[0]).json()
        assert pages == 3 and len(seen) == 7 and set(seen) == created
        counted = client.get("/fhir/Patient", params={**query, "_summary": "count"}).json()
        assert counted["total"] == 7 and "entry" not in counted


def test_post_search_form(module_server: LiveServer) -> None:
    with module_server.client() as client:
        rid = _patient(client, "FORM-001", "Formby")
        found = client.post(
            "/fhir/Patient/_search",
            content=f"identifier={MEMBER_SYSTEM}|FORM-001",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).json()
        assert _ids(found) == {rid}
