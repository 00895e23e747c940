"""Review cases: one per request, their deadlines, the reviewer API and its access rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.pas.variants import variant
from tests.auth.smart_client import ClientKey, access_token
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.pas.conftest import (
    PasServer,
    kit,
    secured_pas_fixtures,
    start_pas_server,
    subscription,
)

LEVEL_OF_SERVICE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-levelOfServiceCode"
)


@pytest.fixture(scope="module", params=BACKENDS)
def pas(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[PasServer]:
    yield from start_pas_server(request.param, new_database_url, make_settings)


def _submitted(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    response = pas.submit(bundle)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _standard(bundle: dict[str, Any]) -> dict[str, Any]:
    """The request as elective (X12 1338 E) rather than urgent."""
    claim = bundle["entry"][0]["resource"]
    for extension in claim["extension"]:
        if extension["url"] == LEVEL_OF_SERVICE:
            extension["valueCodeableConcept"]["coding"][0]["code"] = "E"
    return bundle


def test_expedited_cases_are_due_in_72_hours_and_standard_ones_in_7_days(
    pas: PasServer,
) -> None:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    urgent = pas.case_of(_submitted(pas, variant("pend", approval)))
    elective = pas.case_of(_submitted(pas, _standard(variant("pend", approval))))
    assert urgent["priority"] == "expedited"
    assert _instant(urgent["due_at"]) - _instant(urgent["received_at"]) == timedelta(hours=72)
    assert elective["priority"] == "standard"
    assert _instant(elective["due_at"]) - _instant(elective["received_at"]) == timedelta(days=7)


def test_cases_are_listed_by_status_and_shown_with_request_documentation_and_trace(
    pas: PasServer,
) -> None:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    pended = _submitted(pas, variant("pend-short-therapy", approval))
    certified = _submitted(pas, variant("approve-documented", approval))
    case = pas.case_of(pended)
    listed = pas.cases(status="pended")
    assert case["id"] in {c["id"] for c in listed["cases"]}
    assert all(c["status"] == "pended" for c in listed["cases"])
    dues = [c["due_at"] for c in listed["cases"]]
    assert dues == sorted(dues)  # earliest due first
    assert pas.case_of(certified)["status"] == "certified"
    with pas.client() as client:
        detail = client.get(f"/um/cases/{case['id']}").json()
    assert detail["claim"] == case["claim"]
    assert detail["request"]["entry"][0]["resource"]["resourceType"] == "Claim"
    kinds = [d["resource"]["resourceType"] for d in detail["documentation"] if "resource" in d]
    assert "QuestionnaireResponse" in kinds and "DocumentReference" in kinds
    (item,) = detail["trace"]["items"]
    assert item["topic"] == "lumbar-mri"
    assert item["rule"] == "pended"
    assert item["criteria"] == {"conservative-therapy-6-weeks": False, "red-flag": False}
    assert detail["claimResponse"]["id"] == pended["entry"][0]["resource"]["id"]


def test_unknown_cases_and_bad_filters_answer_4xx(pas: PasServer) -> None:
    with pas.client() as client:
        assert client.get("/um/cases/nope").status_code == 404
        assert client.get("/um/cases", params={"status": "open"}).status_code == 400
        assert (
            client.post("/um/cases/nope/decision", json={"decision": "approve"}).status_code == 404
        )


# --- the reviewer role, with authentication on ----------------------------------------------


keys, secured = secured_pas_fixtures(
    {
        "reviewer": ["system/ClaimResponse.cruds", "system/Claim.rs", "system/Subscription.rud"],
        "submitter": [
            "system/Claim.c",
            "system/ClaimResponse.cruds",
            "system/Subscription.cruds",
        ],
    },
    um_reviewers="reviewer",
    subscription_allow_http=True,
)


def test_only_a_reviewer_may_use_the_um_api(secured: PasServer, keys: dict[str, ClientKey]) -> None:
    submitter = access_token(
        secured.server, keys["submitter"], "system/Claim.c system/ClaimResponse.u"
    )
    reviewer = access_token(secured.server, keys["reviewer"], "system/ClaimResponse.u")
    with secured.client() as client:
        assert client.get("/um/cases").status_code == 401
        submitted = client.post(
            "/fhir/Claim/$submit",
            json=variant("pend", kit("2.0.1", "approval_pa_submit_request_payload")),
            headers={"Authorization": f"Bearer {submitter}"},
        )
        assert submitted.status_code == 200, submitted.text
        refused = client.get("/um/cases", headers={"Authorization": f"Bearer {submitter}"})
        assert refused.status_code == 403
        assert refused.json()["issue"][0]["code"] == "forbidden"
        allowed = client.get("/um/cases", headers={"Authorization": f"Bearer {reviewer}"})
        assert allowed.status_code == 200
        (case,) = allowed.json()["cases"]
        decided = client.post(
            f"/um/cases/{case['id']}/decision",
            json={"decision": "approve"},
            headers={"Authorization": f"Bearer {reviewer}"},
        )
        assert decided.status_code == 200
        assert decided.json()["case"]["decided_by"] == "reviewer"


@pytest.mark.requirement("PAS", "spec-59")
def test_only_the_client_that_subscribed_manages_its_subscription(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    owner = access_token(secured.server, keys["submitter"], "system/Subscription.cruds")
    other = access_token(secured.server, keys["reviewer"], "system/Subscription.rud")
    resource = subscription("2.0.1", "http://127.0.0.1:9/listener")
    with secured.client() as client:
        created = client.post(
            "/fhir/Subscription", json=resource, headers={"Authorization": f"Bearer {owner}"}
        )
        assert created.status_code == 201, created.text
        url = f"/fhir/Subscription/{created.json()['id']}"
        mine = client.get(f"{url}/$status", headers={"Authorization": f"Bearer {owner}"})
        assert mine.status_code == 200
        for method in ("GET", "DELETE"):
            path = f"{url}/$status" if method == "GET" else url
            refused = client.request(method, path, headers={"Authorization": f"Bearer {other}"})
            assert refused.status_code == 403, (method, refused.text)
