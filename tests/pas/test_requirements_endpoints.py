"""PAS endpoints, coverages, who may inquire, and how long answers stay (real HTTP).

One endpoint per PAS version (conf-1) serving every coverage (conf-3, spec-6; with no endpoint
discovery, conf-2 and spec-5 hold as well), the `not-applicable` service code (spec-43), inquiry
by systems other than the submitter (spec-52), the whole request Bundle available to the payer's
reviewers (spec-26), and pended requests still answered long after the service (spec-73).
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.pas.codes import BASE_PATHS
from app.pas.variants import CPT, SLEEVE_GASTRECTOMY, variant, with_member, with_service
from app.store.db import create_database
from app.store.tables import pas_requests, review_cases
from tests.auth.smart_client import ClientKey, access_token
from tests.pas.conftest import (
    IG,
    INQUIRY_RESPONSE_BUNDLE,
    RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    review_actions,
    secured_pas_fixtures,
)
from tests.support.conformance import assert_conforms

VERSIONS = ("2.0.1", "2.2.1")
NOT_APPLICABLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "not-applicable",
        }
    ]
}
LUMBAR_MRI = {"coding": [{"system": CPT, "code": "72148"}]}
SILVER_HMO_MEMBER = "GLH50873304"  # Robert Chen
GOLD_PPO_MEMBER = "10A3D58WH456"  # William Oster


def _submitted(pas: PasServer, bundle: dict[str, Any], version: str) -> dict[str, Any]:
    response = pas.submit(bundle, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    return body


def _inquired(pas: PasServer, inquiry: dict[str, Any], version: str) -> dict[str, dict[str, Any]]:
    """The ClaimResponses an inquiry finds, by id (each answer checked against its profile)."""
    response = pas.inquire(inquiry, version)
    assert response.status_code == 200, response.text
    answer = response.json()
    bundles = (
        [answer] if version == "2.0.1" else [p["resource"] for p in answer.get("parameter", [])]
    )
    found = {}
    for bundle in bundles:
        assert_conforms(bundle, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])
        for entry in bundle.get("entry", []):
            if entry["resource"]["resourceType"] == "ClaimResponse":
                found[entry["resource"]["id"]] = entry["resource"]
    return found


def _inquiry(version: str) -> dict[str, Any]:
    """The kit's inquiry without its request numbers (so it asks about every request of the
    member from that provider)."""
    inquiry = kit_bundle(version, "pended_pa_inquire_request_payload")
    for item in inquiry["entry"][0]["resource"].get("item", []):
        item["extension"] = [e for e in item.get("extension", []) if "Number" not in e["url"]]
    return inquiry


# --- conf-1: one endpoint per PAS version ---------------------------------------------------------


@pytest.mark.requirement("PAS", "conf-1")
def test_each_pas_version_has_its_own_endpoint(pas: PasServer) -> None:
    """PAS 2.0.1 and 2.2.1 are not compatible (2.2.1 `$inquire` answers Parameters, a pended 2.2.1
    ClaimResponse has no `queued` outcome), so each is served at its own base, answering in its
    own version, and requests stay with the base they were sent to."""
    answers = {}
    for version in VERSIONS:
        body = _submitted(
            pas, variant("pend", kit(version, "approval_pa_submit_request_payload")), version
        )
        answers[version] = body["entry"][0]["resource"]
        assert body["entry"][0]["fullUrl"].startswith(
            pas.server.base_url
            + {"2.0.1": "/fhir/ClaimResponse", "2.2.1": "/fhir/pas-2.2.1/ClaimResponse"}[version]
        )
    assert answers["2.0.1"]["outcome"] == "queued"
    assert answers["2.2.1"]["outcome"] == "complete"
    with pas.client() as client:
        old = client.post(pas.url("2.0.1", "Claim/$inquire"), json=_inquiry("2.0.1"))
        new = client.post(pas.url("2.2.1", "Claim/$inquire"), json=_inquiry("2.2.1"))
    assert old.json()["resourceType"] == "Bundle"
    assert new.json()["resourceType"] == "Parameters"
    found_old = _inquired(pas, _inquiry("2.0.1"), "2.0.1")
    found_new = _inquired(pas, _inquiry("2.2.1"), "2.2.1")
    assert answers["2.0.1"]["id"] in found_old and answers["2.0.1"]["id"] not in found_new
    assert answers["2.2.1"]["id"] in found_new and answers["2.2.1"]["id"] not in found_old


# --- conf-2, conf-3, spec-5, spec-6: one endpoint for every coverage ------------------------------


def _submit_paths(pas: PasServer) -> list[str]:
    with pas.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    return sorted(path for path in paths if path.endswith("/Claim/$submit"))


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID")  # FastAPI's OpenAPI, not PAS
@pytest.mark.requirement("PAS", "conf-2")
@pytest.mark.requirement("PAS", "conf-3")
@pytest.mark.requirement("PAS", "spec-5")
@pytest.mark.requirement("PAS", "spec-6")
@pytest.mark.parametrize("version", VERSIONS)
def test_one_endpoint_per_version_answers_every_coverage(pas: PasServer, version: str) -> None:
    """Greenlight does not do endpoint discovery: each PAS version has exactly one `$submit`
    endpoint (so at most one per version and coverage too), and it answers members of every
    plan the payer covers by that plan's own rules: sleeve gastrectomy is excluded on the
    Silver HMO (A3) and needs review on the Gold PPO (A4)."""
    assert _submit_paths(pas) == ["/fhir/Claim/$submit", "/fhir/pas-2.2.1/Claim/$submit"]
    base = with_service(kit(version, "approval_pa_submit_request_payload"), SLEEVE_GASTRECTOMY)
    expected = {
        "MEM-1234567": "A3",  # the kit's member, Silver HMO
        SILVER_HMO_MEMBER: "A3",
        GOLD_PPO_MEMBER: "A4",
    }
    for member, action in expected.items():
        body = _submitted(pas, with_member(base, member), version)
        assert review_actions(body)[0] == action, member
    with pas.client() as client:
        plans = {
            member: client.get(f"/fhir/Coverage?identifier={member}").json()["entry"][0][
                "resource"
            ]["type"]["coding"][0]["code"]
            for member in (SILVER_HMO_MEMBER, GOLD_PPO_MEMBER)
        }
    assert plans == {SILVER_HMO_MEMBER: "HMO", GOLD_PPO_MEMBER: "PPO"}


# --- spec-43: not-applicable is no service code ---------------------------------------------------


@pytest.mark.requirement("PAS", "spec-43")
@pytest.mark.parametrize("version", VERSIONS)
def test_not_applicable_means_no_service_code(pas: PasServer, version: str) -> None:
    """An inquiry whose item asks for `not-applicable` asks about no particular service: it
    finds the member's requests for every service. A requested item coded `not-applicable` is
    decided from the order it points at, as if it named that order's service."""
    approval = kit(version, "approval_pa_submit_request_payload")
    mri = _submitted(pas, variant("pend", approval), version)["entry"][0]["resource"]
    surgery = _submitted(pas, with_service(approval, SLEEVE_GASTRECTOMY), version)["entry"][0][
        "resource"
    ]
    inquiry = _inquiry(version)
    for item in inquiry["entry"][0]["resource"]["item"]:
        item["productOrService"] = copy.deepcopy(NOT_APPLICABLE)
    found = _inquired(pas, inquiry, version)
    assert {mri["id"], surgery["id"]} <= set(found)
    # $submit: item coded not-applicable, its ServiceRequest the lumbar MRI
    request = copy.deepcopy(approval)
    request["identifier"]["value"] += "-na"
    claim = request["entry"][0]["resource"]
    for item in claim["item"]:
        item["productOrService"] = copy.deepcopy(NOT_APPLICABLE)
    for entry in request["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"]["code"] = copy.deepcopy(LUMBAR_MRI)
    by_order = _submitted(pas, request, version)
    assert set(review_actions(by_order)) == {"A4"}
    case = pas.case_of(by_order)
    with pas.client() as client:
        trace = client.get(f"/um/cases/{case['id']}").json()["trace"]
    assert {i["topic"] for i in trace["items"]} == {"lumbar-mri"}


