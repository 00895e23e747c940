"""Scopes: what the token endpoint grants, and what `/fhir` allows per type and interaction.

Requirement: clients get only the `system/*` scopes registered for them; a token whose scopes
do not cover the type and interaction -> 403 with an OperationOutcome (SMART v2 `.cruds`, v1
`.read/.write/.*`). DTR spec-120 (Backend Services): the resource type of a scope is read in any
case and granted in FHIR's spelling (the IG lists `system/questionnaire.rs`,
`system/valueset.rs`, `system/library.rs`); `user/` and `patient/` scopes are not granted.
Granular scopes (`?query`) are refused with `invalid_scope`, never granted and never honoured
as unrestricted.
"""

from __future__ import annotations

import re
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from app.auth.principal import Principal
from app.auth.scopes import (
    REVIEWER_SCOPE,
    check_registered_scopes,
    grant_scopes,
    parse_scope,
    read_scope,
    scope_within,
)
from app.fhir.resource_types import R4_RESOURCE_TYPES, fhir_resource_type
from app.main import create_app
from tests.auth.conftest import DTR_IG_SCOPES, Clients
from tests.auth.smart_client import (
    access_token,
    oauth_error,
    operation_outcome,
    request_token,
    token_url,
)
from tests.conftest import FHIR_PACKAGES, SettingsFactory
from tests.support.live_server import LiveServer

FHIR_JSON = {"Content-Type": "application/fhir+json"}

dtr_backend_services = pytest.mark.requirement("DTR", "spec-120")


@pytest.mark.parametrize(
    ("scope", "parsed"),
    [
        ("system/Claim.cud", ("Claim", "cud")),
        ("system/*.rs", ("*", "rs")),
        ("system/Patient.read", ("Patient", "rs")),
        ("system/*.write", ("*", "cud")),
        ("system/*.*", ("*", "cruds")),
        ("system/questionnaire.rs", ("Questionnaire", "rs")),
        ("system/valueset.rs", ("ValueSet", "rs")),
        ("system/VALUESET.read", ("ValueSet", "rs")),
        ("system/claim.c", ("Claim", "c")),
        ("system/questionnaireresponse.*", ("QuestionnaireResponse", "cruds")),
        ("system/Observation.rs?category=laboratory", None),
        ("system/observation.rs?category=laboratory", None),
        ("patient/Patient.rs", None),
        ("user/*.cruds", None),
        ("user/questionnaire.read", None),
        ("System/Claim.c", None),
        ("system/Claim.RS", None),
        ("system/Claim.Read", None),
        ("system/Foo.rs", None),
        ("system/humanname.rs", None),
        ("system/Patient.", None),
        ("system/Patient.sr", None),
        ("system/Patient.x", None),
        ("system/.rs", None),
        (REVIEWER_SCOPE, None),
        ("launch", None),
        ("openid", None),
    ],
)
def test_parse_scope(scope: str, parsed: tuple[str, str] | None) -> None:
    assert parse_scope(scope) == parsed


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("system/questionnaire.rs", "system/Questionnaire.rs"),
        ("system/library.rs", "system/Library.rs"),
        ("system/claim.c", "system/Claim.c"),
        ("system/patient.read", "system/Patient.read"),
        ("system/COVERAGE.*", "system/Coverage.*"),
        ("system/*.cruds", "system/*.cruds"),
        ("system/Claim.cud", "system/Claim.cud"),
        (REVIEWER_SCOPE, REVIEWER_SCOPE),
    ],
)
def test_a_scope_is_granted_in_fhirs_spelling(scope: str, granted: str) -> None:
    assert read_scope(scope)[0] == granted


@pytest.mark.parametrize(
    ("requested", "allowed", "granted"),
    [
        ("system/Patient.rs", ["system/Patient.rs"], True),
        ("system/Patient.r", ["system/Patient.rs"], True),
        ("system/Patient.rs", ["system/*.rs"], True),
        ("system/Patient.read", ["system/*.rs"], True),
        ("system/Claim.cud", ["system/*.*"], True),
        ("system/Claim.cruds", ["system/Claim.rs", "system/Claim.cud"], True),
        ("system/questionnaire.rs", ["system/Questionnaire.rs"], True),
        ("system/Questionnaire.rs", ["system/questionnaire.rs"], True),
        ("system/valueset.read", ["system/VALUESET.rs"], True),
        ("system/*.rs", ["system/Patient.rs"], False),
        ("system/Patient.rs", ["system/Patient.r"], False),
        ("system/Patient.cud", ["system/Patient.rs"], False),
        ("system/Coverage.rs", ["system/Patient.cruds"], False),
        ("user/Patient.rs", ["system/*.cruds"], False),
        ("system/Observation.rs?category=x", ["system/Observation.rs?category=x"], False),
        ("system/Observation.rs?category=x", ["system/*.cruds"], False),
        ("system/Observation.rs", ["system/Observation.rs?category=x"], False),
        (REVIEWER_SCOPE, [REVIEWER_SCOPE, "system/ClaimResponse.rus"], True),
        (REVIEWER_SCOPE, ["system/*.cruds"], False),
    ],
)
def test_scope_within(requested: str, allowed: list[str], granted: bool) -> None:
    assert scope_within(requested, allowed) is granted


