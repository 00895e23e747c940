"""Per-item reviewer decisions over real HTTP: A1 / A2 / A3 / A6 (with `addItem`), the refusals,
the AuditEvent each decision writes in its transaction, `$inquire` and the notification after it.

The requests are the Inferno kit's pended payloads (PAS 2.0.1 and 2.2.1) with their items set to
lumbar MRI (CPT 72148, pended without documentation) and a requested quantity of 12.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.auth.smart_client import ClientKey, access_token
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.pas.conftest import (
    IG,
    INQUIRY_RESPONSE_BUNDLE,
    RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    review_actions,
    secured_pas_fixtures,
    start_pas_server,
    subscription,
    table_counts,
)
from tests.pas.listener import listen
from tests.support.conformance import assert_conforms

CPT = "http://www.ama-assn.org/go/cpt"
LUMBAR_MRI = "72148"
LUMBAR_CT = {"coding": [{"system": CPT, "code": "72131", "display": "CT lumbar spine"}]}
CLAIM_RESPONSE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claimresponse"
CLAIM_INQUIRY_RESPONSE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claiminquiryresponse"
)
PAS_SD = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
REVIEW_ACTION = PAS_SD + "extension-reviewAction"
AUTHORIZED_DETAIL = PAS_SD + "extension-itemAuthorizedDetail"
PREAUTH_PERIOD = PAS_SD + "extension-itemPreAuthPeriod"
DENIAL = {"code": "0U", "display": "Medical necessity criteria not met"}
REQUESTED = 12


@pytest.fixture(scope="module", params=BACKENDS)
def pas(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[PasServer]:
    yield from start_pas_server(request.param, new_database_url, make_settings)


# --- requests, decisions and what the server stored ------------------------------------------


def pended_request(version: str, items: int = 1, pended: int | None = None) -> dict[str, Any]:
    """The kit's pended request with `items` items, the first `pended` (default: all) lumbar
    MRI (pended), the others the kit's consultation (no authorization needed)."""
    bundle: dict[str, Any] = kit(version, "pended_pa_submit_request_payload")
    bundle["identifier"] = {**bundle["identifier"], "value": f"GL-{uuid.uuid4().hex[:12]}"}
    claim = bundle["entry"][0]["resource"]
    kit_items = claim["item"]
    made = []
    for index in range(items):
        item = copy.deepcopy(kit_items[min(index, len(kit_items) - 1)])
        item["sequence"] = index + 1
        if index < (items if pended is None else pended):
            item["productOrService"] = {"coding": [{"system": CPT, "code": LUMBAR_MRI}]}
        item["quantity"] = {"value": REQUESTED, "unit": "visit"}
        made.append(item)
    claim["item"] = made
    return bundle