# --- spec-26: the whole Bundle reaches the payer --------------------------------------------------


@pytest.mark.requirement("PAS", "spec-26")
@pytest.mark.parametrize("version", VERSIONS)
def test_the_payers_reviewers_get_the_entire_request_bundle(pas: PasServer, version: str) -> None:
    """Greenlight is the intermediary and the payer in one: the review case of a request holds
    the FHIR Bundle exactly as submitted, every entry and element, supporting information
    included, and the Claim is stored as a FHIR resource."""
    request = variant("pend", kit(version, "approval_pa_submit_request_payload"))
    body = _submitted(pas, request, version)
    case = pas.case_of(body)
    with pas.client() as client:
        shown = client.get(f"/um/cases/{case['id']}").json()
        claim_id = body["entry"][0]["resource"]["request"]["reference"].rsplit("/", 1)[1]
        claim = client.get(f"/fhir/Claim/{claim_id}").json()
    assert shown["request"] == request
    assert {k: v for k, v in claim.items() if k not in ("id", "meta")} == {
        k: v for k, v in request["entry"][0]["resource"].items() if k not in ("id", "meta")
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_the_urls_a_response_names_resolve_at_its_own_base(pas: PasServer, version: str) -> None:
    """The response names its resources by URLs under the base it was sent to (`/fhir/pas-2.2.1`
    for 2.2.1): each `fullUrl` Greenlight minted, and `ClaimResponse.request`, reads the same
    resource there (read and vread)."""
    body = _submitted(
        pas, variant("pend", kit(version, "approval_pa_submit_request_payload")), version
    )
    claim_response = body["entry"][0]["resource"]
    minted = [
        e
        for e in body["entry"]
        if e["resource"]["resourceType"] in ("ClaimResponse", "Task", "CommunicationRequest")
    ]
    assert {e["resource"]["resourceType"] for e in minted} >= {"ClaimResponse", "Task"}
    base = pas.server.base_url + BASE_PATHS[version]
    with pas.client() as client:
        for entry in minted:
            assert entry["fullUrl"].startswith(base + "/")
            read = client.get(entry["fullUrl"])
            assert read.status_code == 200, (entry["fullUrl"], read.text)
            assert read.json()["id"] == entry["resource"]["id"]
            version_id = read.json()["meta"]["versionId"]
            assert client.get(f"{entry['fullUrl']}/_history/{version_id}").status_code == 200
        request_url = claim_response["request"]["reference"]
        claim = client.get(request_url if "://" in request_url else f"{base}/{request_url}")
        assert claim.status_code == 200, claim.text
        assert claim.json()["resourceType"] == "Claim"


# --- spec-73: pended requests stay answerable -----------------------------------------------------


def _backdate(database_url: str, claim_response_id: str, days: int) -> None:
    """Move a stored request and its case `days` into the past, as if received then."""
    shift = days * 86_400 * 1_000_000

    async def run() -> None:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.writer.begin() as conn:
                await conn.execute(
                    update(pas_requests)
                    .where(pas_requests.c.claim_response_id == claim_response_id)
                    .values(received_us=pas_requests.c.received_us - shift)
                )
                await conn.execute(
                    update(review_cases)
                    .where(review_cases.c.claim_response_id == claim_response_id)
                    .values(
                        received_us=review_cases.c.received_us - shift,
                        due_us=review_cases.c.due_us - shift,
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(run())


@pytest.mark.requirement("PAS", "spec-73")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_pended_request_is_still_answered_well_past_six_months_after_its_service(
    pas: PasServer, version: str
) -> None:
    """A request pended 400 days ago for a service that ended 7 months ago: `$inquire` still
    answers it, pended, and again after the reviewer decides it."""
    request = variant("pend", kit(version, "approval_pa_submit_request_payload"))
    ended = date.today() - timedelta(days=213)
    for item in request["entry"][0]["resource"]["item"]:
        item.pop("servicedDate", None)
        item["servicedPeriod"] = {
            "start": (ended - timedelta(days=30)).isoformat(),
            "end": ended.isoformat(),
        }
    pended = _submitted(pas, request, version)["entry"][0]["resource"]
    assert review_actions({"entry": [{"resource": pended}]})[0] == "A4"
    _backdate(pas.database_url, pended["id"], days=400)
    case = pas.case_of({"entry": [{"resource": pended}]})
    assert datetime.fromisoformat(case["received_at"].replace("Z", "+00:00")) < datetime.now(
        UTC
    ) - timedelta(days=399)
    found = _inquired(pas, _inquiry(version), version)
    assert review_actions({"entry": [{"resource": found[pended["id"]]}]})[0] == "A4"
    decided = pas.decide(case["id"], {"decision": "approve", "note": "late review"})
    assert decided.status_code == 200, decided.text
    found = _inquired(pas, _inquiry(version), version)
    assert review_actions({"entry": [{"resource": found[pended["id"]]}]})[0] == "A1"


# --- spec-52: systems other than the submitter ----------------------------------------------------


# Auth on: the submitting EHR, and another system (say the rendering provider's) that may read
# ClaimResponses but submits nothing.
keys, secured = secured_pas_fixtures(
    {
        "ehr": ["system/Claim.c", "system/ClaimResponse.r"],
        "rendering": ["system/ClaimResponse.r"],
    }
)


@pytest.mark.requirement("PAS", "spec-52")
@pytest.mark.parametrize("version", VERSIONS)
def test_systems_other_than_the_submitter_reach_the_response(
    secured: PasServer, keys: dict[str, ClientKey], version: str
) -> None:
    ehr = access_token(secured.server, keys["ehr"], "system/Claim.c system/ClaimResponse.r")
    rendering = access_token(secured.server, keys["rendering"], "system/ClaimResponse.r")
    request = variant("pend", kit(version, "approval_pa_submit_request_payload"))
    with secured.client() as client:
        submitted = client.post(
            secured.url(version, "Claim/$submit"),
            json=request,
            headers={"Authorization": f"Bearer {ehr}"},
        )
        assert submitted.status_code == 200, submitted.text
        claim_response = submitted.json()["entry"][0]["resource"]
        refused = client.post(
            secured.url(version, "Claim/$submit"),
            json=request,
            headers={"Authorization": f"Bearer {rendering}"},
        )
        assert refused.status_code == 403  # it may not submit, only look
        answer = client.post(
            secured.url(version, "Claim/$inquire"),
            json=_inquiry(version),
            headers={"Authorization": f"Bearer {rendering}"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    bundles = [body] if version == "2.0.1" else [p["resource"] for p in body["parameter"]]
    found = {
        e["resource"]["id"]: e["resource"]
        for b in bundles
        for e in b.get("entry", [])
        if e["resource"]["resourceType"] == "ClaimResponse"
    }
    assert claim_response["id"] in found
    assert review_actions({"entry": [{"resource": found[claim_response["id"]]}]}) == review_actions(
        {"entry": [{"resource": claim_response}]}
    )