def test_grant_keeps_order_and_drops_repeats_and_disallowed() -> None:
    requested = "system/Claim.c system/Patient.rs launch system/Claim.c system/Coverage.rs"
    grant = grant_scopes(requested, ["system/Claim.cud", "system/Patient.read"])
    assert grant.granted == ["system/Claim.c", "system/Patient.rs"]
    assert set(grant.refused) == {"launch", "system/Coverage.rs"}
    assert "not registered" in grant.refused["system/Coverage.rs"]
    assert grant.granular == []


@dtr_backend_services
def test_grant_normalises_the_type_and_drops_the_repeats_that_makes() -> None:
    requested = "system/questionnaire.rs system/Questionnaire.rs system/valueset.rs user/x.rs"
    grant = grant_scopes(requested, ["system/*.rs"])
    assert grant.granted == ["system/Questionnaire.rs", "system/ValueSet.rs"]
    assert "only system/ scopes" in grant.refused["user/x.rs"]


def test_grant_reports_granular_scopes() -> None:
    requested = "system/Patient.rs system/Observation.rs?category=laboratory"
    grant = grant_scopes(requested, ["system/*.rs"])
    assert grant.granular == ["system/Observation.rs?category=laboratory"]
    assert "granular" in grant.refused["system/Observation.rs?category=laboratory"]