def submit(pas: PasServer, bundle: dict[str, Any], version: str) -> dict[str, Any]:
    response = pas.submit(bundle, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decide(pas: PasServer, case_id: str, body: Any, status: int = 200) -> dict[str, Any]:
    response = pas.decide(case_id, body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def fhir_get(pas: PasServer, path: str, headers: dict[str, str] | None = None) -> Any:
    with pas.client() as client:
        response = client.get(path if path.startswith("/") else f"/fhir/{path}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def action_of(item: dict[str, Any]) -> dict[str, Any]:
    """The reviewAction extension of a ClaimResponse item (or addItem) as {url: part}."""
    (adjudication,) = item["adjudication"]
    (review,) = [e for e in adjudication.get("extension", []) if e["url"] == REVIEW_ACTION]
    return {part["url"].rsplit("-", 1)[-1]: part for part in review["extension"]}


def action_code(item: dict[str, Any]) -> str:
    return str(action_of(item)["reviewActionCode"]["valueCodeableConcept"]["coding"][0]["code"])


def extension(node: dict[str, Any], url: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in node.get("extension", []) if e["url"] == url]
    assert len(found) == 1, found
    return found[0]


def authorized(item: dict[str, Any]) -> dict[str, Any]:
    """The item's itemAuthorizedDetail as {part: value}."""
    parts = extension(item, AUTHORIZED_DETAIL)["extension"]
    return {p["url"]: p.get("valueCodeableConcept", p.get("valueQuantity")) for p in parts}


def notes_of(claim_response: dict[str, Any], item: dict[str, Any]) -> list[str]:
    texts = {n["number"]: n["text"] for n in claim_response.get("processNote", [])}
    return [texts[number] for number in item.get("noteNumber", [])]


def decision_events(pas: PasServer, case_id: str, kind: str) -> list[dict[str, Any]]:
    """The AuditEvents of kind `um-decision` / `Claim-submit` naming the review case `case_id`."""
    found = fhir_get(pas, "AuditEvent?_count=500")
    assert found["total"] < 500
    events = []
    for entry in found.get("entry", []):
        event = entry["resource"]
        if kind not in {s["code"] for s in event["subtype"]}:
            continue
        if _case(event)["what"]["identifier"]["value"] == case_id:
            events.append(event)
    return events


def entity(event: dict[str, Any], prefix: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        e for e in event["entity"] if e["what"].get("reference", "").startswith(prefix)
    ]
    assert len(found) == 1, found
    return found[0]


def _case(event: dict[str, Any]) -> dict[str, Any]:
    """The review case entity (named by its reference number)."""
    found: list[dict[str, Any]] = [
        e
        for e in event["entity"]
        if e["what"].get("identifier", {}).get("system", "").endswith("pas-reference-number")
    ]
    assert len(found) == 1, found
    return found[0]


def details(node: dict[str, Any]) -> dict[str, str]:
    return {d["type"]: d.get("valueString") or d["valueBase64Binary"] for d in node["detail"]}


# --- per-item decisions ------------------------------------------------------------------------


@pytest.mark.requirement("PAS", "spec-34")
@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_one_item_certified_and_one_denied_with_its_reason(pas: PasServer, version: str) -> None:
    submitted = submit(pas, pended_request(version, items=2), version)
    assert review_actions(submitted) == ["A4", "A4"]
    case = pas.case_of(submitted)
    answer = decide(
        pas,
        case["id"],
        {
            "items": [
                {"sequence": 1, "decision": "approve", "note": "Criteria met"},
                {"sequence": 2, "decision": "deny", "reason": DENIAL},
            ]
        },
    )
    assert answer["case"]["status"] == "partial"
    claim_response_id = submitted["entry"][0]["resource"]["id"]
    assert answer["claimResponse"] == f"ClaimResponse/{claim_response_id}/_history/2"
    current = fhir_get(pas, f"ClaimResponse/{claim_response_id}")
    assert current["meta"]["versionId"] == "2"
    assert_conforms(current, CLAIM_RESPONSE, ig=IG[version])
    first, second = current["item"]
    assert [first["itemSequence"], second["itemSequence"]] == [1, 2]
    assert [action_code(first), action_code(second)] == ["A1", "A3"]
    # the certified item: authorization number = preAuthRef, its period, what was certified
    assert action_of(first)["number"]["valueString"] == current["preAuthRef"]
    assert extension(first, PREAUTH_PERIOD)["valuePeriod"]["start"]
    assert authorized(first)["quantity"] == {"value": REQUESTED, "unit": "visit"}
    assert notes_of(current, first) == ["Criteria met"]
    # the denied item: the X12 HCR03 reason code on reviewAction, its text as a process note
    reason = action_of(second)["reasonCode"]["valueCodeableConcept"]["coding"][0]
    assert (reason["code"], reason["display"]) == (DENIAL["code"], DENIAL["display"])
    assert action_of(second)["number"]["valueString"] != current["preAuthRef"]
    assert notes_of(current, second) == [f"Reason: {DENIAL['display']}"]
    assert "addItem" not in current
    assert current["disposition"] == "Partly certified."
    # the pended reasons went with the pended answers: every note left is pointed at
    pointed = {n for line in current["item"] for n in line.get("noteNumber", [])}
    assert {note["number"] for note in current["processNote"]} == pointed
    recorded = answer["case"]["decision"]["items"]
    assert [(i["sequence"], i["action"], i["listed"]) for i in recorded] == [
        (1, "A1", True),
        (2, "A3", True),
    ]


@pytest.mark.requirement("PAS", "spec-46")
def test_partial_certifies_fewer_units_and_unlisted_items_take_the_case_decision(
    pas: PasServer,
) -> None:
    version = "2.2.1"
    submitted = submit(pas, pended_request(version, items=2), version)
    case = pas.case_of(submitted)
    answer = decide(
        pas,
        case["id"],
        {
            "decision": "approve",
            "note": "Reviewed by Dr. Osei",
            "items": [{"sequence": 1, "decision": "partial", "quantity": {"value": 6}}],
        },
    )
    assert answer["case"]["status"] == "partial"
    current = fhir_get(pas, answer["claimResponse"])
    assert_conforms(current, CLAIM_RESPONSE, ig=IG[version])
    first, second = current["item"]
    assert [action_code(first), action_code(second)] == ["A2", "A1"]
    # A2: six of the twelve visits, in the requested unit
    assert authorized(first)["quantity"] == {"value": 6, "unit": "visit"}
    assert authorized(second)["quantity"] == {"value": REQUESTED, "unit": "visit"}
    assert notes_of(current, second) == ["Reviewed by Dr. Osei"]  # the case-level note
    assert (
        action_of(first)["number"]["valueString"]
        == action_of(second)["number"]["valueString"]
        == current["preAuthRef"]
    )
    recorded = answer["case"]["decision"]["items"]
    assert [(i["decision"], i["listed"]) for i in recorded] == [
        ("partial", True),
        ("approve", False),
    ]
    assert recorded[0]["quantity"] == {"value": 6, "unit": "visit"}
    # $inquire (PAS 2.2.1: Parameters, a Bundle per request) returns the partial certification
    inquired = pas.inquire(kit_bundle(version, "pended_pa_inquire_request_payload"), version)
    assert inquired.status_code == 200, inquired.text
    answers = {
        p["resource"]["entry"][0]["resource"]["id"]: p["resource"]
        for p in inquired.json()["parameter"]
    }
    bundle = answers[current["id"]]
    assert_conforms(bundle, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])
    assert review_actions(bundle) == ["A2", "A1"]


@pytest.mark.requirement("PAS", "spec-36")
@pytest.mark.requirement("PAS", "spec-37")
@pytest.mark.requirement("PAS", "spec-46")
@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_a_modification_is_a6_with_the_certified_service_in_add_item(
    pas: PasServer, version: str
) -> None:
    submitted = submit(pas, pended_request(version), version)
    requested = submitted["entry"][0]["resource"]
    case = pas.case_of(submitted)
    body = {
        "items": [
            {
                "sequence": 1,
                "decision": "modify",
                "service": LUMBAR_CT,
                "quantity": {"value": 1},
                "reason": {"code": "0U", "display": "CT first; MRI if CT is inconclusive"},
            }
        ]
    }
    answer = decide(pas, case["id"], body)
    assert answer["case"]["status"] == "partial"
    current = fhir_get(pas, answer["claimResponse"])
    assert_conforms(current, CLAIM_RESPONSE, ig=IG[version])
    (item,) = current["item"]
    assert action_code(item) == "A6"
    number = action_of(item)["number"]["valueString"]
    assert number == current["preAuthRef"]
    # spec-36: the requested item keeps its details; spec-37: addItem says what is certified
    assert item["itemSequence"] == 1
    assert authorized(item)["productOrServiceCode"] == LUMBAR_CT
    (added,) = current["addItem"]
    assert added["itemSequence"] == [1]
    assert added["productOrService"] == LUMBAR_CT
    assert added["quantity"] == {"value": 1, "unit": "visit"}
    (adjudication,) = added["adjudication"]
    assert adjudication["category"]["coding"][0]["code"] == "submitted"
    assert notes_of(current, added) == notes_of(current, item) != []
    if version == "2.2.1":  # reviewAction and the authorization dates are defined on addItem
        assert action_code(added) == "A6"
        assert action_of(added)["number"]["valueString"] == number
        assert (
            extension(added, PREAUTH_PERIOD)["valuePeriod"]
            == (extension(item, PREAUTH_PERIOD)["valuePeriod"])
        )
    else:  # PAS 2.0.1 defines them on ClaimResponse.item only
        assert "extension" not in adjudication and "extension" not in added
    assert current["disposition"].startswith("Certified as modified")
    assert action_code(requested["item"][0]) == "A4"  # version 1, as answered at submission
    # $inquire returns the current answer: A6 with its addItem
    inquired = pas.inquire(kit_bundle(version, "pended_pa_inquire_request_payload"), version)
    assert inquired.status_code == 200, inquired.text
    if version == "2.0.1":
        bundles = [inquired.json()]
    else:
        bundles = [p["resource"] for p in inquired.json()["parameter"]]
    found = {
        e["resource"]["id"]: e["resource"]
        for bundle in bundles
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "ClaimResponse"
    }
    inquiry_answer = found[current["id"]]
    assert_conforms(inquiry_answer, CLAIM_INQUIRY_RESPONSE, ig=IG[version])
    assert action_code(inquiry_answer["item"][0]) == "A6"
    assert inquiry_answer["addItem"] == current["addItem"]
    for bundle in bundles:
        assert_conforms(bundle, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])


@pytest.mark.requirement("PAS", "spec-60")
@pytest.mark.requirement("PAS", "spec-61")
def test_one_notification_per_decision_carries_the_per_item_answer(pas: PasServer) -> None:
    version = "2.2.1"
    with listen() as listener:
        created = pas.subscribe(subscription(version, listener.url), version)
        assert created.status_code == 201, created.text
        listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
        try:
            submitted = submit(pas, pended_request(version, items=2), version)
            case = pas.case_of(submitted)
            answer = decide(
                pas,
                case["id"],
                {
                    "decision": "deny",
                    "reason": DENIAL,
                    "items": [{"sequence": 2, "decision": "modify", "service": LUMBAR_CT}],
                },
            )
            assert answer["notifications"] == 1
            listener.wait_for(lambda seen: len(seen.of_kind("event-notification")) == 1)
            time.sleep(0.6)  # several outbox polls later: still one
            (event,) = listener.of_kind("event-notification")
        finally:
            with pas.client() as client:
                client.delete(pas.url(version, f"Subscription/{created.json()['id']}"))
    bundle = next(
        e["resource"] for e in event.body["entry"][1:] if e["resource"]["type"] == "collection"
    )
    assert_conforms(bundle, RESPONSE_BUNDLE, ig=IG[version])
    assert review_actions(bundle) == ["A3", "A6"]
    claim_response = bundle["entry"][0]["resource"]
    assert claim_response["meta"]["versionId"] == "2"
    assert claim_response["addItem"][0]["itemSequence"] == [2]


# --- refusals: 4xx naming the field, nothing written ------------------------------------------


@pytest.fixture(scope="module")
def open_case(pas: PasServer) -> dict[str, Any]:
    """A 2.0.1 case with items 1 and 2 pended and item 3 answered NA at submission."""
    submitted = submit(pas, pended_request("2.0.1", items=3, pended=2), "2.0.1")
    assert review_actions(submitted) == ["A4", "A4", "NA"]
    return pas.case_of(submitted)


def _modify(service: Any = None, quantity: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"sequence": 1, "decision": "modify"}
    if service is not None:
        item["service"] = service
    if quantity is not None:
        item["quantity"] = quantity
    return {"decision": "approve", "items": [item]}


def _one(**item: Any) -> dict[str, Any]:
    return {"decision": "approve", "items": [{"sequence": 1, **item}]}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"decision": "approve", "items": [{"sequence": 9, "decision": "approve"}]},
            400,
            "items[0].sequence",
        ),
        (
            {"decision": "approve", "items": [{"sequence": 3, "decision": "approve"}]},
            409,
            "items[0].sequence",
        ),
        (_one(decision="deny"), 400, "items[0].reason"),
        (_one(decision="deny", reason={"code": "0U"}), 400, "items[0].reason"),
        (_modify(), 400, "items[0].service"),
        (
            _modify(service={"coding": [{"system": CPT, "code": LUMBAR_MRI}]}),
            400,
            "items[0].service",
        ),
        (_modify(quantity={"value": REQUESTED}), 400, "items[0].quantity"),
        (
            _modify(service={"coding": [{"system": "urn:local", "code": "X"}]}),
            400,
            "items[0].service.coding[0].system",
        ),
        (_modify(service={"text": "CT"}), 400, "items[0].service.coding"),
        (_one(decision="partial", quantity={"value": REQUESTED}), 400, "items[0].quantity.value"),
        (_one(decision="partial", quantity={"value": 0}), 400, "items[0].quantity.value"),
        (_one(decision="partial", quantity={"value": 2, "unit": "day"}), 400, "items[0].quantity"),
        (_one(decision="approve", quantity={"value": 2}), 400, "items[0].quantity"),
        (_one(decision="partial", service=LUMBAR_CT), 400, "items[0].service"),
        (_one(decision="maybe"), 400, "items[0].decision"),
        (_one(decision="approve", qty=2), 400, "items[0].qty"),
        (_one(decision="approve", note=3), 400, "items[0].note"),
        (
            {"decision": "approve", "items": [{"sequence": "1", "decision": "approve"}]},
            400,
            "items[0].sequence",
        ),
        (
            {
                "decision": "approve",
                "items": [
                    {"sequence": 1, "decision": "approve"},
                    {"sequence": 1, "decision": "deny", "reason": DENIAL},
                ],
            },
            400,
            "items[1].sequence",
        ),
        ({"decision": "approve", "items": {"sequence": 1}}, 400, "items"),
        ({"decision": "approve", "items": ["approve"]}, 400, "items[0]"),
        ({"items": [{"sequence": 1, "decision": "approve"}]}, 400, "decision"),
        ({"decision": "modify"}, 400, "decision"),
    ],
)
def test_bad_item_decisions_are_refused_naming_the_field_and_write_nothing(
    pas: PasServer, open_case: dict[str, Any], body: Any, status: int, field: str
) -> None:
    before = table_counts(pas.database_url)
    refused = decide(pas, open_case["id"], body, status)
    assert refused["resourceType"] == "OperationOutcome"
    assert refused["issue"][0]["expression"] == [field]
    assert table_counts(pas.database_url) == before
    assert pas.cases(claim=open_case["claim"])["cases"][0]["status"] == "pended"
    claim_response = fhir_get(pas, open_case["claimResponse"])
    assert claim_response["meta"]["versionId"] == "1"


