"""Completed responses measured against the topic's documentation requirement (what PAS
adjudication reads), stored with their links, and updated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dtr.adaptive import flows_for
from app.dtr.content import content_for
from app.dtr.responses import (
    ASSERTION_TAG_SYSTEM,
    DocumentationEvaluation,
    ResponseEvaluator,
    links_of,
    tagged,
)
from app.rules.loader import load_topics
from tests.dtr.prefill import auto, manual, response_items

ROOT = Path(__file__).resolve().parents[2] / "questionnaires"
GL = "http://greenlight.example.org/fhir"
FLAGS = f"{GL}/CodeSystem/lumbar-red-flags"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)


@pytest.fixture(scope="module")
def evaluator() -> ResponseEvaluator:
    return ResponseEvaluator(load_topics(ROOT), content_for(ROOT), flows_for(ROOT))


def lumbar(red_flag: str, weeks: int | None, *, status: str = "completed") -> dict[str, Any]:
    questionnaire = content_for(ROOT).questionnaire(f"{GL}/Questionnaire/lumbar-mri")
    assert questionnaire is not None
    answers = {
        "diagnosis": [auto({"valueCoding": {"system": ICD, "code": "M54.16"}})],
        "symptom-weeks": [auto({"valueInteger": 9})],
        "red-flags": [manual({"valueCoding": {"system": FLAGS, "code": red_flag}})],
        "neurological-deficit": [manual({"valueBoolean": False})],
        "prior-imaging-done": [manual({"valueBoolean": False})],
    }
    if weeks is not None:
        answers["conservative-therapy-types"] = [
            auto(
                {
                    "valueCoding": {
                        "system": f"{GL}/CodeSystem/conservative-therapy",
                        "code": "nsaid",
                    }
                }
            )
        ]
        answers["conservative-therapy-weeks"] = [auto({"valueInteger": weeks})]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{GL}/Questionnaire/lumbar-mri|1.0.0",
        "status": status,
        "subject": {"reference": "Patient/pat015"},
        "item": response_items(questionnaire["item"], answers),
    }


def test_six_weeks_of_therapy_meets_the_requirement_and_a_criterion(
    evaluator: ResponseEvaluator,
) -> None:
    evaluation = evaluator.evaluate(lumbar("none", 8))
    assert evaluation.topic_id == "lumbar-mri" and evaluation.satisfied
    assert evaluation.criteria_met == ("conservative-therapy-6-weeks",)


def test_short_therapy_is_documented_but_meets_no_criterion(evaluator: ResponseEvaluator) -> None:
    evaluation = evaluator.evaluate(lumbar("none", 3))
    assert evaluation.satisfied and evaluation.criteria_met == ()


def test_missing_therapy_answers_leave_the_requirement_unmet(
    evaluator: ResponseEvaluator,
) -> None:
    evaluation = evaluator.evaluate(lumbar("none", None))
    assert not evaluation.satisfied
    assert evaluation.missing == ("conservative-therapy-types", "conservative-therapy-weeks")


def test_a_red_flag_disables_the_therapy_questions(evaluator: ResponseEvaluator) -> None:
    evaluation = evaluator.evaluate(lumbar("infection", None))
    assert evaluation.satisfied and evaluation.missing == ()
    assert evaluation.criteria_met == ("red-flag",)


def test_an_unfinished_response_is_not_satisfied(evaluator: ResponseEvaluator) -> None:
    evaluation = evaluator.evaluate(lumbar("none", 8, status="in-progress"))
    assert not evaluation.completed and not evaluation.satisfied


def test_adaptive_responses_are_measured_against_the_same_topic(
    evaluator: ResponseEvaluator,
) -> None:
    response = lumbar("cauda-equina", None)
    response["questionnaire"] = "#adaptive"
    response["contained"] = [
        {
            "resourceType": "Questionnaire",
            "id": "adaptive",
            "status": "active",
            "derivedFrom": [f"{GL}/Questionnaire/lumbar-mri-adaptive|1.0.0"],
            "item": [
                {"linkId": "red-flags", "text": "Red flags", "type": "choice", "required": True}
            ],
        }
    ]
    evaluation = evaluator.evaluate(response)
    assert evaluation.topic_id == "lumbar-mri"
    assert evaluation.criteria_met == ("red-flag",)


def test_unknown_questionnaire_has_no_topic(evaluator: ResponseEvaluator) -> None:
    response = lumbar("none", 8)
    response["questionnaire"] = "http://example.org/Questionnaire/other"
    evaluation: DocumentationEvaluation = evaluator.evaluate(response)
    assert evaluation.topic_id is None and not evaluation.satisfied


def with_assertion(response: dict[str, Any], assertion_id: str) -> dict[str, Any]:
    linked = copy.deepcopy(response)
    linked["extension"] = [
        {
            "url": COVERAGE_INFORMATION,
            "extension": [
                {"url": "coverage", "valueReference": {"reference": "Coverage/cov015"}},
                {"url": "covered", "valueCode": "covered"},
                {"url": "date", "valueDate": "2025-06-01"},
                {"url": "coverage-assertion-id", "valueString": assertion_id},
            ],
        },
        {
            "url": "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context",
            "valueReference": {"reference": "ServiceRequest/mri-1"},
        },
    ]
    return linked


def test_links_and_tags() -> None:
    response = with_assertion(lumbar("none", 8), "a-1")
    links = links_of(response)
    assert links.assertion_ids == ("a-1",) and links.contexts == ("ServiceRequest/mri-1",)
    assert tagged(response)["meta"]["tag"] == [{"system": ASSERTION_TAG_SYSTEM, "code": "a-1"}]
    assert "meta" not in tagged(lumbar("none", 8))


def test_store_update_and_find(fhir: httpx.Client) -> None:
    response = with_assertion(lumbar("none", None, status="in-progress"), "assert-store-1")
    created = fhir.post("/QuestionnaireResponse", json=response)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert created.headers["Location"].endswith(f"/QuestionnaireResponse/{stored['id']}/_history/1")
    assert {"system": ASSERTION_TAG_SYSTEM, "code": "assert-store-1"} in stored["meta"]["tag"]

    finished = with_assertion(lumbar("none", 12), "assert-store-1")
    finished["id"] = stored["id"]
    updated = fhir.put(
        f"/QuestionnaireResponse/{stored['id']}",
        json=finished,
        headers={"If-Match": 'W/"1"', "Prefer": "return=OperationOutcome"},
    )
    assert updated.status_code == 200, updated.text
    texts = [i["diagnostics"] for i in updated.json()["issue"]]
    assert "Auto-approval criteria met: conservative-therapy-6-weeks" in texts
    stale = fhir.put(
        f"/QuestionnaireResponse/{stored['id']}", json=finished, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    found = fhir.get(
        "/QuestionnaireResponse", params={"_tag": f"{ASSERTION_TAG_SYSTEM}|assert-store-1"}
    ).json()
    assert [e["resource"]["meta"]["versionId"] for e in found["entry"]] == ["2"]
    minimal = fhir.post(
        "/QuestionnaireResponse", json=lumbar("none", 8), headers={"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 201 and not minimal.content


def test_incomplete_response_is_reported(fhir: httpx.Client) -> None:
    created = fhir.post(
        "/QuestionnaireResponse",
        json=lumbar("none", None, status="in-progress"),
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert created.status_code == 201
    outcome = created.json()
    assert {i["code"] for i in outcome["issue"] if i["severity"] == "warning"} == {
        "incomplete",
        "required",
    }


def test_bad_responses_are_rejected(fhir: httpx.Client) -> None:
    not_a_response = fhir.post("/QuestionnaireResponse", json={"resourceType": "Patient"})
    assert not_a_response.status_code == 400
    mismatch = fhir.put("/QuestionnaireResponse/abc", json={**lumbar("none", 8), "id": "xyz"})
    assert mismatch.status_code == 400