def test_a_principal_never_reads_a_granular_scope_as_unrestricted() -> None:
    principal = Principal("c", frozenset({"system/Patient.rs?name=x", "user/Coverage.rs"}))
    assert principal.grants == ()
    assert not principal.allows("Patient", "r")
    assert not principal.allows("Patient", "s")
    assert not principal.allows("Coverage", "s")
    lowercase = Principal("c", frozenset({"system/questionnaire.rs"}))
    assert lowercase.allows("Questionnaire", "s")
    assert not lowercase.allows("Questionnaire", "c")


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (["system/Patient.rs", "system/Observation.rs?category=laboratory"], "granular"),
        (["user/*.rs"], "only system/"),
        (["system/Foo.rs"], "Foo is not a FHIR R4 resource type"),
        (["launch"], "not a scope this server grants"),
        (["system/Claim.x"], "permissions"),
    ],
)
def test_registered_scopes_the_server_never_grants_are_refused(
    scopes: list[str], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        check_registered_scopes("ehr", scopes)


def test_registered_scopes_that_can_be_granted_pass() -> None:
    check_registered_scopes("ehr", ["system/*.rs", "system/claim.c", "system/Patient.*"])
    check_registered_scopes("reviewer", [REVIEWER_SCOPE, "system/ClaimResponse.rus"])


def test_the_resource_types_are_those_of_fhir_r4_core() -> None:
    with tarfile.open(FHIR_PACKAGES / "hl7.fhir.r4.core.tgz") as package:
        concrete = set()
        for member in package.getmembers():
            name = member.name
            if not (name.startswith("package/StructureDefinition-") and name.endswith(".json")):
                continue
            extracted = package.extractfile(member)
            assert extracted is not None
            definition = orjson.loads(extracted.read())
            if (
                definition.get("kind") == "resource"
                and definition.get("derivation") == "specialization"
                and not definition.get("abstract")
            ):
                concrete.add(definition["type"])
    assert concrete == R4_RESOURCE_TYPES
    assert all(fhir_resource_type(name.lower()) == name for name in concrete)
    assert all(fhir_resource_type(name.upper()) == name for name in concrete)
    assert fhir_resource_type("RiskAßessment") is None


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


# --- scope spellings and granular scopes at the token endpoint and on /fhir ------------------


def _token_response(server: LiveServer, client: Any, scope: str) -> Any:
    return request_token(server, client.assertion(token_url(server)), scope)


@dtr_backend_services
def test_the_dtr_scopes_as_the_ig_spells_them_are_granted_and_work(
    auth_server: LiveServer, clients: Clients
) -> None:
    response = _token_response(auth_server, clients.dtr, " ".join(DTR_IG_SCOPES))
    assert response.status_code == 200, response.text
    granted = "system/Questionnaire.rs system/ValueSet.rs system/Library.rs"
    assert response.json()["scope"] == granted
    with auth_server.client(response.json()["access_token"]) as http:
        for resource_type in ("Questionnaire", "ValueSet", "Library"):
            found = http.get(f"/fhir/{resource_type}")
            assert found.status_code == 200, found.text
            assert found.json()["resourceType"] == "Bundle"
        _forbidden(http.get("/fhir/QuestionnaireResponse"), "QuestionnaireResponse.s")
        questionnaire = {"resourceType": "Questionnaire", "status": "draft"}
        _forbidden(
            http.post("/fhir/Questionnaire", json=questionnaire, headers=FHIR_JSON),
            "Questionnaire.c",
        )


@dtr_backend_services
def test_a_type_in_another_case_is_granted_under_a_fhir_spelt_registration(
    auth_server: LiveServer, clients: Clients
) -> None:
    response = _token_response(auth_server, clients.legacy, "system/questionnaire.read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Questionnaire.read"
    writer = _token_response(auth_server, clients.writer, "system/patient.cruds")
    assert writer.status_code == 200, writer.text
    assert writer.json()["scope"] == "system/Patient.cruds"
    with auth_server.client(writer.json()["access_token"]) as http:
        created = http.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON)
        assert created.status_code == 201, created.text


@dtr_backend_services
def test_a_lowercase_write_scope_lets_the_client_past_the_guard(
    auth_server: LiveServer, clients: Clients
) -> None:
    response = _token_response(auth_server, clients.dtr, "system/claim.c")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Claim.c"
    not_a_claim = {"resourceType": "Claim", "status": "active"}
    with auth_server.client(response.json()["access_token"]) as http:
        checked = http.post("/fhir/Claim", json=not_a_claim, headers=FHIR_JSON)
    assert checked.status_code == 400, checked.text  # past the guard: the body is checked
    assert checked.json()["issue"][0]["code"] != "forbidden"
    reader = access_token(auth_server, clients.reader, "system/Patient.rs")
    with auth_server.client(reader) as http:
        _forbidden(http.post("/fhir/Claim", json=not_a_claim, headers=FHIR_JSON), "Claim.c")


@dtr_backend_services
def test_user_and_patient_scopes_are_not_granted_to_a_backend_service(
    auth_server: LiveServer, clients: Clients
) -> None:
    response = _token_response(
        auth_server, clients.dtr, "user/questionnaire.read patient/Questionnaire.rs"
    )
    description = oauth_error(response, 400, "invalid_scope")
    assert "user/questionnaire.read (only system/ scopes are granted" in description
    assert "patient/Questionnaire.rs (only system/ scopes are granted" in description
    mixed = _token_response(auth_server, clients.dtr, "user/questionnaire.read system/library.rs")
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["scope"] == "system/Library.rs"


def test_a_granular_scope_is_refused_with_invalid_scope(
    auth_server: LiveServer, clients: Clients
) -> None:
    granular = "system/Questionnaire.rs?status=active"
    for requested in (granular, f"system/Patient.rs {granular}"):
        response = _token_response(auth_server, clients.legacy, requested)
        description = oauth_error(response, 400, "invalid_scope")
        assert "granular" in description and granular in description


def test_a_token_carrying_a_granular_scope_allows_nothing_through_it(
    auth_server: LiveServer,
) -> None:
    """Only this server mints tokens; should one ever carry a `?query` scope, that scope must
    not act as the unrestricted one (it is not enforced, so it grants nothing)."""
    now = int(time.time())
    claims = {
        "iss": auth_server.base_url,
        "sub": "reader",
        "aud": auth_server.fhir,
        "scope": "system/Patient.rs?name=Ada system/Coverage.rs",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    secret = auth_server.settings.token_secret
    assert secret
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "at+jwt"})
    with auth_server.client(token) as http:
        assert http.get("/fhir/Coverage").status_code == 200
        _forbidden(http.get("/fhir/Patient"), "Patient.s")
        _forbidden(http.get("/fhir/Patient/p1"), "Patient.r")


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("system/Observation.rs?category=laboratory", "granular scopes"),
        ("user/Questionnaire.rs", "only system/ scopes"),
    ],
)
def test_a_registration_the_server_cannot_honour_refuses_to_start(
    make_settings: SettingsFactory, tmp_path: Path, clients: Clients, scope: str, message: str
) -> None:
    registration = [{"client_id": "ehr", "scopes": [scope], "jwks": clients.reader.jwks()}]
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/registration.db",
        demo=False,
        auth_enabled=True,
        clients=orjson.dumps(registration).decode(),
    )
    with pytest.raises(RuntimeError, match=rf"clients\[ehr\]: scope {re.escape(scope)}: {message}"):
        create_app(settings)
