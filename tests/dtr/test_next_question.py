"""`POST /fhir/Questionnaire/$next-question` for the adaptive lumbar spine MRI form, driven the
way Inferno's adaptive group drives the kit's dinner sequence (Parameters holding an in-progress
QuestionnaireResponse with its contained Questionnaire; bare QuestionnaireResponses back) and
checked with the same assertions (DTR-A1 to A8)."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import orjson
import pytest

from app.demo.dtr_inputs import (
    ADAPTIVE_REQUEST,
    NEXT_QUESTION_REQUESTS,
    http_post,
    load,
    next_question_requests,
)
from tests.conftest import INFERNO_FIXTURES
from tests.dtr.inferno_checks import (
    check_adaptive_package,
    check_next_question_responses,
    resources,
)
from tests.dtr.prefill import auto, manual

KIT = INFERNO_FIXTURES / "davinci-dtr-test-kit"
GL = "http://greenlight.example.org/fhir"
NEXT = "/Questionnaire/$next-question"
FLAG = f"{GL}/CodeSystem/lumbar-red-flags"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _kit(path: str) -> Any:
    return orjson.loads((KIT / path).read_bytes())


def start(fhir: httpx.Client) -> tuple[dict[str, Any], set[str], set[str]]:
    """The adaptive package for the IG's example member: its draft response, Library urls and
    names (the first call of Inferno's adaptive group, with the request shipped for testers)."""
    body = load(ADAPTIVE_REQUEST)
    bundles = check_adaptive_package(fhir.post("/Questionnaire/$questionnaire-package", json=body))
    libraries = resources(bundles, "Library")
    (draft,) = resources(bundles, "QuestionnaireResponse")
    return draft, {lib["url"] for lib in libraries}, {lib["name"] for lib in libraries}


def ask(fhir: httpx.Client, response: dict[str, Any]) -> httpx.Response:
    return fhir.post(
        NEXT,
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": response}],
        },
    )


