"""Create or update coverage information (CRD card type `insurance`): the payer's member record
against the EHR's Coverage, through real hook calls.

The "correct" EHR Coverage of a member is built from the demo payer's own member data
(app/demo/payer.py), held the way an EHR holds it: its own ids for the Coverage, the patient and
the payer. What "differs" means is documented in cds_hooks/coverage_record.py.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from app.demo.payer import MEMBERS, PAYER_NAME, Member
from tests.crd.conftest import ONLY_THE_EHR_IS_MOCKED, CrdServer
from tests.crd.hook_requests import coverage_information, inferno_bodies, order_sign
from tests.support import crd_checks
from tests.support.conformance import assert_conforms, validate

SERVICE = "order-sign-crd"
CRD_201 = "hl7.fhir.us.davinci-crd#2.0.1"
CRD_COVERAGE = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-coverage"
CARD_TYPES = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
EMPTY_SEARCH = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}


def _member(member_id: str) -> Member:
    return next(m for m in MEMBERS if m.member_id_value == member_id)


def _complete_ehr_coverage(member: Member) -> dict[str, Any]:
    """Everything the payer's record holds that the comparison reads, under the EHR's ids."""
    stored = member.coverage_resource()
    coverage = {
        "resourceType": "Coverage",
        "id": f"ehr-{member.coverage_id}",
        "identifier": [i for i in stored["identifier"] if "MB" in str(i.get("type"))],
        "status": stored["status"],
        "subscriberId": stored["subscriberId"],
        "beneficiary": {"reference": "Patient/pat015"},
        "relationship": stored["relationship"],
        "payor": [{"reference": "Organization/org1234"}],
        "period": stored["period"],
        "class": stored["class"],
    }
    return copy.deepcopy(coverage)


def _ehr_patient(member: Member, patient_id: str) -> dict[str, Any]:
    """The member as the EHR knows them: same demographics, the EHR's own id, no payer ids."""
    patient = {k: v for k, v in member.patient.items() if k in ("name", "gender", "birthDate")}
    return {"resourceType": "Patient", "id": patient_id, **copy.deepcopy(patient)}


def _for_patient(body: dict[str, Any], patient: dict[str, Any]) -> dict[str, Any]:
    """The call made for the EHR patient `patient` (context, prefetch and order subject)."""
    body["context"]["patientId"] = patient["id"]
    body["prefetch"]["patient"] = patient
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{patient['id']}"}
    return body


