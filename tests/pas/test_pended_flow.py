"""The pended workflow end to end, as the Inferno PAS suites drive it.

Subscribe (a real listener on loopback) -> $submit a request that pends (A4) -> a reviewer decides
through /um -> the event notification arrives (id-only for PAS 2.0.1, the full PAS Response
Bundle for PAS 2.2.1) -> $inquire returns the decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.pas.variants import variant
from tests.pas.conftest import (
    IG,
    INQUIRY_RESPONSE_BUNDLE,
    RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    review_actions,
    subscription,
)
from tests.pas.listener import Listener, listen
from tests.support.conformance import assert_conforms

DENIAL_REASON = {"code": "0U", "display": "Medical necessity criteria not met"}


@pytest.fixture
def subscribed(pas: PasServer, request: pytest.FixtureRequest) -> Iterator[tuple[Listener, str]]:
    version: str = request.param
    with listen() as listener:
        response = pas.subscribe(subscription(version, listener.url), version)
        assert response.status_code == 201
        subscription_id = response.json()["id"]
        listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
        yield listener, subscription_id
        with pas.client() as client:
            client.delete(pas.url(version, f"Subscription/{subscription_id}"))


def _pend(pas: PasServer, version: str) -> dict[str, Any]:
    bundle = variant("pend", kit(version, "pended_pa_submit_request_payload"))
    response = pas.submit(bundle, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    assert review_actions(body)[0] == "A4"
    return body


def _event_checks(listener: Listener, subscription_id: str) -> Any:
    """PAS-N1: the event notification as Inferno checks it."""
    listener.wait_for(lambda seen: len(seen.of_kind("event-notification")) == 1)
    (event,) = listener.of_kind("event-notification")
    assert event.headers["Content-Type"].startswith("application/fhir+json")
    assert event.headers["Authorization"] == "Bearer notify-me"  # channel.header verbatim
    assert event.body["type"] == "history"
    assert event.parameter("status")["valueCode"] == "active"
    assert event.parameter("subscription")["valueReference"]["reference"].endswith(
        f"/{subscription_id}"
    )
    assert event.body["entry"][0]["request"]["url"].endswith(
        f"Subscription/{subscription_id}/$status"
    )
    assert all("request" in e and "response" in e for e in event.body["entry"])
    return event


@pytest.mark.requirement("PAS", "spec-51")
@pytest.mark.requirement("PAS", "spec-46")
@pytest.mark.parametrize("subscribed", ["2.0.1"], indirect=True)
def test_pended_then_approved_notifies_id_only_and_inquire_reflects_it(
    pas: PasServer, subscribed: tuple[Listener, str]
) -> None:
    listener, subscription_id = subscribed
    pended = _pend(pas, "2.0.1")
    case = pas.case_of(pended)
    assert case["status"] == "pended"
    decided = pas.decide(case["id"], {"decision": "approve", "note": "Criteria met on review"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["case"]["status"] == "approved"
    event = _event_checks(listener, subscription_id)
    # PAS-N2 (id-only): the focus names the ClaimResponse; the entry has a fullUrl, no resource
    (notification_event,) = [
        p for p in event.status_parameters["parameter"] if p["name"] == "notification-event"
    ]
    focus = next(p for p in notification_event["part"] if p["name"] == "focus")
    claim_response_id = pended["entry"][0]["resource"]["id"]
    assert focus["valueReference"]["reference"].endswith(f"/ClaimResponse/{claim_response_id}")
    assert event.body["entry"][1]["fullUrl"] == focus["valueReference"]["reference"]
    assert "resource" not in event.body["entry"][1]
    # the focus is readable: the new ClaimResponse version certifies the item
    with pas.client() as client:
        current = client.get(f"/fhir/ClaimResponse/{claim_response_id}").json()
    assert current["meta"]["versionId"] == "2"
    assert current["outcome"] == "complete" and current["preAuthRef"]
    # PAS-I1/I3: $inquire with the kit's pended inquiry returns the decision
    response = pas.inquire(kit_bundle("2.0.1", "pended_pa_inquire_request_payload"))
    assert response.status_code == 200
    answer = response.json()
    assert_conforms(answer, INQUIRY_RESPONSE_BUNDLE, ig=IG["2.0.1"])
    found = {
        e["resource"]["id"]: e["resource"]
        for e in answer["entry"]
        if e["resource"]["resourceType"] == "ClaimResponse"
    }
    assert claim_response_id in found
    assert review_actions({"entry": [{"resource": found[claim_response_id]}]})[0] == "A1"


@pytest.mark.requirement("PAS", "spec-60")
@pytest.mark.requirement("PAS", "spec-61")
@pytest.mark.parametrize("subscribed", ["2.2.1"], indirect=True)
def test_pended_then_denied_notifies_the_full_response_bundle(
    pas: PasServer, subscribed: tuple[Listener, str]
) -> None:
    listener, subscription_id = subscribed
    pended = _pend(pas, "2.2.1")
    case = pas.case_of(pended)
    denied = pas.decide(case["id"], {"decision": "deny", "reason": DENIAL_REASON})
    assert denied.status_code == 200, denied.text
    event = _event_checks(listener, subscription_id)
    # PAS-N2' (full-resource): focus resolves to an entry, a collection Bundle with a ClaimResponse
    assert event.parameter("topic")["valueCanonical"].endswith("PASSubscriptionTopic")
    (notification_event,) = [
        p for p in event.status_parameters["parameter"] if p["name"] == "notification-event"
    ]
    focus = next(p for p in notification_event["part"] if p["name"] == "focus")
    entries = {e["fullUrl"]: e.get("resource") for e in event.body["entry"]}
    bundle = entries[focus["valueReference"]["reference"]]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert_conforms(bundle, RESPONSE_BUNDLE, ig=IG["2.2.1"])
    assert review_actions(bundle)[0] == "A3"
    claim_response = bundle["entry"][0]["resource"]
    action = claim_response["item"][0]["adjudication"][0]["extension"][0]
    reason = next(p for p in action["extension"] if p["url"] == "reasonCode")
    assert reason["valueCodeableConcept"]["coding"][0]["code"] == "0U"
    # 2.2.1 $inquire: Parameters holding one Bundle per request found
    response = pas.inquire(kit_bundle("2.2.1", "pended_pa_inquire_request_payload"), "2.2.1")
    assert response.status_code == 200
    parameters = response.json()
    assert parameters["resourceType"] == "Parameters"
    for parameter in parameters["parameter"]:
        assert parameter["name"] == "return"
        assert_conforms(parameter["resource"], INQUIRY_RESPONSE_BUNDLE, ig=IG["2.2.1"])


def test_a_decided_case_takes_no_second_decision(pas: PasServer) -> None:
    case = pas.case_of(_pend(pas, "2.0.1"))
    assert (
        pas.decide(case["id"], {"decision": "partial", "note": "fewer visits"}).status_code == 200
    )
    again = pas.decide(case["id"], {"decision": "approve"})
    assert again.status_code == 409
    assert again.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "deny"}, "reason"),
        ({"decision": "deny", "reason": {"code": "0U"}}, "reason"),
        ({"decision": "maybe"}, "decision"),
        ([], "$"),
    ],
)
def test_malformed_decisions_are_refused(pas: PasServer, body: Any, field: str) -> None:
    case = pas.case_of(_pend(pas, "2.0.1"))
    response = pas.decide(case["id"], body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [field]
    assert pas.cases(claim=case["claim"])["cases"][0]["status"] == "pended"
