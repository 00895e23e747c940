"""Bad input gets the right 4xx with an OperationOutcome naming the element path, and writes
nothing (row counts before and after). A 500 answers a generic outcome without internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.store.db import create_database
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.support.conformance import assert_conforms
from tests.support.db_rows import assert_no_nulls, row_counts
from tests.support.ig_examples import example_for
from tests.support.live_server import LiveServer, run_server

BODY_LIMIT = 4096


@pytest.fixture(scope="module", params=BACKENDS)
def small_limit_server(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[LiveServer]:
    settings = make_settings(new_database_url(request.param), max_body_bytes=BODY_LIMIT)
    with run_server(settings) as server:
        yield server


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert_no_nulls(body)
    assert_conforms(body, "http://hl7.org/fhir/StructureDefinition/OperationOutcome")
    return body


def _expressions(outcome: dict[str, Any]) -> list[str]:
    return [expr for issue in outcome["issue"] for expr in issue.get("expression", [])]


def _patient(**extra: Any) -> dict[str, Any]:
    return {**example_for("Patient"), **extra}


BAD_WRITES: list[tuple[str, str, str, dict[str, str], bytes | None, Any, int, str]] = [
    # (case, method, path, headers, raw body, json body, status, expected expression)
    ("malformed json", "POST", "/fhir/Patient", {}, b'{"resourceType": "Patient",', None, 400, "$"),
    (
        "type differs from URL",
        "POST",
        "/fhir/Patient",
        {},
        None,
        example_for("Coverage"),
        400,
        "Patient.resourceType",
    ),
    (
        "element R4 rejects",
        "POST",
        "/fhir/Patient",
        {},
        None,
        _patient(name=[{"family": "Doe", "nickname": "J"}]),
        400,
        "Patient.name[0].nickname",
    ),
    (
        "bad primitive",
        "POST",
        "/fhir/Patient",
        {},
        None,
        _patient(birthDate="1970-13-45"),
        400,
        "Patient.birthDate",
    ),
    (
        "missing 1..1 element",
        "POST",
        "/fhir/Coverage",
        {},
        None,
        {"resourceType": "Coverage", "status": "active", "payor": [{"display": "x"}]},
        400,
        "Coverage.beneficiary",
    ),
    ("not an object", "POST", "/fhir/Patient", {}, b"[1, 2]", None, 400, "$"),
    ("unknown type", "POST", "/fhir/Spaceship", {}, None, {"resourceType": "Spaceship"}, 404, ""),
    (
        "type not served",
        "POST",
        "/fhir/Appointment",
        {},
        None,
        example_for("Patient"),
        404,
        "Appointment",
    ),
    (
        "xml body",
        "POST",
        "/fhir/Patient",
        {"Content-Type": "application/fhir+xml"},
        b"<Patient xmlns='http://hl7.org/fhir'/>",
        None,
        415,
        "Content-Type",
    ),
    (
        "xml wanted",
        "POST",
        "/fhir/Patient",
        {"Accept": "application/fhir+xml"},
        None,
        example_for("Patient"),
        406,
        "Accept",
    ),
    (
        "xml _format",
        "POST",
        "/fhir/Patient?_format=xml",
        {},
        None,
        example_for("Patient"),
        406,
        "_format",
    ),
    (
        "update id mismatch",
        "PUT",
        "/fhir/Patient/abc",
        {},
        None,
        _patient(id="xyz"),
        400,
        "Patient.id",
    ),
    (
        "update without id",
        "PUT",
        "/fhir/Patient/abc",
        {},
        None,
        {k: v for k, v in _patient().items() if k != "id"},
        400,
        "Patient.id",
    ),
    ("bad id", "PUT", "/fhir/Patient/a_b", {}, None, _patient(id="a_b"), 400, "Patient.id"),
    (
        "body too large",
        "POST",
        "/fhir/Patient",
        {},
        None,
        _patient(
            text={
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                + "x" * (2 * BODY_LIMIT)
                + "</div>",
            }
        ),
        413,
        "$body",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "headers", "raw", "payload", "status", "expression"),
    BAD_WRITES,
    ids=[row[0] for row in BAD_WRITES],
)
def test_bad_write_is_refused_and_writes_nothing(
    small_limit_server: LiveServer,
    case: str,
    method: str,
    path: str,
    headers: dict[str, str],
    raw: bytes | None,
    payload: Any,
    status: int,
    expression: str,
) -> None:
    before = row_counts(small_limit_server.settings.database_url)
    with small_limit_server.client() as client:
        if raw is not None:
            response = client.request(
                method,
                path,
                content=raw,
                headers={"Content-Type": "application/fhir+json", **headers},
            )
        else:
            response = client.request(method, path, json=payload, headers=headers)
    outcome = _outcome(response, status)
    if expression:
        assert expression in _expressions(outcome), f"{case}: {outcome}"
    assert row_counts(small_limit_server.settings.database_url) == before


def test_version_conflict_writes_nothing(small_limit_server: LiveServer) -> None:
    with small_limit_server.client() as client:
        created = client.post("/fhir/Patient", json=example_for("Patient")).json()
        before = row_counts(small_limit_server.settings.database_url)
        stale = client.put(
            f"/fhir/Patient/{created['id']}",
            json={**created, "active": False},
            headers={"If-Match": 'W/"7"'},
        )
        assert "If-Match" in _expressions(_outcome(stale, 412))
        gone_delete = client.delete(f"/fhir/Patient/{created['id']}", headers={"If-Match": 'W/"2"'})
        _outcome(gone_delete, 412)
        assert row_counts(small_limit_server.settings.database_url) == before
        assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/fhir/Patient/does-not-exist", 404, "not-found"),
        ("/fhir/Patient/does-not-exist/_history/1", 404, "not-found"),
        ("/fhir/Spaceship/1", 404, "not-found"),
        ("/fhir/Patient?_count=abc", 400, "invalid"),
        ("/fhir/Patient?_lastUpdated=gt2026-99", 400, "invalid"),
        ("/fhir/Patient?identifier:text=x", 400, "not-supported"),
        ("/fhir/Patient?_summary=data", 400, "not-supported"),
        ("/fhir/Coverage?patient=Organization/1", 400, "invalid"),
        ("/fhir/Patient/1?_format=application/fhir+xml", 406, "not-supported"),
    ],
)
def test_bad_read_answers_outcome(
    small_limit_server: LiveServer, path: str, status: int, code: str
) -> None:
    with small_limit_server.client() as client:
        outcome = _outcome(client.get(path), status)
    assert outcome["issue"][0]["code"] == code


def test_strict_handling_rejects_unknown_search_parameter(small_limit_server: LiveServer) -> None:
    with small_limit_server.client() as client:
        lenient = client.get("/fhir/Patient", params={"shoe-size": "9"})
        strict = client.get(
            "/fhir/Patient", params={"shoe-size": "9"}, headers={"Prefer": "handling=strict"}
        )
    assert lenient.status_code == 200
    outcomes = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert outcomes and "shoe-size" in outcomes[0]["resource"]["issue"][0]["expression"]
    assert "shoe-size" in _expressions(_outcome(strict, 400))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_failure_mid_write_rolls_back_and_hides_internals(
    backend_name: str, new_database_url: DatabaseFactory, make_settings: SettingsFactory
) -> None:
    """The resource row is written before the index rows; when indexing fails, neither stays."""
    url = new_database_url(backend_name)
    with run_server(make_settings(url)) as server:
        asyncio.run(_drop_index_table(url))
        before = row_counts_without_index(url)
        with server.client() as client:
            response = client.post("/fhir/Patient", json=example_for("Patient"))
        outcome = _outcome(response, 500)
        text_body = response.text.lower()
        for leaked in (
            "search_index",
            "traceback",
            "sqlalchemy",
            "operationalerror",
            "programmingerror",
            "undefined",
        ):
            assert leaked not in text_body
        assert outcome["issue"][0]["code"] == "exception"
        assert row_counts_without_index(url) == before


async def _drop_index_table(url: str) -> None:
    database = create_database(url, pool_size=1)
    try:
        async with database.writer.begin() as conn:
            await conn.execute(text("DROP TABLE search_index"))
    finally:
        await database.dispose()


def row_counts_without_index(url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        database = create_database(url, pool_size=1)
        try:
            async with database.reader.connect() as conn:
                return {
                    table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
                    for table in ("resources", "resource_versions")
                }
        finally:
            await database.dispose()

    return asyncio.run(count())