def _call(crd: CrdServer, body: dict[str, Any], service: str = SERVICE) -> dict[str, Any]:
    response = crd.call(service, body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def _record_cards(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in response["cards"] if c["source"]["topic"]["code"] == "insurance"]


def _profile_errors(resource: Mapping[str, Any], profile: str | None) -> list[str]:
    result = validate(dict(resource), profile, ig=CRD_201)
    return [f"{', '.join(i.expression)}: {i.diagnostics}" for i in result.errors]


def _only_action(response: Mapping[str, Any], hook: str = "order-sign") -> dict[str, Any]:
    """The one Create or update coverage information card's action, after the kit's checks."""
    cards = _record_cards(response)
    assert len(cards) == 1, response["cards"]
    card = cards[0]
    assert card["source"]["topic"] == {
        "system": CARD_TYPES,
        "code": "insurance",
        "display": "Insurance",
    }
    assert card["source"]["label"] == PAYER_NAME
    assert len(card["summary"]) < 140
    assert crd_checks.check_card(card) == []
    assert crd_checks.check_card_optional_fields(card) == []
    assert crd_checks.check_hook_response_crd(response) == []
    recognised = crd_checks.classify_cards(response, hook)["create_update_coverage"]
    assert recognised == [card]
    assert crd_checks.check_create_update_coverage(recognised, (), _profile_errors) == []
    (suggestion,) = card["suggestions"]
    assert crd_checks.is_uuid(suggestion["uuid"])
    (action,) = suggestion["actions"]
    assert action["resource"]["resourceType"] == "Coverage"
    assert_conforms(action["resource"], CRD_COVERAGE, ig=CRD_201)
    action_dict: dict[str, Any] = action
    return action_dict


@pytest.mark.requirement("CRD", "resp-3")
@pytest.mark.requirement("CRD", "resp-5")
def test_coverage_without_the_subscriber_id_gets_an_update_card(crd: CrdServer) -> None:
    member = _member("GLH50873304")
    ehr = _complete_ehr_coverage(member)
    del ehr["subscriberId"]  # matched by its member-number identifier
    body = order_sign(member.member_id_value, "99213", coverage=ehr)
    response = _call(crd, body)
    action = _only_action(response)
    assert action["type"] == "update"
    updated = action["resource"]
    assert updated["id"] == ehr["id"]
    assert updated["subscriberId"] == member.subscriber_id
    # only the subscriber id changed: the EHR's own references and everything else are kept
    assert {k: v for k, v in updated.items() if k != "subscriberId"} == ehr
    card = _record_cards(response)[0]
    assert "subscriber id" in card["summary"]
    assert card["indicator"] == "info"
    # the orders still get their coverage information, about the same Coverage
    assert coverage_information(response)[0]["covered"] == ["covered"]
    # the EHR that accepts the update is right: no card the next time
    again = _call(crd, order_sign(member.member_id_value, "99213", coverage=updated))
    assert _record_cards(again) == []


@pytest.mark.parametrize("member_id", ["GLH50873304", "10A3D58WH456", "GLH50744219"])
def test_a_coverage_that_agrees_with_the_member_record_gets_no_card(
    crd: CrdServer, member_id: str
) -> None:
    member = _member(member_id)
    body = order_sign(member_id, "99213", coverage=_complete_ehr_coverage(member))
    response = _call(crd, body)
    assert _record_cards(response) == []
    assert len(coverage_information(response)) == 1


def test_wrong_period_and_plan_are_corrected(crd: CrdServer) -> None:
    member = _member("10A3D58WH456")
    stored = member.coverage_resource()
    ehr = _complete_ehr_coverage(member)
    ehr["period"] = {"start": "2019-01-01", "end": "2019-12-31"}
    # the Inferno mock EHR's plan class: another value, and the pre-THO coverage-class system
    ehr["class"] = [
        {
            "type": {"coding": [{"system": "http://hl7.org/fhir/coverage-class", "code": "plan"}]},
            "value": "Medicare Part A",
        }
    ]
    member_id = member.member_id_value
    response = _call(crd, order_sign(member_id, "99213", coverage=ehr))
    updated = _only_action(response)["resource"]
    assert updated["period"] == stored["period"]
    plans = [c for c in updated["class"] if c["type"]["coding"][0]["code"] == "plan"]
    assert [p["value"] for p in plans] == [member.plan.value]
    assert updated["subscriberId"] == member_id
    detail = _record_cards(response)[0]["detail"]
    assert "Coverage period: 2019-01-01 to 2019-12-31" in detail
    assert "Medicare Part A" in detail and member.plan.value in detail


def test_coverage_the_payer_has_cancelled_is_updated_with_its_end(crd: CrdServer) -> None:
    member = _member("GLH50744219")
    ehr = {**_complete_ehr_coverage(member), "status": "active"}
    del ehr["period"]
    response = _call(crd, order_sign(member.member_id_value, "99213", coverage=ehr))
    updated = _only_action(response)["resource"]
    assert updated["status"] == member.status == "cancelled"
    assert updated["period"] == {"start": member.period_start, "end": member.period_end}
    assert _record_cards(response)[0]["indicator"] == "warning"


def test_dependent_known_only_by_the_family_subscriber_id_gets_the_member_id(
    crd: CrdServer,
) -> None:
    daniel = _member("GLH40021871-02")
    ehr = _complete_ehr_coverage(daniel)
    del ehr["identifier"]  # the EHR has only the subscriber id GLH40021871, shared by the family
    body = _for_patient(
        order_sign(daniel.subscriber_id, "99213", coverage=ehr), _ehr_patient(daniel, "ehr-dja")
    )
    updated = _only_action(_call(crd, body))["resource"]
    assert updated["identifier"] == [daniel.member_id]
    assert updated["relationship"]["coding"][0]["code"] == "spouse"
    assert updated["dependent"] == daniel.dependent


@pytest.mark.parametrize("coverage", [EMPTY_SEARCH, None], ids=["empty-search", "null"])
def test_no_coverage_in_the_ehr_but_a_member_by_demographics_gets_a_create_card(
    crd: CrdServer, coverage: dict[str, Any] | None
) -> None:
    linda = _member("GLH50911562")
    body = _for_patient(order_sign("unused", "99213"), _ehr_patient(linda, "ehr-lmo-4411"))
    body["prefetch"]["coverage"] = copy.deepcopy(coverage)
    response = _call(crd, body)
    action = _only_action(response)
    assert action["type"] == "create"
    created = action["resource"]
    assert created["beneficiary"] == {"reference": "Patient/ehr-lmo-4411"}
    assert created["subscriber"] == {"reference": "Patient/ehr-lmo-4411"}
    assert created["subscriberId"] == linda.subscriber_id
    assert created["identifier"] == [linda.member_id]
    assert created["period"] == {"start": linda.period_start}
    assert [c["value"] for c in created["class"]] == [linda.plan.value]
    assert created["payor"][0]["display"] == PAYER_NAME
    assert "reference" not in created["payor"][0]  # the payer's ids mean nothing to the EHR
    assert linda.plan.name in _record_cards(response)[0]["summary"]
    assert response["systemActions"] == []  # no EHR Coverage to attach coverage information to


@pytest.mark.parametrize(
    ("change", "coverage"),
    [
        ({"birthDate": "1949-03-28"}, EMPTY_SEARCH),
        ({"gender": "male"}, EMPTY_SEARCH),
        ({"name": [{"family": "Okafor", "given": ["Grace"]}]}, EMPTY_SEARCH),
        ({}, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}),
    ],
    ids=["birth-date", "gender", "given-name", "ehr-could-not-look"],
)
def test_no_create_card_without_an_exact_demographic_match_or_an_ehr_answer(
    crd: CrdServer, change: dict[str, Any], coverage: dict[str, Any]
) -> None:
    patient = {**_ehr_patient(_member("GLH50911562"), "ehr-lmo-4412"), **change}
    body = _for_patient(order_sign("unused", "99213"), patient)
    body["prefetch"]["coverage"] = coverage
    assert _record_cards(_call(crd, body)) == []