def test_a_decision_on_an_unknown_case_writes_nothing(pas: PasServer) -> None:
    before = table_counts(pas.database_url)
    refused = decide(pas, "GLR-no-such-case", {"decision": "approve"}, 404)
    assert refused["issue"][0]["expression"] == ["id"]
    assert table_counts(pas.database_url) == before


def test_two_decisions_at_once_one_wins_and_one_audit_event_is_written(pas: PasServer) -> None:
    submitted = submit(pas, pended_request("2.0.1"), "2.0.1")
    case = pas.case_of(submitted)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post(body: dict[str, Any]) -> None:
        with httpx.Client(base_url=pas.server.base_url, timeout=30) as client:
            barrier.wait()
            statuses.append(client.post(f"/um/cases/{case['id']}/decision", json=body).status_code)

    threads = [
        threading.Thread(target=post, args=({"decision": "approve"},)),
        threading.Thread(target=post, args=({"decision": "deny", "reason": DENIAL},)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    (event,) = decision_events(pas, case["id"], "um-decision")
    current = fhir_get(pas, f"ClaimResponse/{submitted['entry'][0]['resource']['id']}")
    assert current["meta"]["versionId"] == "2"
    recorded = json.loads(base64.b64decode(details(_case(event))["decision"]))
    assert recorded["items"][0]["action"] == action_code(current["item"][0])


# --- the AuditEvents, with authentication on: who decided ------------------------------------


keys, secured = secured_pas_fixtures(
    {
        "nurse": ["system/ClaimResponse.rus", "system/AuditEvent.rs"],
        "ehr": ["system/Claim.c"],
    },
    um_reviewers="nurse",
)


def test_submission_and_decision_are_audited_with_who_when_and_what(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    ehr = {"Authorization": f"Bearer {access_token(secured.server, keys['ehr'], 'system/Claim.c')}"}
    nurse = {
        "Authorization": "Bearer "
        + access_token(
            secured.server, keys["nurse"], "system/ClaimResponse.rus system/AuditEvent.rs"
        )
    }
    with secured.client() as client:
        response = client.post(
            "/fhir/Claim/$submit",
            content=orjson.dumps(pended_request("2.0.1", items=2)),
            headers={**ehr, "Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 200, response.text
        submitted = response.json()
        claim_response_id = submitted["entry"][0]["resource"]["id"]
        claim_id = submitted["entry"][0]["resource"]["request"]["reference"].rsplit("/", 1)[1]
        (case,) = client.get(
            "/um/cases", params={"claim": f"Claim/{claim_id}"}, headers=nurse
        ).json()["cases"]
        decided = client.post(
            f"/um/cases/{case['id']}/decision",
            json={
                "note": "Peer-to-peer held",
                "items": [
                    {"sequence": 1, "decision": "approve"},
                    {"sequence": 2, "decision": "deny", "reason": DENIAL},
                ],
            },
            headers=nurse,
        )
        assert decided.status_code == 200, decided.text
        answer = decided.json()
        event = client.get(f"/fhir/{answer['auditEvent']}", headers=nurse).json()
        listed = client.get("/fhir/AuditEvent", params={"_count": "100"}, headers=nurse).json()
    assert answer["case"]["decided_by"] == "nurse"
    # who, when, what: the reviewer's client, the decision time, update of the ClaimResponse
    (agent,) = event["agent"]
    assert agent["requestor"] is True
    assert agent["who"]["identifier"]["value"] == "nurse"
    assert event["recorded"] == answer["case"]["decided_at"]
    assert event["action"] == "U" and event["outcome"] == "0"
    assert {s["code"] for s in event["subtype"]} == {"update", "um-decision"}
    # which case, Claim and ClaimResponse version; the decision per item
    assert entity(event, "Claim/")["what"]["reference"] == f"Claim/{claim_id}"
    decided_version = entity(event, "ClaimResponse/")
    assert decided_version["what"]["reference"] == f"ClaimResponse/{claim_response_id}/_history/2"
    per_item = details(decided_version)
    assert per_item["item 1"] == "A1 approve"
    assert per_item["item 2"] == f"A3 deny; reason 0U {DENIAL['display']}"
    case_entity = _case(event)
    assert case_entity["what"]["identifier"]["value"] == case["id"]
    case_details = details(case_entity)
    assert case_details["status"] == "partial"
    assert case_details["note"] == "Peer-to-peer held"
    recorded = json.loads(base64.b64decode(case_details["decision"]))
    assert recorded == answer["case"]["decision"]
    # the submission's own AuditEvent: the submitting client, the case as opened
    submits = [
        e["resource"]
        for e in listed["entry"]
        if "Claim-submit" in {s["code"] for s in e["resource"]["subtype"]}
        and _case(e["resource"])["what"]["identifier"]["value"] == case["id"]
    ]
    (submit_event,) = submits
    assert submit_event["agent"][0]["who"]["identifier"]["value"] == "ehr"
    assert submit_event["action"] == "E"
    assert entity(submit_event, "ClaimResponse/")["what"]["reference"] == (
        f"ClaimResponse/{claim_response_id}/_history/1"
    )
    assert details(entity(submit_event, "ClaimResponse/"))["item 1"].startswith("A4")
    assert details(_case(submit_event))["status"] == "pended"
