"""The demo topics answered through order-sign, for real members: the ground truth of the product.

Members (app/demo/DEMO.md): 10A3D58WH456 William Oster, pat015 (Gold PPO), GLH50873304 Robert
Chen (Silver HMO), GLH50744219 Kevin Brennan (cancelled); the Alvarez family shares subscriber id
GLH40021871 (Gold PPO). Gold-carded orderer: NPI 1304582715.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.crd.conftest import DTR_APP_URL, CrdServer
from tests.crd.hook_requests import HCPCS, RXNORM, coverage_information, ehr_coverage, order_sign

GOLD_MEMBER, SILVER_MEMBER, CANCELLED_MEMBER = "10A3D58WH456", "GLH50873304", "GLH50744219"
SERVICE = "order-sign-crd"
LUMBAR_MRI_FORM = "http://greenlight.example.org/fhir/Questionnaire/lumbar-mri"


def _answer(crd: CrdServer, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = crd.call(SERVICE, body)
    assert response.status_code == 200, response.text
    payload = response.json()
    infos = coverage_information(payload)
    assert len(infos) == 1, payload
    return payload, infos[0]


@pytest.mark.requirement("CRD", "hook-16")
@pytest.mark.parametrize("member", [GOLD_MEMBER, SILVER_MEMBER])
def test_lumbar_mri_needs_prior_auth_and_the_questionnaire(crd: CrdServer, member: str) -> None:
    payload, info = _answer(crd, order_sign(member, "72148"))
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["auth-needed"]
    assert info["doc-needed"] == ["clinical"] and info["doc-purpose"] == ["withpa"]
    assert info["questionnaire"] == [LUMBAR_MRI_FORM]
    assert info["billingCode"] == [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]
    summaries = [card["summary"] for card in payload["cards"]]
    assert any("prior authorization required" in s for s in summaries)
    links = [link for card in payload["cards"] for link in card.get("links", [])]
    assert sorted(link["type"] for link in links) == ["absolute", "smart"]


def test_gold_carded_orderer_needs_no_auth(crd: CrdServer) -> None:
    _, info = _answer(crd, order_sign(GOLD_MEMBER, "72148", orderer_npi="1304582715"))
    assert info["pa-needed"] == ["no-auth"]
    assert info["reason"][0]["coding"][0]["code"] == "gold-card"
    assert "doc-purpose" not in info


def test_hospital_outpatient_mri_proposes_the_imaging_center(crd: CrdServer) -> None:
    body = order_sign(GOLD_MEMBER, "72148", place_of_service="22")
    payload, info = _answer(crd, body)
    assert info["pa-needed"] == ["auth-needed"]
    proposals = [card for card in payload["cards"] if card["source"]["topic"]["code"] == "network"]
    assert len(proposals) == 1
    action = proposals[0]["suggestions"][0]["actions"][0]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert action["type"] == "update"
    assert (
        f"{action['resource']['resourceType']}/{action['resource']['id']}"
        == f"ServiceRequest/{order['id']}"
    )
    site = action["resource"]["locationReference"][0]
    assert site["display"] == "Northside Imaging Center"
    assert site["identifier"]["system"] == "http://hl7.org/fhir/sid/us-npi"
    _, office = _answer(crd, order_sign(GOLD_MEMBER, "72148", place_of_service="11"))
    assert office["pa-needed"] == ["auth-needed"]


def test_home_oxygen_needs_documentation_not_auth(crd: CrdServer) -> None:
    _, info = _answer(crd, order_sign(SILVER_MEMBER, "E1390", HCPCS, order_type="DeviceRequest"))
    assert (info["covered"], info["pa-needed"], info["doc-needed"]) == (
        ["covered"],
        ["no-auth"],
        ["clinical"],
    )
    assert info["questionnaire"] == ["http://greenlight.example.org/fhir/Questionnaire/home-oxygen"]


def test_office_visit_needs_nothing(crd: CrdServer) -> None:
    _, info = _answer(crd, order_sign(SILVER_MEMBER, "99213"))
    assert (info["covered"], info["pa-needed"]) == (["covered"], ["no-auth"])
    assert "doc-needed" not in info and "questionnaire" not in info


def test_specialty_drug_needs_auth(crd: CrdServer) -> None:
    _, info = _answer(
        crd, order_sign(SILVER_MEMBER, "327361", RXNORM, order_type="MedicationRequest")
    )
    assert info["pa-needed"] == ["auth-needed"] and info["doc-needed"] == ["clinical"]


def test_excluded_service_is_not_covered_on_silver(crd: CrdServer) -> None:
    _, silver = _answer(crd, order_sign(SILVER_MEMBER, "43775"))
    assert silver["covered"] == ["not-covered"]
    assert silver["pa-needed"] == ["no-auth"]  # CRD 2.0.1 q2 as validators run it
    assert "excluded" in silver["reason"][0]["text"]
    _, gold = _answer(crd, order_sign(GOLD_MEMBER, "43775"))
    assert (gold["covered"], gold["pa-needed"]) == (["covered"], ["auth-needed"])


def test_unknown_code_gets_the_documented_default(crd: CrdServer) -> None:
    _, info = _answer(crd, order_sign(GOLD_MEMBER, "97110"))
    assert (info["covered"], info["pa-needed"], info["info-needed"]) == (
        ["conditional"],
        ["no-auth"],
        ["OTH"],
    )
    assert "claim is adjudicated" in info["reason"][0]["text"]


def test_unknown_member_is_not_covered_not_an_error(crd: CrdServer) -> None:
    payload, info = _answer(crd, order_sign("NOBODY-0001", "72148"))
    assert info["covered"] == ["not-covered"] and info["pa-needed"] == ["no-auth"]
    assert "No member" in info["reason"][0]["text"]
    assert payload["cards"][0]["indicator"] == "warning"


def test_cancelled_coverage_is_not_covered(crd: CrdServer) -> None:
    _, info = _answer(crd, order_sign(CANCELLED_MEMBER, "99213"))
    assert info["covered"] == ["not-covered"]
    assert "not active" in info["reason"][0]["text"]


@pytest.mark.requirement("CRD", "resp-36")
def test_repeated_call_reuses_the_assertion(crd: CrdServer) -> None:
    body = order_sign(GOLD_MEMBER, "72149")
    _, first = _answer(crd, body)
    _, again = _answer(crd, {**body, "hook": "order-sign"})
    assert first["coverage-assertion-id"] == again["coverage-assertion-id"]
    _, other = _answer(crd, order_sign(GOLD_MEMBER, "72158"))
    assert other["coverage-assertion-id"] != first["coverage-assertion-id"]


def test_configuration_can_turn_coverage_information_off(crd: CrdServer) -> None:
    """With coverage information and coverage record updates (`insurance`, see
    test_coverage_records) both off, there is nothing left to say."""
    body = order_sign(GOLD_MEMBER, "72148")
    body["extension"] = {
        "davinci-crd.configuration": {
            "coverage-info": False,
            "insurance": False,
            "unknown-option": 3,
        }
    }
    response = crd.call(SERVICE, body)
    assert response.status_code == 200
    assert response.json() == {"cards": [], "systemActions": []}


def test_shared_subscriber_id_is_resolved_by_the_patient(crd: CrdServer) -> None:
    """The Alvarez family shares subscriber id GLH40021871: the EHR's patient decides who it is."""
    body = order_sign("GLH40021871", "99213")
    body["prefetch"]["patient"] = {
        "resourceType": "Patient",
        "id": "ehr-daniel",
        "name": [{"family": "Alvarez", "given": ["Daniel"]}],
        "birthDate": "1977-09-30",
    }
    _, info = _answer(crd, body)
    assert info["covered"] == ["covered"]
    body["prefetch"]["patient"] = {**body["prefetch"]["patient"], "birthDate": "1901-01-01"}
    body["hookInstance"] = "0b8f0a5e-6f0e-4f6e-9a8e-1a2b3c4d5e6f"
    _, unknown = _answer(crd, body)
    assert unknown["covered"] == ["not-covered"]