@pytest.mark.requirement("CRD", "dev-5")
@pytest.mark.requirement("CRD", "dev-14")
def test_the_insurance_option_turns_only_these_cards_off(crd: CrdServer) -> None:
    body = order_sign("GLH50873304", "99213")  # the sparse EHR Coverage: a card by default
    assert len(_record_cards(_call(crd, body))) == 1
    body["extension"] = {"davinci-crd.configuration": {"insurance": False}}
    response = _call(crd, body)
    assert _record_cards(response) == []
    assert coverage_information(response)[0]["covered"] == ["covered"]
    with_cards = [c["source"]["topic"]["code"] for c in response["cards"]]
    assert "coverage-info" in with_cards


@pytest.mark.requirement("CRD", "resp-70")
def test_crd_22_callers_get_no_coverage_record_card_on_order_sign(crd: CrdServer) -> None:
    body = order_sign("GLH50873304", "99213")
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    response = _call(crd, body)
    assert _record_cards(response) == []
    assert all(a["resource"]["resourceType"] != "Coverage" for a in response["systemActions"])


@pytest.mark.requirement("CRD", "resp-71")
@ONLY_THE_EHR_IS_MOCKED
def test_crd_22_appointment_book_gets_the_update_card_in_the_22_shape(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """The Inferno appointment-book body (EHR plan "Medicare Part A", no period) from a CRD 2.2
    caller: the card meets the CRDHooksResponse-adjustCoverage model (one suggestion, `update`
    actions with a resource, no `resourceId`, no links)."""
    body = inferno_bodies("appointment_book_request_bodies.json")[0]
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    response = _call(crd, body, "appointment-book-crd")
    action = _only_action(response, "appointment-book")
    card = _record_cards(response)[0]
    assert "links" not in card and len(card["suggestions"]) == 1
    assert action["type"] == "update" and "resourceId" not in action
    ehr = body["prefetch"]["coverage"]["entry"][0]["resource"]
    assert action["resource"]["id"] == ehr["id"]
    member = _member(ehr["subscriberId"])
    assert [c["value"] for c in action["resource"]["class"]] == [member.plan.value]


@ONLY_THE_EHR_IS_MOCKED
@pytest.mark.parametrize(("version", "expected"), [("2.0", ["create"]), ("2.2", [])])
def test_create_is_a_crd_201_response_only(
    crd: CrdServer, inferno_ehr: HTTPXMock, version: str, expected: list[str]
) -> None:
    """CRD 2.2 narrowed the response type to updates of the EHR's own Coverage."""
    body = inferno_bodies("appointment_book_request_bodies.json")[0]
    body["prefetch"]["coverage"] = copy.deepcopy(EMPTY_SEARCH)
    body["extension"] = {"davinci-crd.requestedVersion": version}
    response = _call(crd, body, "appointment-book-crd")
    actions = [
        action["type"]
        for card in _record_cards(response)
        for action in card["suggestions"][0]["actions"]
    ]
    assert actions == expected