def answer(response: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`response` with answers to the questions of its contained Questionnaire (groups mirrored)."""
    updated = copy.deepcopy(response)
    questionnaire = updated["contained"][0]
    given = {}
    for existing in _walk(updated.get("item") or []):
        if existing.get("answer"):
            given[existing["linkId"]] = existing["answer"]
    given.update(answers)

    def build(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if item["type"] == "group":
                children = build(item.get("item") or [])
                if children:
                    out.append({"linkId": item["linkId"], "text": item["text"], "item": children})
            elif item["type"] != "display" and given.get(item["linkId"]):
                out.append(
                    {
                        "linkId": item["linkId"],
                        "text": item["text"],
                        "answer": given[item["linkId"]],
                    }
                )
        return out

    updated["item"] = build(questionnaire.get("item") or [])
    return updated


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found.extend(_walk(item.get("item") or []))
    return found


def link_ids(response: dict[str, Any]) -> list[str]:
    return [i["linkId"] for i in _walk(response["contained"][0].get("item") or [])]


PRESENTATION = {
    "diagnosis": [auto({"valueCoding": {"system": ICD, "code": "M51.16"}})],
    "symptom-weeks": [auto({"valueInteger": 10})],
    "red-flags": [manual({"valueCoding": {"system": FLAG, "code": "none"}})],
    "neurological-deficit": [manual({"valueBoolean": False})],
}


@pytest.mark.requirement("DTR", "spec-36")
@pytest.mark.requirement("DTR", "spec-39")
def test_adaptive_sequence_without_red_flags(fhir: httpx.Client) -> None:
    draft, urls, names = start(fhir)
    first = ask(fhir, draft)
    step1 = first.json()
    assert link_ids(step1) == [
        "presentation",
        "diagnosis",
        "symptom-weeks",
        "red-flags",
        "neurological-deficit",
    ]
    second = ask(fhir, answer(step1, PRESENTATION))
    step2 = second.json()
    assert link_ids(step2)[5:] == [
        "conservative-therapy",
        "conservative-therapy-types",
        "conservative-therapy-weeks",
        "conservative-therapy-response",
        "prior-imaging",
        "prior-imaging-done",
    ]  # two steps at once: the imaging question needs no earlier answer
    therapy = {
        "conservative-therapy-types": [
            auto(
                {
                    "valueCoding": {
                        "system": f"{GL}/CodeSystem/conservative-therapy",
                        "code": "physical-therapy",
                    }
                }
            )
        ],
        "conservative-therapy-weeks": [auto({"valueInteger": 8})],
        "prior-imaging-done": [manual({"valueBoolean": True})],
    }
    third = ask(fhir, answer(step2, therapy))
    step3 = third.json()
    assert link_ids(step3)[-3:] == [
        "prior-imaging-modality",
        "prior-imaging-date",
        "clinical-complete",
    ]
    details = {
        "prior-imaging-modality": [
            auto(
                {
                    "valueCoding": {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "DX",
                    }
                }
            )
        ],
        "prior-imaging-date": [auto({"valueDate": "2025-04-02"})],
    }
    final = ask(fhir, answer(step3, details))
    bodies = check_next_question_responses([first, second, third, final], urls, names)
    done = bodies[-1]
    assert done["contained"][0]["id"] == draft["contained"][0]["id"]
    given = {i["linkId"]: i["answer"] for i in _walk(done["item"]) if i.get("answer")}
    assert given["conservative-therapy-weeks"][0]["valueInteger"] == 8  # answers kept
    assert given["red-flags"][0]["valueCoding"]["code"] == "none"


@pytest.mark.requirement("DTR", "spec-17")
def test_a_red_flag_skips_the_therapy_questions(fhir: httpx.Client) -> None:
    draft, urls, names = start(fhir)
    first = ask(fhir, draft)
    flagged = dict(PRESENTATION)
    flagged["red-flags"] = [manual({"valueCoding": {"system": FLAG, "code": "cauda-equina"}})]
    second = ask(fhir, answer(first.json(), flagged))
    assert "conservative-therapy-weeks" not in link_ids(second.json())
    assert link_ids(second.json())[-1] == "prior-imaging-done"
    final = ask(
        fhir, answer(second.json(), {"prior-imaging-done": [manual({"valueBoolean": False})]})
    )
    bodies = check_next_question_responses([first, second, final], urls, names)
    assert link_ids(bodies[-1])[-1] == "clinical-complete"
    assert "prior-imaging-modality" not in link_ids(bodies[-1])


def _problem(fhir: httpx.Client, response: dict[str, Any]) -> str:
    result = ask(fhir, response)
    assert result.status_code == 400, result.text
    outcome = result.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return " ".join(i["diagnostics"] for i in outcome["issue"])


@pytest.mark.requirement("DTR", "spec-147")
def test_invalid_responses_are_400(fhir: httpx.Client) -> None:
    draft, _, _ = start(fhir)
    step1 = ask(fhir, draft).json()
    no_origin = {**PRESENTATION, "symptom-weeks": [{"valueInteger": 10}]}
    assert "information-origin" in _problem(fhir, answer(step1, no_origin))
    missing = {k: v for k, v in PRESENTATION.items() if k != "red-flags"}
    assert "red-flags" in _problem(fhir, answer(step1, missing))
    bad_code = {
        **PRESENTATION,
        "red-flags": [manual({"valueCoding": {"system": FLAG, "code": "maybe"}})],
    }
    assert "not an answer option" in _problem(fhir, answer(step1, bad_code))
    wrong_type = {**PRESENTATION, "symptom-weeks": [auto({"valueString": "ten"})]}
    assert "valueInteger" in _problem(fhir, answer(step1, wrong_type))
    unknown = answer(step1, PRESENTATION)
    unknown["item"].append({"linkId": "not-asked", "answer": [auto({"valueBoolean": True})]})
    assert "not-asked" in _problem(fhir, unknown)
    canonical = copy.deepcopy(draft)
    canonical["questionnaire"] = f"{GL}/Questionnaire/lumbar-mri-adaptive"
    assert "contained" in _problem(fhir, canonical)


@pytest.mark.requirement("DTR", "spec-147")
@pytest.mark.parametrize(
    ("edit", "element"),
    [
        (lambda r: r.update(authored="yesterday"), "QuestionnaireResponse.authored"),
        (lambda r: r.pop("status"), "QuestionnaireResponse.status"),
        (
            lambda r: r["item"][0]["item"][1].update(bogus=1),
            "QuestionnaireResponse.item[0].item[1].bogus",
        ),
        (
            lambda r: r["item"][0]["item"][1]["answer"][0].update(valueInteger="ten"),
            "QuestionnaireResponse.item[0].item[1].answer[0].valueInteger",
        ),
        (
            lambda r: r["item"][0]["item"][0]["answer"][0].update(valueString="x"),
            "QuestionnaireResponse.item[0].item[0].answer[0]",
        ),
        (
            lambda r: r["item"][0]["item"][1].pop("linkId"),
            "QuestionnaireResponse.item[0].item[1].linkId",
        ),
    ],
)
def test_structurally_invalid_responses_are_400_naming_the_element(
    fhir: httpx.Client, edit: Any, element: str
) -> None:
    """Not R4 (bad primitive, unknown or missing element, two types for one answer): 400 with
    an OperationOutcome naming the element, whichever check (quick or the R4 models) runs."""
    request = copy.deepcopy(load(NEXT_QUESTION_REQUESTS)[1])
    edit(request["parameter"][0]["resource"])
    result = fhir.post(NEXT, json=request)
    assert result.status_code == 400, result.text
    outcome = result.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[element]]


@pytest.mark.parametrize(
    "path",
    [
        "spec/fixtures/next_question_initial_input_params_nonconformant.json",
        "spec/fixtures/next_question_input_params_missing_answer.json",
        "spec/fixtures/next_question_input_params_no_origin_extension.json",
    ],
)
def test_kit_invalid_inputs_are_400(fhir: httpx.Client, path: str) -> None:
    response = fhir.post(NEXT, json=_kit(path))
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.requirement("DTR", "spec-36")
def test_shipped_inferno_adaptive_inputs_pass_the_kit_checks(fhir: httpx.Client) -> None:
    """`app/demo/inferno/`: the adaptive request and the `next_question_requests` list a tester
    gives Inferno's adaptive group, sent verbatim (as Inferno's manual mode does), pass DTR-A1 to
    A8; the list is what `python -m app.demo.dtr_inputs` writes today."""
    package = fhir.post("/Questionnaire/$questionnaire-package", json=load(ADAPTIVE_REQUEST))
    bundles = check_adaptive_package(package)
    libraries = resources(bundles, "Library")
    shipped = load(NEXT_QUESTION_REQUESTS)
    answers = [fhir.post(NEXT, json=request) for request in shipped]
    bodies = check_next_question_responses(
        answers, {lib["url"] for lib in libraries}, {lib["name"] for lib in libraries}
    )
    assert [len(link_ids(b)) for b in bodies] == [5, 11, 12]
    regenerated = next_question_requests(http_post(fhir), load(ADAPTIVE_REQUEST))
    assert regenerated == shipped, (
        "the adaptive form changed: rewrite app/demo/inferno/dtr_next_question_requests.json "
        "with `python -m app.demo.dtr_inputs --server <a running server>/fhir`"
    )


def test_kit_dinner_sequence_is_not_our_form(fhir: httpx.Client) -> None:
    """The kit's dinner requests are well formed, but for Inferno's own adaptive form."""
    for request in _kit("extracted/next_question_requests.adaptive_dinner.json"):
        response = fhir.post(NEXT, json=request)
        assert response.status_code == 400
        assert "not derived from an adaptive form of this payer" in response.text


@pytest.mark.requirement("DTR", "spec-38")
def test_follow_up_calls_answer_within_a_second(fhir: httpx.Client) -> None:
    draft, _, _ = start(fhir)
    step1 = ask(fhir, draft).json()
    request = answer(step1, PRESENTATION)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        assert ask(fhir, request).status_code == 200
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[17] < 1.0  # 90 % of repeat calls under 1 s (spec-38)
