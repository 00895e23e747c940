"""Scopes: what the token endpoint grants, and what `/fhir` allows per type and interaction.

Requirement: clients get only the `system/*` scopes registered for them; a token whose scopes
do not cover the type and interaction -> 403 with an OperationOutcome (SMART v2 `.cruds`, v1
`.read/.write/.*`).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.auth.tokens import grant_scopes, parse_scope, scope_within
from tests.auth.conftest import Clients
from tests.auth.smart_client import access_token, operation_outcome
from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.mark.parametrize(
    ("scope", "parsed"),
    [
        ("system/Claim.cud", ("Claim", "cud")),
        ("system/*.rs", ("*", "rs")),
        ("system/Patient.read", ("Patient", "rs")),
        ("system/*.write", ("*", "cud")),
        ("system/*.*", ("*", "cruds")),
        ("system/Observation.rs?category=laboratory", None),
        ("patient/Patient.rs", None),
        ("user/*.cruds", None),
        ("system/Patient.", None),
        ("system/Patient.sr", None),
        ("system/Patient.x", None),
        ("launch", None),
        ("openid", None),
    ],
)
def test_parse_scope(scope: str, parsed: tuple[str, str] | None) -> None:
    assert parse_scope(scope) == parsed


@pytest.mark.parametrize(
    ("requested", "allowed", "granted"),
    [
        ("system/Patient.rs", ["system/Patient.rs"], True),
        ("system/Patient.r", ["system/Patient.rs"], True),
        ("system/Patient.rs", ["system/*.rs"], True),
        ("system/Patient.read", ["system/*.rs"], True),
        ("system/Claim.cud", ["system/*.*"], True),
        ("system/Claim.cruds", ["system/Claim.rs", "system/Claim.cud"], True),
        ("system/*.rs", ["system/Patient.rs"], False),
        ("system/Patient.rs", ["system/Patient.r"], False),
        ("system/Patient.cud", ["system/Patient.rs"], False),
        ("system/Coverage.rs", ["system/Patient.cruds"], False),
        ("system/Observation.rs?category=x", ["system/Observation.rs?category=x"], False),
        ("system/Observation.rs", ["system/Observation.rs?category=x"], False),
    ],
)
def test_scope_within(requested: str, allowed: list[str], granted: bool) -> None:
    assert scope_within(requested, allowed) is granted


def test_grant_keeps_order_and_drops_repeats_and_disallowed() -> None:
    requested = "system/Claim.c system/Patient.rs launch system/Claim.c system/Coverage.rs"
    assert grant_scopes(requested, ["system/Claim.cud", "system/Patient.read"]) == [
        "system/Claim.c",
        "system/Patient.rs",
    ]


def _patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": f"Scope-{uuid.uuid4().hex[:8]}"}]}


def _coverage(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "payor": [{"display": "Greenlight Health Plan"}],
    }


def _forbidden(response: Any, expected: str) -> None:
    diagnostics = operation_outcome(response, 403, "forbidden")
    assert expected in diagnostics


def test_read_only_token_cannot_write(auth_server: LiveServer, clients: Clients) -> None:
    token = access_token(auth_server, clients.reader, "system/Patient.rs")
    with auth_server.client(token) as http:
        _forbidden(http.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON), "Patient.c")
        _forbidden(
            http.put("/fhir/Patient/p1", json={**_patient(), "id": "p1"}, headers=FHIR_JSON),
            "Patient.u",
        )
        _forbidden(http.delete("/fhir/Patient/p1"), "Patient.d")
        assert http.get("/fhir/Patient").status_code == 200


def test_token_for_one_type_cannot_read_another(auth_server: LiveServer, clients: Clients) -> None:
    token = access_token(auth_server, clients.reader, "system/Patient.rs")
    with auth_server.client(token) as http:
        _forbidden(http.get("/fhir/Coverage"), "Coverage.s")
        _forbidden(http.get("/fhir/Coverage/c1"), "Coverage.r")
        _forbidden(http.get("/fhir/Claim"), "Claim.s")


def test_read_without_search_scope(auth_server: LiveServer, clients: Clients) -> None:
    writer = access_token(auth_server, clients.writer, "system/Patient.cruds")
    with auth_server.client(writer) as http:
        created = http.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON)
        assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    read_only = access_token(auth_server, clients.writer, "system/Patient.r")
    with auth_server.client(read_only) as http:
        assert http.get(f"/fhir/Patient/{patient_id}").status_code == 200
        _forbidden(http.get("/fhir/Patient"), "Patient.s")


def test_write_and_read_scopes_per_type(auth_server: LiveServer, clients: Clients) -> None:
    token = access_token(auth_server, clients.writer, "system/Patient.cruds system/Coverage.rs")
    with auth_server.client(token) as http:
        created = http.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON)
        assert created.status_code == 201, created.text
        patient_id = created.json()["id"]
        assert http.get("/fhir/Coverage").status_code == 200
        _forbidden(
            http.post("/fhir/Coverage", json=_coverage(patient_id), headers=FHIR_JSON),
            "Coverage.c",
        )
        deleted = http.delete(f"/fhir/Patient/{patient_id}")
        assert deleted.status_code == 204, deleted.text


def test_scope_dropped_at_the_token_endpoint_is_not_usable(
    auth_server: LiveServer, clients: Clients
) -> None:
    token = access_token(auth_server, clients.reader, "system/Patient.rs system/Coverage.rs")
    with auth_server.client(token) as http:
        _forbidden(http.get("/fhir/Coverage"), "Coverage.s")


def test_v1_wildcard_read_scope(auth_server: LiveServer, clients: Clients) -> None:
    token = access_token(auth_server, clients.legacy, "system/*.read")
    with auth_server.client(token) as http:
        assert http.get("/fhir/Claim").status_code == 200
        assert http.get("/fhir/Coverage").status_code == 200
        _forbidden(http.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON), "Patient.c")
