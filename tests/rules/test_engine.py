"""The demo topics give the stated answers (the product's ground truth), on real IG orders."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.rules.engine import OrderContext, decide
from app.rules.loader import TopicSet, load_topics
from tests.support.ig_examples import ig_example

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires"
TODAY = date(2026, 11, 23)
GOLD, SILVER = "GL-GOLD-PPO", "GL-SILVER-HMO"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


@pytest.fixture(scope="module")
def topics() -> TopicSet:
    return load_topics(SHIPPED)


def _service(code: str, system: str = CPT) -> dict[str, Any]:
    order = ig_example("ServiceRequest")
    order["code"] = {"coding": [{"system": system, "code": code}]}
    return order


def _device(code: str, system: str = HCPCS) -> dict[str, Any]:
    order = ig_example("DeviceRequest")
    order["codeCodeableConcept"] = {"coding": [{"system": system, "code": code}]}
    return order


def _drug(code: str) -> dict[str, Any]:
    order = ig_example("MedicationRequest")
    order["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": code}]}
    return order


def _practitioner(npi: str) -> dict[str, Any]:
    practitioner = ig_example("Practitioner")
    practitioner["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}]
    return practitioner


@pytest.mark.parametrize("plan", [GOLD, SILVER])
@pytest.mark.parametrize("code", ["72148", "72149", "72158"])
def test_lumbar_mri_needs_auth_and_documentation(topics: TopicSet, plan: str, code: str) -> None:
    decision = decide(topics, OrderContext(_service(code), plan=plan), TODAY)
    assert decision.topic_id == "lumbar-mri"
    assert (decision.covered, decision.pa_needed) == ("covered", "auth-needed")
    assert decision.doc_needed == "clinical" and decision.doc_purpose == ("withpa",)
    assert decision.questionnaires == (
        "http://greenlight.example.org/fhir/Questionnaire/lumbar-mri",
    )
    assert decision.billing_codes == ({"system": CPT, "code": code},)
    assert decision.expiry_date is not None and decision.expiry_date > TODAY
    assert decision.auto_approval_criteria == ("conservative-therapy-6-weeks", "red-flag")


def test_lumbar_mri_gold_carded_orderer_needs_no_auth(topics: TopicSet) -> None:
    ctx = OrderContext(_service("72148"), plan=GOLD, practitioner=_practitioner("1304582715"))
    decision = decide(topics, ctx, TODAY)
    assert decision.pa_needed == "no-auth"
    assert [r.code for r in decision.reasons] == ["gold-card"]
    assert decision.doc_purpose == ()  # CRD q4: no withpa when no auth is needed
    assert "exemption:gold-card" in decision.applied


def test_lumbar_mri_other_orderer_still_needs_auth(topics: TopicSet) -> None:
    ctx = OrderContext(_service("72148"), plan=GOLD, practitioner=_practitioner("1497758544"))
    assert decide(topics, ctx, TODAY).pa_needed == "auth-needed"


def test_lumbar_mri_at_hospital_outpatient_proposes_imaging_center(topics: TopicSet) -> None:
    location = ig_example("Location")
    location["type"] = [{"coding": [{"system": POS, "code": "22"}]}]
    decision = decide(topics, OrderContext(_service("72148"), plan=GOLD, location=location), TODAY)
    assert [p.location for p in decision.site_proposals] == ["Location/northside-imaging-center"]
    assert decision.pa_needed == "auth-needed"
    office = ig_example("Location")
    office["type"] = [{"coding": [{"system": POS, "code": "11"}]}]
    assert (
        decide(
            topics, OrderContext(_service("72148"), plan=GOLD, location=office), TODAY
        ).site_proposals
        == ()
    )


@pytest.mark.parametrize("code", ["E1390", "E0431", "E0424"])
def test_home_oxygen_needs_documentation_not_auth(topics: TopicSet, code: str) -> None:
    decision = decide(topics, OrderContext(_device(code), plan=GOLD), TODAY)
    assert (decision.topic_id, decision.covered, decision.pa_needed) == (
        "home-oxygen",
        "covered",
        "no-auth",
    )
    assert decision.doc_needed == "clinical" and decision.doc_purpose == ("withclaim",)
    assert decision.questionnaires == (
        "http://greenlight.example.org/fhir/Questionnaire/home-oxygen",
    )


def test_hcpcs_system_spellings_are_tolerated(topics: TopicSet) -> None:
    order = _device("e1390", system="http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets")
    assert decide(topics, OrderContext(order, plan=GOLD), TODAY).topic_id == "home-oxygen"


@pytest.mark.parametrize("code", ["99202", "99205", "99211", "99215"])
def test_office_visit_is_covered_without_auth_or_documentation(topics: TopicSet, code: str) -> None:
    decision = decide(topics, OrderContext(_service(code), plan=SILVER), TODAY)
    assert (decision.topic_id, decision.covered, decision.pa_needed) == (
        "office-visit",
        "covered",
        "no-auth",
    )
    assert decision.doc_needed is None and decision.questionnaires == ()


def test_office_visit_range_has_no_gap_codes(topics: TopicSet) -> None:
    assert decide(topics, OrderContext(_service("99210"), plan=SILVER), TODAY).topic_id is None


def test_specialty_drug_needs_auth_with_step_therapy(topics: TopicSet) -> None:
    decision = decide(topics, OrderContext(_drug("327361"), plan=SILVER), TODAY)
    assert (decision.topic_id, decision.pa_needed) == ("adalimumab", "auth-needed")
    assert decision.doc_needed == "clinical"
    assert decision.questionnaires == (
        "http://greenlight.example.org/fhir/Questionnaire/adalimumab",
    )


def test_excluded_service_is_not_covered_on_silver_only(topics: TopicSet) -> None:
    silver = decide(topics, OrderContext(_service("43775"), plan=SILVER), TODAY)
    assert silver.covered == "not-covered"
    assert silver.pa_needed is None  # CRD q2: not-covered carries no pa-needed
    assert silver.reasons and "excluded" in (silver.reasons[0].text or "")
    gold = decide(topics, OrderContext(_service("43775"), plan=GOLD), TODAY)
    assert (gold.covered, gold.pa_needed) == ("covered", "auth-needed")


def test_code_no_topic_names_gets_the_documented_default(topics: TopicSet) -> None:
    decision = decide(topics, OrderContext(_service("G0180", HCPCS), plan=GOLD), TODAY)
    assert decision.topic_id is None
    assert (decision.covered, decision.pa_needed) == ("conditional", "no-auth")
    assert decision.info_needed == ("OTH",)  # CRD q3: conditional needs info-needed
    assert decision.reasons and decision.reasons[0].text  # CRD q6: OTH needs a reason
    assert decision.applied == ("default",)


def test_topic_limited_to_plans_does_not_answer_other_plans(topics: TopicSet) -> None:
    assert (
        decide(topics, OrderContext(_service("72148"), plan="SOME-OTHER-PLAN"), TODAY).topic_id
        is None
    )
