"""DTR end to end, as an EHR and its DTR app would run it against this payer:

1. CRD order-sign for an MRI of the lumbar spine (member 10A3D58WH456, pat015) answers
   auth-needed with the lumbar MRI Questionnaire and a `coverage-assertion-id`;
2. `$questionnaire-package` with that id as `context` (DTR spec-107) reuses the stored decision;
3. the DTR app runs the package's own CQL (ELM decoded from the Library) over the patient's chart
   to pre-populate the form, the clinician answers the rest, and the response is completed;
4. the completed QuestionnaireResponse is stored, tagged with the assertion, found by it, and
   evaluated against the topic's documentation requirement (and its auto-approval criteria).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from app.dtr.responses import ASSERTION_TAG_SYSTEM
from tests.conftest import INFERNO_FIXTURES
from tests.crd.hook_requests import coverage_information, order_sign
from tests.dtr import patients
from tests.dtr.cql_tools import execute, node_ready
from tests.dtr.inferno_checks import check_static_package, resources
from tests.dtr.prefill import (
    answer_values,
    auto,
    completed_response,
    expressions,
    manual,
    stored_outcome,
)
from tests.support.live_server import LiveServer

GL = "http://greenlight.example.org/fhir"
MEMBER = "10A3D58WH456"


def crd_order_sign(server: LiveServer) -> tuple[dict[str, Any], dict[str, Any], str]:
    body = order_sign(MEMBER, "72148", fhir_server=False)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        answer = client.post("/cds-services/order-sign-crd", json=body)
    assert answer.status_code == 200, answer.text
    (info,) = coverage_information(answer.json())
    assert info["pa-needed"] == ["auth-needed"]
    assert info["questionnaire"] == [f"{GL}/Questionnaire/lumbar-mri"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    return order, coverage, info["coverage-assertion-id"][0]


def package_libraries(bundle: dict[str, Any]) -> dict[str, Any]:
    """The ELM of every Library in the package, as a DTR app reads it."""
    elm = {}
    for library in resources([bundle], "Library"):
        content = next(c for c in library["content"] if c["contentType"] == "application/elm+json")
        elm[library["name"]] = orjson.loads(base64.b64decode(content["data"]))
    return elm


@pytest.mark.requirement("DTR", "spec-107")
def test_crd_to_completed_documentation(dtr_server: LiveServer, fhir: httpx.Client) -> None:
    node_ready()
    order, coverage, assertion_id = crd_order_sign(dtr_server)

    package_input = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": coverage},
            {"name": "order", "resource": order},
            {"name": "context", "valueString": assertion_id},
        ],
    }
    (bundle,) = check_static_package(
        fhir.post("/Questionnaire/$questionnaire-package", json=package_input)
    )
    questionnaire = bundle["entry"][0]["resource"]
    assert questionnaire["url"] == f"{GL}/Questionnaire/lumbar-mri"
    (draft,) = resources([bundle], "QuestionnaireResponse")
    carried = [e for e in draft["extension"] if e["url"].endswith("ext-coverage-information")]
    assert (
        carried
        and {"url": "coverage-assertion-id", "valueString": assertion_id}
        in (carried[0]["extension"])
    )

    chart = orjson.loads(
        orjson.dumps(patients.LUMBAR_PRESENT).replace(b"lumbar-present", b"pat015")
    )
    results = execute(
        "LumbarMRIPrepopulation",
        {"chart": chart},
        libraries=package_libraries(bundle),
        valuesets=resources([bundle], "ValueSet"),
    )["chart"]
    answers: dict[str, list[dict[str, Any]]] = {}
    for item, kind, _library, define in expressions(questionnaire):
        if kind == "initial":
            answers[item["linkId"]] = [
                auto(a) for a in answer_values(item["type"], results[define])
            ]
    assert answers["conservative-therapy-weeks"] == [auto({"valueInteger": 15})]
    flags = f"{GL}/CodeSystem/lumbar-red-flags"
    answers["red-flags"] = [manual({"valueCoding": {"system": flags, "code": "none"}})]
    answers["conservative-therapy-response"] = [manual({"valueString": "Partial relief only"})]

    completed = completed_response(draft, questionnaire["item"], answers)
    texts = stored_outcome(fhir, completed)
    assert "The response meets the documentation requirement of topic lumbar-mri" in texts
    assert "Auto-approval criteria met: conservative-therapy-6-weeks" in texts
    assert f"Linked to coverage assertion {assertion_id}" in texts

    found = fhir.get(
        "/QuestionnaireResponse", params={"_tag": f"{ASSERTION_TAG_SYSTEM}|{assertion_id}"}
    ).json()
    assert found["total"] == 1
    stored = found["entry"][0]["resource"]
    assert stored["status"] == "completed"
    assert stored["questionnaire"] == f"{GL}/Questionnaire/lumbar-mri|1.0.0"
    by_order = fhir.get(
        "/QuestionnaireResponse", params={"context": f"ServiceRequest/{order['id']}"}
    ).json()
    assert [e["resource"]["id"] for e in by_order["entry"]] == [stored["id"]]


@pytest.mark.requirement("DTR", "spec-129")
def test_a_context_of_another_member_is_refused(dtr_server: LiveServer, fhir: httpx.Client) -> None:
    order, _coverage, assertion_id = crd_order_sign(dtr_server)
    other = orjson.loads(
        (
            INFERNO_FIXTURES
            / "davinci-dtr-test-kit"
            / "spec"
            / "fixtures"
            / "questionnaire_package_input_params_conformant.json"
        ).read_bytes()
    )
    other["parameter"][1] = {"name": "order", "resource": order}
    other["parameter"].append({"name": "context", "valueString": assertion_id})
    response = fhir.post("/Questionnaire/$questionnaire-package", json=other)
    assert response.status_code == 400
    assert "another member" in response.json()["issue"][0]["diagnostics"]
