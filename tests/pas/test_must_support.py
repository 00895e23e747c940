"""PAS-M3/M4: over the responses of an Inferno-like run (approval, denial and pended workflows
and the must-support bundles), every must-support element of the response profiles appears at
least once, as the kit's generated metadata lists them (PAS conf-6)."""

from __future__ import annotations

from typing import Any

import pytest

from app.pas.variants import UNKNOWN_MEMBER as UNKNOWN
from app.pas.variants import variant, with_member
from tests.pas.conftest import PasServer, kit, kit_bundle
from tests.pas.must_support import missing_must_supports

# Inferno pools every response of the run by resource type; "insurer" and "requestor" are both
# checked against all Organizations.
SUBMIT_PROFILES = {
    "pas_response_bundle": "Bundle",
    "claimresponse": "ClaimResponse",
    "insurer": "Organization",
    "requestor": "Organization",
    "beneficiary": "Patient",
    "practitioner": "Practitioner",
    "practitioner_role": "PractitionerRole",
    "communication_request": "CommunicationRequest",
    "task": "Task",
}
INQUIRE_PROFILES = {
    "pas_inquiry_response_bundle": "Bundle",
    "claiminquiryresponse": "ClaimResponse",
    "insurer": "Organization",
    "requestor": "Organization",
    "beneficiary": "Patient",
}


def _pooled(bundles: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    if resource_type == "Bundle":
        return bundles
    return [
        e["resource"]
        for b in bundles
        for e in b.get("entry", [])
        if e["resource"]["resourceType"] == resource_type
    ]


def _run(pas: PasServer) -> list[dict[str, Any]]:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    requests = [
        variant("approve-gold-card", approval),
        variant("deny-unknown-member", approval),
        variant("pend", kit("2.0.1", "pended_pa_submit_request_payload")),
        *kit("2.0.1", "must_support_pa_submit_request_payload"),
    ]
    responses = []
    for request in requests:
        response = pas.submit(request)
        assert response.status_code == 200, response.text
        responses.append(response.json())
    return responses


@pytest.mark.requirement("PAS", "conf-6")
def test_submit_responses_show_every_must_support_element(pas: PasServer) -> None:
    responses = _run(pas)
    missing = {
        profile: missing_must_supports("2.0.1", profile, _pooled(responses, resource_type))
        for profile, resource_type in SUBMIT_PROFILES.items()
    }
    assert {p: m for p, m in missing.items() if m} == {}


def test_inquire_responses_show_every_must_support_element(pas: PasServer) -> None:
    """With the kit's inquiries and, for `error`, one about a member the payer does not know
    (OUTCOMES.md: the must-support inquiry with the unknown-member edit)."""
    _run(pas)
    answers = []
    for bundle in [
        kit_bundle("2.0.1", "pended_pa_inquire_request_payload"),
        *kit("2.0.1", "must_support_pa_inquire_request_payload"),
        with_member(kit_bundle("2.0.1", "must_support_pa_inquire_request_payload"), UNKNOWN),
    ]:
        response = pas.inquire(bundle)
        assert response.status_code == 200
        answers.append(response.json())
    missing = {
        profile: missing_must_supports("2.0.1", profile, _pooled(answers, resource_type))
        for profile, resource_type in INQUIRE_PROFILES.items()
    }
    assert {p: m for p, m in missing.items() if m} == {}
