"""Claim/$submit: the Inferno kit's bundles and their trigger variants, answered and stored.

Every response is checked against the PAS response profiles of the version served. The trigger
variants are those of `app/pas/OUTCOMES.md` (made by `app.pas.variants`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.pas.variants import variant
from tests.pas.conftest import (
    IG,
    RESPONSE_BUNDLE,
    PasServer,
    ig_example,
    kit,
    kit_bundle,
    review_actions,
    table_counts,
)
from tests.support.conformance import assert_conforms

PAS_TEMP = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes"


def _ok(pas: PasServer, bundle: dict[str, Any], version: str = "2.0.1") -> dict[str, Any]:
    started = time.monotonic()
    response = pas.submit(bundle, version)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert elapsed < 15, f"$submit took {elapsed:.1f} s (PAS spec-7: at most 15 s)"
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    return body


def _entries(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


@pytest.mark.requirement("PAS", "spec-30")
@pytest.mark.requirement("PAS", "spec-31")
@pytest.mark.requirement("PAS", "spec-33")
@pytest.mark.requirement("PAS", "spec-34")
@pytest.mark.requirement("PAS", "spec-7")
def test_the_kit_approval_bundle_is_answered_with_its_resources_echoed(pas: PasServer) -> None:
    request = kit("2.0.1", "approval_pa_submit_request_payload")
    body = _ok(pas, request)
    assert body["type"] == "collection" and body["timestamp"]
    claim_response = body["entry"][0]["resource"]
    assert claim_response["resourceType"] == "ClaimResponse"
    assert [e["resource"]["resourceType"] for e in body["entry"]].count("ClaimResponse") == 1
    full_urls = [e["fullUrl"] for e in body["entry"]]
    assert len(full_urls) == len(set(full_urls))  # each instance once
    echoed = _entries(body)
    for entry in request["entry"][1:]:  # every resource but the Claim, same fullUrl and content
        assert echoed[entry["fullUrl"]] == entry["resource"]
    claim = request["entry"][0]["resource"]
    assert claim["identifier"][0] in claim_response["identifier"]
    assert [i["itemSequence"] for i in claim_response["item"]] == [
        i["sequence"] for i in claim["item"]
    ]
    for name in ("patient", "insurer", "requestor"):
        assert claim_response[name]["reference"] in echoed
    # X12 service type 3 (consultation) is on no coverage topic: no authorization needed
    assert review_actions(body) == ["NA"]
    assert claim_response["outcome"] == "complete"


@pytest.mark.parametrize(
    ("name", "actions", "outcome"),
    [
        ("approve-gold-card", ["A1"], "complete"),
        ("approve-documented", ["A1"], "complete"),
        ("pend", ["A4"], "queued"),
        ("pend-short-therapy", ["A4"], "queued"),
        ("deny-excluded", ["A3"], "complete"),
        ("deny-inactive", ["A3"], "complete"),
        ("deny-unknown-member", ["A3"], "error"),
    ],
)
def test_trigger_variants_give_their_documented_outcome(
    pas: PasServer, name: str, actions: list[str], outcome: str
) -> None:
    body = _ok(pas, variant(name, kit("2.0.1", "approval_pa_submit_request_payload")))
    claim_response = body["entry"][0]["resource"]
    assert review_actions(body) == actions
    assert claim_response["outcome"] == outcome
    if actions == ["A1"]:
        assert claim_response["preAuthRef"].startswith("GLA")
        assert claim_response["preAuthPeriod"]["start"]
        number = claim_response["item"][0]["adjudication"][0]["extension"][0]["extension"][0]
        assert number == {"url": "number", "valueString": claim_response["preAuthRef"]}
    else:
        assert "preAuthRef" not in claim_response
    notes = [n["text"] for n in claim_response.get("processNote", [])]
    assert notes and claim_response["item"][0]["noteNumber"]
    if name == "deny-excluded":
        assert "excluded from the Greenlight Silver HMO" in notes[0]
    if name == "deny-unknown-member":
        error = claim_response["error"][0]
        assert error["code"]["coding"][0]["code"] == "75"
        assert {e["url"].rsplit("-", 1)[1] for e in error["extension"]} == {
            "errorFollowupAction",
            "errorElement",
            "errorPath",
        }


def test_a_pended_request_without_documentation_asks_for_it(pas: PasServer) -> None:
    body = _ok(pas, variant("pend", kit("2.0.1", "approval_pa_submit_request_payload")))
    claim_response = body["entry"][0]["resource"]
    resources = _entries(body)
    (communication_url,) = [r["reference"] for r in claim_response["communicationRequest"]]
    communication = resources[communication_url]
    assert communication["resourceType"] == "CommunicationRequest"
    assert communication["payload"][0]["contentString"] == "102089-0"  # payer questionnaire
    tasks = [r for r in resources.values() if r["resourceType"] == "Task"]
    assert len(tasks) == 1
    assert tasks[0]["code"]["coding"][0] == {
        "system": PAS_TEMP,
        "code": "attachment-request-questionnaire",
    }
    assert tasks[0]["for"] == claim_response["patient"]
    # ... but not when documentation came and is just not enough to approve automatically
    short = _ok(
        pas, variant("pend-short-therapy", kit("2.0.1", "approval_pa_submit_request_payload"))
    )
    assert "communicationRequest" not in short["entry"][0]["resource"]


def test_the_kit_pended_bundle_and_must_support_bundles_are_answered(pas: PasServer) -> None:
    pended = kit("2.0.1", "pended_pa_submit_request_payload")  # DeviceRequest E1223: no topic
    assert review_actions(_ok(pas, pended)) == ["NA"]
    assert review_actions(_ok(pas, variant("pend", pended))) == ["A4"]
    for bundle in kit("2.0.1", "must_support_pa_submit_request_payload"):
        _ok(pas, bundle)


@pytest.mark.requirement("PAS", "conf-5")
@pytest.mark.parametrize(
    "example",
    [
        "Bundle-ReferralAuthorizationBundleExample",
        "Bundle-MedicalServicesAuthorizationBundleExample",
        "Bundle-HomecareAuthorizationBundleExample",
    ],
)
def test_the_ig_example_requests_are_answered(pas: PasServer, example: str) -> None:
    for version in ("2.0.1", "2.2.1"):
        body = _ok(pas, ig_example(version, example), version)
        assert review_actions(body)


def test_the_2_2_1_base_answers_2_2_1_responses(pas: PasServer) -> None:
    approval = kit("2.2.1", "approval_pa_submit_request_payload")
    assert review_actions(_ok(pas, approval, "2.2.1")) == ["NA", "NA"]
    assert review_actions(_ok(pas, variant("approve-gold-card", approval), "2.2.1"))[0] == "A1"
    pended = _ok(pas, variant("pend", approval), "2.2.1")
    assert review_actions(pended)[0] == "A4"
    assert pended["entry"][0]["resource"]["outcome"] == "complete"  # 2.2.1 has no `queued`
    denied = _ok(pas, variant("deny-unknown-member", approval), "2.2.1")
    assert review_actions(denied) == ["A3", "A3"]


@pytest.mark.requirement("PAS", "spec-35")
@pytest.mark.parametrize(
    ("make", "status", "expression"),
    [
        (lambda: kit("2.0.1", "approval_pa_submit_request_payload")["entry"][0], 400, "$"),
        (lambda: _kit_error_bundle(), 400, "Bundle.entry"),
        (lambda: _claim_not_first(), 400, "Bundle.entry[0].resource.resourceType"),
        (lambda: _use("claim"), 400, "Bundle.entry[0].resource.use"),
        (
            lambda: _missing_reference(),
            400,
            "Bundle.entry[0].resource.careTeam[0].provider.reference",
        ),
        (lambda: _duplicate_sequence(), 400, "Bundle.entry[0].resource.supportingInfo[1].sequence"),
        (lambda: _no_full_url(), 400, "Bundle.entry[3].fullUrl"),
        (lambda: _not_fhir(), 400, "Bundle.entry[0].resource.item[0].sequence"),
    ],
)
def test_unusable_bundles_get_a_4xx_operation_outcome_and_write_nothing(
    pas: PasServer, make: Any, status: int, expression: str
) -> None:
    before = table_counts(pas.database_url)
    response = pas.submit(make())
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]
    assert table_counts(pas.database_url) == before


def _kit_error_bundle() -> dict[str, Any]:
    """What Inferno posts in its error tests (PAS-E1): a collection Bundle with no entries."""
    import orjson

    from tests.pas.conftest import PAS_KIT

    loaded: dict[str, Any] = orjson.loads(
        (PAS_KIT / "server" / "error_tests" / "nonconformant_pas_bundle.json").read_bytes()
    )
    return loaded


def _claim_not_first() -> dict[str, Any]:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    bundle["entry"].append(bundle["entry"].pop(0))
    return bundle


def _use(value: str) -> dict[str, Any]:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    bundle["entry"][0]["resource"]["use"] = value
    return bundle


def _missing_reference() -> dict[str, Any]:
    import orjson

    from tests.pas.conftest import PAS_KIT

    loaded: dict[str, Any] = orjson.loads(
        (
            PAS_KIT / "spec" / "fixtures" / "missing_referenced_resource_request_bundle.json"
        ).read_bytes()
    )
    return loaded


def _duplicate_sequence() -> dict[str, Any]:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    infos = bundle["entry"][0]["resource"]["supportingInfo"]
    infos[1]["sequence"] = infos[0]["sequence"]
    return bundle


def _no_full_url() -> dict[str, Any]:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    del bundle["entry"][3]["fullUrl"]
    return bundle


def _not_fhir() -> dict[str, Any]:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    bundle["entry"][0]["resource"]["item"][0]["sequence"] = "first"
    return bundle


def test_the_ig_surgical_example_is_refused_for_its_dangling_references(pas: PasServer) -> None:
    """The IG ships this example with an Encounter pointing at a Practitioner and a Location the
    Bundle does not hold (see tests/fhir/validation/test_ig_examples.py): PAS spec-13."""
    response = pas.submit(ig_example("2.0.1", "Bundle-SurgicalRequestBundleExample"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [
        "Bundle.entry[6].resource.practitioner.reference"
    ]


def test_a_resubmitted_request_returns_the_stored_answer_and_writes_nothing(
    pas: PasServer,
) -> None:
    bundle = variant("pend", kit("2.0.1", "approval_pa_submit_request_payload"))
    first = _ok(pas, bundle)
    before = table_counts(pas.database_url)
    again = _ok(pas, bundle)
    assert table_counts(pas.database_url) == before
    assert again["entry"][0]["resource"] == first["entry"][0]["resource"]
    # the same Bundle identifier with other content is another request
    changed = dict(bundle, timestamp="2026-11-23T10:00:00Z")
    other = _ok(pas, changed)
    assert other["entry"][0]["resource"]["id"] != first["entry"][0]["resource"]["id"]


def test_the_request_claim_response_and_case_are_stored(pas: PasServer) -> None:
    before = table_counts(pas.database_url)
    body = _ok(pas, variant("pend", kit("2.0.1", "approval_pa_submit_request_payload")))
    after = table_counts(pas.database_url)
    assert after["pas_requests"] == before["pas_requests"] + 1
    assert after["review_cases"] == before["review_cases"] + 1
    # Claim, ClaimResponse, CommunicationRequest, Task; and the submission's AuditEvent
    assert after["resources"] == before["resources"] + 4
    assert after["audit_events"] == before["audit_events"] + 1
    claim_response = body["entry"][0]["resource"]
    with pas.client() as client:
        stored = client.get(f"/fhir/ClaimResponse/{claim_response['id']}").json()
        claim = client.get(claim_response["request"]["reference"]).json()
    assert stored["item"] == claim_response["item"]
    assert claim["resourceType"] == "Claim" and claim["use"] == "preauthorization"
    case = pas.case_of(body)
    assert case["status"] == "pended"
    assert case["priority"] == "expedited"  # levelOfServiceCode U (urgent)


@pytest.mark.requirement("PAS", "spec-55")
def test_the_capability_statement_lists_the_pas_operations_and_topic(pas: PasServer) -> None:
    with pas.client() as client:
        statement = client.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {o["name"] for o in resources["Claim"]["operation"]} >= {"submit", "inquire"}
    assert resources["Subscription"]["extension"][0]["valueCanonical"] == (
        "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
    )


def test_the_kit_bundles_of_both_versions_are_checked_without_errors() -> None:
    """The kit inputs the workflows send all pass the structural checks (no 4xx)."""
    from app.pas.bundle import check_request_bundle

    for version in ("2.0.1", "2.2.1"):
        for name in (
            "approval_pa_submit_request_payload",
            "pended_pa_submit_request_payload",
        ):
            check_request_bundle(kit_bundle(version, name))
