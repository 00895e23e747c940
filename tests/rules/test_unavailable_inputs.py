"""Decisions when the EHR could not give an input: what depends on it is `indeterminate` with the
reason `technical` naming the input and why; what does not depend on it is answered as usual."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.rules.engine import INDETERMINATE, OrderContext, decide, expression_inputs
from app.rules.loader import TopicSet, compile_topic, load_topics
from app.rules.topic import CRD_TEMP
from tests.rules.test_engine import GOLD, POS, _practitioner, _service

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires"
TODAY = date(2026, 11, 23)
TIMED_OUT = {"practitioner": "no answer within 2 s"}
#: a topic whose answer depends on the patient: members under 18 need documentation
PEDIATRIC_SLEEP_STUDY = {
    "id": "sleep-study",
    "title": "Polysomnography",
    "codes": [{"system": "http://www.ama-assn.org/go/cpt", "values": ["95810"]}],
    "answer": {"covered": "covered", "pa-needed": "no-auth"},
    "conditions": [
        {
            "name": "minor",
            "when": "%patient.birthDate > @2010-01-01",
            "then": {"doc-needed": "clinical", "doc-purpose": ["withorder"]},
        }
    ],
    "documentation": {
        "questionnaires": ["http://greenlight.example.org/fhir/Questionnaire/sleep-study"]
    },
}


@pytest.fixture(scope="module")
def topics() -> TopicSet:
    found = load_topics(SHIPPED)
    found.add(compile_topic(PEDIATRIC_SLEEP_STUDY, Path("sleep-study/topic.yaml")))
    return found


def _technical(decision: Any) -> list[str]:
    return [r.text for r in decision.reasons if (r.system, r.code) == (CRD_TEMP, "technical")]


@pytest.mark.requirement("CRD", "resp-43")
def test_a_missing_orderer_leaves_the_gold_card_exemption_unknown(topics: TopicSet) -> None:
    """Lumbar MRI gold-cards one orderer: without the orderer, whether prior authorization is
    needed is unknown; coverage and documentation do not depend on the orderer."""
    ctx = OrderContext(_service("72148"), plan=GOLD, unavailable=TIMED_OUT)
    decision = decide(topics, ctx, TODAY)
    assert (decision.covered, decision.pa_needed) == ("covered", INDETERMINATE)
    assert decision.doc_needed == "clinical"
    assert decision.info_needed == ("performer",)
    (text,) = _technical(decision)
    assert "prior authorization" in text and "ordering practitioner: no answer within 2 s" in text
    assert "unknown:exemption:gold-card" in decision.applied


def test_what_does_not_depend_on_the_missing_input_is_answered(topics: TopicSet) -> None:
    """An office visit's answer names no orderer or place: the same answer with or without them;
    and a diagnosis-free lumbar MRI for a gold-carded orderer read fine stays `no-auth`."""
    for unavailable in (TIMED_OUT, {"location": "it answered HTTP 503"}):
        with_failure = decide(
            topics, OrderContext(_service("99213"), plan=GOLD, unavailable=unavailable), TODAY
        )
        assert with_failure == decide(topics, OrderContext(_service("99213"), plan=GOLD), TODAY)
    gold = OrderContext(
        _service("72148"),
        plan=GOLD,
        practitioner=_practitioner("1304582715"),
        unavailable={"location": "it answered HTTP 503"},
    )
    decision = decide(topics, gold, TODAY)
    assert decision.pa_needed == "no-auth" and _technical(decision) == []


def test_no_site_of_care_is_proposed_on_a_guess(topics: TopicSet) -> None:
    """Where the order is done decides the alternative site proposal: an unreadable Location
    proposes nothing (and changes nothing else); a place-of-service code read fine still does."""
    unknown = OrderContext(_service("72148"), plan=GOLD, unavailable={"location": "timeout"})
    decision = decide(topics, unknown, TODAY)
    assert decision.site_proposals == () and decision.pa_needed == "auth-needed"
    assert "unknown:site-of-care:hospital-outpatient" in decision.applied
    hospital = {"resourceType": "Location", "type": [{"coding": [{"system": POS, "code": "22"}]}]}
    known = OrderContext(_service("72148"), plan=GOLD, location=hospital)
    assert decide(topics, known, TODAY).site_proposals != ()


@pytest.mark.requirement("CRD", "resp-43")
def test_a_condition_on_a_missing_input_leaves_its_elements_unknown(topics: TopicSet) -> None:
    """A condition reading %patient: without the patient, the element it sets (doc-needed) is
    unknown; once the patient is read, the condition decides as written."""
    order = _service("95810")
    unknown = decide(
        topics, OrderContext(order, unavailable={"patient": "it answered HTTP 500"}), TODAY
    )
    assert (unknown.covered, unknown.pa_needed, unknown.doc_needed) == (
        "covered",
        "no-auth",
        INDETERMINATE,
    )
    assert unknown.info_needed == ("OTH",)
    assert _technical(unknown)[0].startswith("Whether documentation is needed could not")
    child = decide(
        topics, OrderContext(order, patient={"birthDate": "2015-04-02"}), TODAY
    )  # the condition holds
    adult = decide(topics, OrderContext(order, patient={"birthDate": "1970-04-02"}), TODAY)
    assert (child.doc_needed, adult.doc_needed) == ("clinical", None)


def test_expression_inputs_are_the_variables_that_come_from_the_ehr() -> None:
    assert expression_inputs("%orderingNpi = '1' and %location.exists()") == {
        "practitioner",
        "location",
    }
    assert expression_inputs("%plan = 'X' and %diagnoses.exists() and %order.id.exists()") == set()
    assert expression_inputs("%`patient`.birthDate.exists()") == {"patient"}
