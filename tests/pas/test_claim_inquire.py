"""Claim/$inquire: matching by member and provider, narrowing by identifiers, current answers."""

from __future__ import annotations

from typing import Any

import pytest

from app.pas.variants import UNKNOWN_MEMBER as UNKNOWN
from app.pas.variants import variant, with_member
from tests.pas.conftest import (
    IG,
    INQUIRY_RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    kit_file,
    review_actions,
)
from tests.support.conformance import assert_conforms

CLAIM_INQUIRY_RESPONSE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claiminquiryresponse"
)


def _claim_responses(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["resource"]["id"]: e["resource"]
        for e in answer.get("entry", [])
        if e["resource"]["resourceType"] == "ClaimResponse"
    }


def _inquire(pas: PasServer, bundle: dict[str, Any], version: str = "2.0.1") -> dict[str, Any]:
    response = pas.inquire(bundle, version)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if version == "2.0.1":
        assert_conforms(answer, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])
    return answer


def _submitted(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    response = pas.submit(bundle)
    assert response.status_code == 200, response.text
    claim_response: dict[str, Any] = response.json()["entry"][0]["resource"]
    return claim_response


@pytest.mark.requirement("PAS", "spec-44")
@pytest.mark.requirement("PAS", "spec-53")
def test_an_inquiry_finds_the_members_requests_from_that_provider(pas: PasServer) -> None:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    mine = _submitted(pas, variant("approve-gold-card", approval))
    someone_else = _submitted(pas, with_member(variant("pend", approval), "GLH50873304"))
    answer = _inquire(pas, kit_bundle("2.0.1", "pended_pa_inquire_request_payload"))
    found = _claim_responses(answer)
    assert mine["id"] in found
    assert someone_else["id"] not in found  # another member: not visible
    for claim_response in found.values():
        assert_conforms(claim_response, CLAIM_INQUIRY_RESPONSE, ig=IG["2.0.1"])
        assert "/fhir/Claim/" in claim_response["request"]["reference"]  # the stored Claim
        assert "communicationRequest" not in claim_response
    with pas.client() as client:
        claim = client.get(found[mine["id"]]["request"]["reference"])
    assert claim.status_code == 200


@pytest.mark.requirement("PAS", "spec-53")
def test_another_provider_finds_nothing(pas: PasServer) -> None:
    inquiry = kit_bundle("2.0.1", "pended_pa_inquire_request_payload")
    for entry in inquiry["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in ("Organization", "Practitioner"):
            resource["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}]
    answer = _inquire(pas, inquiry)
    assert _claim_responses(answer) == {}
    assert answer["entry"][0]["resource"]["resourceType"] == "OperationOutcome"
    parameters = _inquire(pas, inquiry, "2.2.1")
    assert parameters == {"resourceType": "Parameters"}


def test_identifiers_narrow_the_answer(pas: PasServer) -> None:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    first = _submitted(pas, variant("approve-gold-card", approval))
    second = _submitted(pas, variant("deny-excluded", approval))
    inquiry = kit_bundle("2.0.1", "pended_pa_inquire_request_payload")
    reference = next(
        i["value"] for i in second["identifier"] if i["system"].endswith("pas-reference-number")
    )
    claim = inquiry["entry"][0]["resource"]
    claim["identifier"] = [{"system": "urn:example:trn", "value": reference}]
    for item in claim["item"]:
        item["extension"] = [e for e in item["extension"] if "Number" not in e["url"]]
    found = _claim_responses(_inquire(pas, inquiry))
    assert set(found) == {second["id"]}
    assert first["id"] not in found


@pytest.mark.requirement("PAS", "spec-35")
def test_an_empty_inquiry_gets_a_4xx_operation_outcome(pas: PasServer) -> None:
    """PAS-E2: the kit's nonconformant Bundle sent to $inquire."""
    response = pas.inquire(kit_file("server/error_tests/nonconformant_pas_bundle.json"))
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_the_kit_must_support_inquiries_are_answered(pas: PasServer) -> None:
    _submitted(
        pas, variant("approve-gold-card", kit("2.0.1", "approval_pa_submit_request_payload"))
    )
    for bundle in kit("2.0.1", "must_support_pa_inquire_request_payload"):
        answer = _inquire(pas, bundle)
        assert any(review_actions({"entry": [e]}) for e in answer["entry"][:1])


@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_an_inquiry_about_an_unknown_member_answers_aaa_75(pas: PasServer, version: str) -> None:
    inquiry = with_member(kit_bundle(version, "pended_pa_inquire_request_payload"), UNKNOWN)
    answer = _inquire(pas, inquiry, version)
    bundle = answer if version == "2.0.1" else answer["parameter"][0]["resource"]
    assert_conforms(bundle, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])
    claim_response = bundle["entry"][0]["resource"]
    assert claim_response["outcome"] == "error"
    assert claim_response["error"][0]["code"]["coding"][0]["code"] == "75"