def test_documentation_needed_offers_the_dtr_app_with_the_assertion(crd: CrdServer) -> None:
    payload, info = _answer(crd, order_sign(GOLD_MEMBER, "72148"))
    launch = [
        card for card in payload["cards"] if card.get("links", [{}])[0].get("type") == "smart"
    ]
    assert len(launch) == 1
    link = launch[0]["links"][0]
    assert link["url"] == DTR_APP_URL
    context = json.loads(link["appContext"])
    assert context["coverageAssertionId"] == info["coverage-assertion-id"][0]
    assert context["questionnaire"] == [LUMBAR_MRI_FORM]
    office, _ = _answer(crd, order_sign(GOLD_MEMBER, "99213"))
    assert not [c for c in office["cards"] if c.get("links", [{}])[0].get("type") == "smart"]


def test_two_coverages_give_one_update_per_order_carrying_both_answers(crd: CrdServer) -> None:
    """A patient with two Coverages in the EHR (the Gold plan, and an id no member has): the
    order comes back in one `update` holding a coverage-information extension per Coverage.
    Two updates of the same order, one per coverage, would each erase the other when applied."""
    body = order_sign(GOLD_MEMBER, "72148")
    other = ehr_coverage("NOBODY-2")
    body["prefetch"]["coverage"]["entry"].append({"resource": other})
    response = crd.call(SERVICE, body)
    assert response.status_code == 200, response.text
    actions = response.json()["systemActions"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    updates = [a for a in actions if a["resource"]["id"] == order["id"]]
    assert len(updates) == 1, actions
    infos = coverage_information({"systemActions": updates})
    by_coverage = {info["coverage"][0]["reference"]: info for info in infos}
    assert set(by_coverage) == {
        f"Coverage/{ehr_coverage(GOLD_MEMBER)['id']}",
        f"Coverage/{other['id']}",
    }
    assert by_coverage[f"Coverage/{other['id']}"]["covered"] == ["not-covered"]
    assert by_coverage[f"Coverage/{ehr_coverage(GOLD_MEMBER)['id']}"]["pa-needed"] == [
        "auth-needed"
    ]
