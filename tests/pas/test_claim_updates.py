"""PAS 2.2 Claim updates: the kit's four-step sequence, cancellation, and what is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.pas.variants import variant
from tests.pas.conftest import IG, RESPONSE_BUNDLE, PasServer, kit, review_actions, table_counts
from tests.support.conformance import assert_conforms

STEPS = (
    "claim_update_initial_submit_payload",
    "claim_update_add_item_submit_payload",
    "claim_update_modify_cancel_submit_payload",
    "claim_update_cancel_all_submit_payload",
)


def _submit(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    response = pas.submit(bundle, "2.2.1")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG["2.2.1"])
    return body


def _sequences(bundle: dict[str, Any], index: int) -> list[int]:
    return [int(i["sequence"]) for i in bundle["entry"][index]["resource"].get("item", [])]


@pytest.mark.requirement("PAS", "spec-34")
@pytest.mark.requirement("PAS", "spec-46")
@pytest.mark.requirement("PAS", "spec-47")
@pytest.mark.requirement("PAS", "spec-48")
def test_the_kit_update_sequence_echoes_every_item_and_supersedes(pas: PasServer) -> None:
    answers = []
    for step in STEPS:
        request = kit("2.2.1", step)
        body = _submit(pas, request)
        claim_response = body["entry"][0]["resource"]
        # PAS-U2: item sequences echoed, all of them
        assert [i["itemSequence"] for i in claim_response.get("item", [])] == _sequences(request, 0)
        answers.append(body)
    assert review_actions(answers[0]) == ["NA"]
    assert review_actions(answers[1]) == ["NA", "NA"]
    assert review_actions(answers[2]) == ["NA", "C"]  # item 2 cancelled (infoCancelled)
    assert review_actions(answers[3]) == ["C", "C"]  # the whole request cancelled
    first_case = pas.case_of(answers[0])
    last_case = pas.case_of(answers[3])
    assert first_case["status"] == "not-required"
    assert last_case["status"] == "cancelled"
    # $inquire answers the request as replaced by its updates (the cancel-all), not the initial
    inquiry = kit("2.2.1", "pended_pa_inquire_request_payload")[0]
    inquired = pas.inquire(inquiry, "2.2.1")
    assert inquired.status_code == 200
    found = {p["resource"]["entry"][0]["resource"]["id"] for p in inquired.json()["parameter"]}
    assert answers[3]["entry"][0]["resource"]["id"] in found
    assert not found & {a["entry"][0]["resource"]["id"] for a in answers[:3]}
    # the same update again: the stored answer, nothing new
    before = table_counts(pas.database_url)
    again = _submit(pas, kit("2.2.1", STEPS[1]))
    assert again["entry"][0]["resource"]["id"] == answers[1]["entry"][0]["resource"]["id"]
    assert table_counts(pas.database_url) == before


def test_a_cancelled_request_takes_no_update(pas: PasServer) -> None:
    for step in STEPS:
        _submit(pas, kit("2.2.1", step))
    cancelled = kit("2.2.1", STEPS[3])  # stored: the cancel-all request
    update = copy.deepcopy(cancelled)
    claim = update["entry"][0]["resource"]
    claim["id"] = "ReferralAuthorizationUpdate4"
    claim["created"] = "2026-11-24T09:00:00+00:00"
    claim["related"][0]["claim"]["reference"] = cancelled["entry"][0]["fullUrl"]
    update["entry"][0]["fullUrl"] = cancelled["entry"][0]["fullUrl"].replace("Update3", "Update4")
    update["entry"][1] = cancelled["entry"][0]  # the prior: the cancel-all Claim as sent
    response = pas.submit(update, "2.2.1")
    assert response.status_code == 422, response.text
    assert "cancelled" in response.json()["issue"][0]["diagnostics"]


def test_no_update_after_a_denial(pas: PasServer) -> None:
    initial = variant("deny-excluded", kit("2.2.1", STEPS[0]))
    denied = _submit(pas, initial)
    assert review_actions(denied) == ["A3"]
    update = kit("2.2.1", STEPS[1])
    update["entry"][1]["resource"] = initial["entry"][0]["resource"]  # the denied Claim as prior
    response = pas.submit(update, "2.2.1")
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule" and "denied" in issue["diagnostics"]
