"""The reviewer role of the `/um` API for registered clients, with authentication on.

A client is a reviewer when its token carries `system/ClaimResponse.u` (or broader) and either
the scope `greenlight/um.reviewer` (granted only to clients registered with it in
`GREENLIGHT_CLIENTS`) or a client id listed in `GREENLIGHT_UM_REVIEWERS`. Anyone else is refused
403 on `POST /um/cases/{id}/decision`, and the refusal decides nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.auth.scopes import REVIEWER_SCOPE
from app.pas.variants import variant
from tests.auth.smart_client import (
    ClientKey,
    access_token,
    oauth_error,
    request_token,
    token_url,
)
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.pas.conftest import (
    PasServer,
    client_keys,
    kit,
    start_secured_pas_server,
)

CLIENTS = ("workbench", "listed", "ehr")


@pytest.fixture(scope="module")
def keys() -> dict[str, ClientKey]:
    return client_keys(*CLIENTS)


@pytest.fixture(scope="module", params=BACKENDS)
def secured(
    request: pytest.FixtureRequest,
    keys: dict[str, ClientKey],
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[PasServer]:
    scopes = {
        # a reviewer by its registration: the workbench of a utilization review team
        "workbench": [REVIEWER_SCOPE, "system/ClaimResponse.rus", "system/Claim.rs"],
        # a reviewer by GREENLIGHT_UM_REVIEWERS, registered without the scope
        "listed": ["system/ClaimResponse.rus"],
        # a submitting EHR that may also update ClaimResponses, but is no reviewer
        "ehr": ["system/Claim.c", "system/ClaimResponse.cruds"],
    }
    yield from start_secured_pas_server(
        new_database_url, make_settings, keys, scopes, request.param, um_reviewers="listed"
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _pended_case(secured: PasServer, keys: dict[str, ClientKey]) -> dict[str, Any]:
    """Submit a new request that pends (as the EHR) and return its review case."""
    bundle = variant("pend", kit("2.0.1", "approval_pa_submit_request_payload"))
    bundle["identifier"]["value"] = uuid.uuid4().hex  # a new request, not a resubmission
    ehr = access_token(secured.server, keys["ehr"], "system/Claim.c")
    reviewer = access_token(
        secured.server, keys["workbench"], f"{REVIEWER_SCOPE} system/ClaimResponse.rus"
    )
    with secured.client() as client:
        submitted = client.post("/fhir/Claim/$submit", json=bundle, headers=_bearer(ehr))
        assert submitted.status_code == 200, submitted.text
        reference = submitted.json()["entry"][0]["resource"]["request"]["reference"]
        claim = "Claim/" + reference.rsplit("/", 1)[1]
        found = client.get("/um/cases", params={"claim": claim}, headers=_bearer(reviewer))
    assert found.status_code == 200, found.text
    (case,) = found.json()["cases"]
    assert case["status"] == "pended"
    return dict(case)


def _case_status(secured: PasServer, keys: dict[str, ClientKey], case_id: str) -> str:
    token = access_token(
        secured.server, keys["workbench"], f"{REVIEWER_SCOPE} system/ClaimResponse.rus"
    )
    with secured.client() as client:
        shown = client.get(f"/um/cases/{case_id}", headers=_bearer(token))
    assert shown.status_code == 200, shown.text
    status: str = shown.json()["status"]
    return status


def test_the_reviewer_scope_is_granted_only_to_a_client_registered_with_it(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    server = secured.server
    granted = request_token(
        server,
        keys["workbench"].assertion(token_url(server)),
        f"system/ClaimResponse.u {REVIEWER_SCOPE}",
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == f"system/ClaimResponse.u {REVIEWER_SCOPE}"
    alone = request_token(server, keys["ehr"].assertion(token_url(server)), REVIEWER_SCOPE)
    description = oauth_error(alone, 400, "invalid_scope")
    assert f"{REVIEWER_SCOPE} (not registered for this client)" in description
    dropped = request_token(
        server,
        keys["ehr"].assertion(token_url(server)),
        f"system/ClaimResponse.u {REVIEWER_SCOPE}",
    )
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["scope"] == "system/ClaimResponse.u"


def test_a_non_reviewer_is_refused_and_a_registered_reviewer_decides(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    case = _pended_case(secured, keys)
    decision = f"/um/cases/{case['id']}/decision"
    body = {"decision": "approve", "note": "criteria met on review"}
    ehr = access_token(secured.server, keys["ehr"], "system/ClaimResponse.u")
    without_role = access_token(secured.server, keys["workbench"], "system/ClaimResponse.u")
    without_write = access_token(
        secured.server, keys["workbench"], f"{REVIEWER_SCOPE} system/ClaimResponse.rs"
    )
    with secured.client() as client:
        assert client.post(decision, json=body).status_code == 401
        for token in (ehr, without_role, without_write):
            refused = client.post(decision, json=body, headers=_bearer(token))
            assert refused.status_code == 403, refused.text
            issue = refused.json()["issue"][0]
            assert issue["code"] == "forbidden"
            assert REVIEWER_SCOPE in issue["diagnostics"]
            assert refused.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert _case_status(secured, keys, case["id"]) == "pended"  # the refusals decided nothing
    reviewer = access_token(
        secured.server, keys["workbench"], f"{REVIEWER_SCOPE} system/ClaimResponse.u"
    )
    with secured.client() as client:
        decided = client.post(decision, json=body, headers=_bearer(reviewer))
    assert decided.status_code == 200, decided.text
    assert decided.json()["case"]["status"] == "approved"
    assert decided.json()["case"]["decided_by"] == "workbench"


def test_a_client_listed_in_um_reviewers_still_decides_without_the_scope(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    case = _pended_case(secured, keys)
    listed = access_token(secured.server, keys["listed"], "system/ClaimResponse.u")
    with secured.client() as client:
        decided = client.post(
            f"/um/cases/{case['id']}/decision",
            json={"decision": "deny", "reason": {"code": "0U", "display": "criteria not met"}},
            headers=_bearer(listed),
        )
    assert decided.status_code == 200, decided.text
    assert decided.json()["case"]["status"] == "denied"
    assert decided.json()["case"]["decided_by"] == "listed"
