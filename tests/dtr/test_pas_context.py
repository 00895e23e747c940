"""DTR launched after a pended prior authorization (DTR spec-109, PAS ainfo-3): PAS `$submit` pends
a lumbar MRI and asks for the payer's questionnaire (Task input `questionnaires-needed` in PAS
2.0.1, `questionnaire-context` in 2.2.1, holding the request's number); `$questionnaire-package`
with that number as `context` gives the lumbar MRI package for the same member, its draft tagged
with the request; the completed QuestionnaireResponse posted back is linked to the request.

The PAS requests are the Inferno PAS kit's pended payload with the lumbar MRI code
(`app.pas.variants`, "pend"), member Joe Smith (`InsuranceExample`, MEM-1234567).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import pytest

from app.demo.dtr_inputs import ANSWERS
from app.dtr.responses import PA_REQUEST_TAG_SYSTEM
from app.pas.variants import variant
from tests.conftest import INFERNO_FIXTURES
from tests.dtr.inferno_checks import check_static_package, resources
from tests.dtr.prefill import completed_response, stored_outcome
from tests.support.live_server import LiveServer

GL = "http://greenlight.example.org/fhir"
PACKAGE = "/Questionnaire/$questionnaire-package"
PAS_KIT = INFERNO_FIXTURES / "davinci-pas-test-kit" / "extracted"
SUBMIT = {"2.0.1": "/fhir/Claim/$submit", "2.2.1": "/fhir/pas-2.2.1/Claim/$submit"}
KIT_DIR = {"2.0.1": "v201", "2.2.1": "v221"}
TASK_INPUT = {"2.0.1": "questionnaires-needed", "2.2.1": "questionnaire-context"}
CONTEXT_PATH = "Parameters.parameter[context].valueString"


def pended_request(version: str) -> dict[str, Any]:
    """The kit's pended `$submit` payload, its service the lumbar MRI (a new Bundle identifier)."""
    path = PAS_KIT / KIT_DIR[version] / "pended_pa_submit_request_payload.json"
    bundle: dict[str, Any] = variant("pend", orjson.loads(path.read_bytes()))
    return bundle


def submit(server: LiveServer, bundle: dict[str, Any], version: str) -> dict[str, Any]:
    with server.client() as client:
        answer = client.post(
            SUBMIT[version],
            content=orjson.dumps(bundle),
            headers={"Content-Type": "application/fhir+json"},
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def trace_number(response: dict[str, Any], version: str) -> str:
    """The number the pended response's Task gives as the questionnaire context (PAS ainfo-6)."""
    (task,) = [e["resource"] for e in response["entry"] if e["resource"]["resourceType"] == "Task"]
    (wanted,) = [i for i in task["input"] if i["type"]["coding"][0]["code"] == TASK_INPUT[version]]
    value = wanted["valueIdentifier"]["value"] if version == "2.0.1" else wanted["valueString"]
    (communication,) = [
        e["resource"]
        for e in response["entry"]
        if e["resource"]["resourceType"] == "CommunicationRequest"
    ]
    assert communication["identifier"][0]["value"] == value
    return str(value)


def coverage_of(bundle: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage"
    )
    return copy.deepcopy(found)


def package_input(coverage: dict[str, Any], context: str) -> dict[str, Any]:
    """What a DTR app launched from the PAS Task sends: the coverage and the context only."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": coverage},
            {"name": "context", "valueString": context},
        ],
    }


def issues(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body["resourceType"] == "OperationOutcome":
        return list(body["issue"])
    found = [p["resource"] for p in body["parameter"] if p["name"] == "operationOutcome"]
    return list(found[0]["issue"]) if found else []


@pytest.mark.requirement("DTR", "spec-109")
@pytest.mark.requirement("PAS", "ainfo-3")
@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_pas_trace_number_gives_the_package_and_links_the_response(
    dtr_server: LiveServer, fhir: httpx.Client, version: str
) -> None:
    bundle = pended_request(version)
    number = trace_number(submit(dtr_server, bundle, version), version)

    coverage = coverage_of(bundle)
    (package,) = check_static_package(fhir.post(PACKAGE, json=package_input(coverage, number)))
    questionnaire = package["entry"][0]["resource"]
    assert questionnaire["url"] == f"{GL}/Questionnaire/lumbar-mri"
    (draft,) = resources([package], "QuestionnaireResponse")
    assert draft["meta"]["tag"] == [
        {"system": PA_REQUEST_TAG_SYSTEM, "code": number, "display": "Prior authorization request"}
    ]
    contexts = [
        e["valueReference"]["reference"]
        for e in draft["extension"]
        if e["url"].endswith("/qr-context")
    ]
    assert contexts == [f"Coverage/{coverage['id']}"]  # the Claim item itself is the order
    uses = [e for e in draft["extension"] if e["url"].endswith("/intendedUse")]
    assert [u["valueCodeableConcept"]["coding"][0]["code"] for u in uses] == ["withpa"]

    completed = completed_response(draft, questionnaire["item"], ANSWERS)
    texts = stored_outcome(fhir, completed)
    assert "The response meets the documentation requirement of topic lumbar-mri" in texts
    assert f"Linked to prior authorization request {number}" in texts
    found = fhir.get(
        "/QuestionnaireResponse", params={"_tag": f"{PA_REQUEST_TAG_SYSTEM}|{number}"}
    ).json()
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["status"] == "completed"


@pytest.mark.requirement("DTR", "spec-109")
def test_a_requester_trace_number_finds_the_members_newest_request(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    """The item trace number the requester sent (the kit sends the same one every time) finds
    the member's newest request with it."""
    bundle = pended_request("2.0.1")
    newest = trace_number(submit(dtr_server, bundle, "2.0.1"), "2.0.1")
    item = bundle["entry"][0]["resource"]["item"][0]
    (requester_number,) = [
        e["valueIdentifier"]["value"] for e in item["extension"] if e["url"].endswith("TraceNumber")
    ]
    body = package_input(coverage_of(bundle), requester_number)
    (package,) = check_static_package(fhir.post(PACKAGE, json=body))
    (draft,) = resources([package], "QuestionnaireResponse")
    assert draft["meta"]["tag"][0]["code"] == newest


@pytest.mark.requirement("DTR", "spec-129")
def test_a_trace_number_of_another_member_is_refused(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    number = trace_number(submit(dtr_server, pended_request("2.0.1"), "2.0.1"), "2.0.1")
    other = orjson.loads(
        (
            INFERNO_FIXTURES
            / "davinci-dtr-test-kit"
            / "spec"
            / "fixtures"
            / "questionnaire_package_input_params_conformant.json"
        ).read_bytes()
    )["parameter"][0]["resource"]  # the IG's example member, PFP123450000
    response = fhir.post(PACKAGE, json=package_input(other, number))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert "another member" in issue["diagnostics"]
    assert issue["expression"] == [CONTEXT_PATH]


@pytest.mark.requirement("DTR", "spec-130")
def test_an_unknown_trace_number_is_404(fhir: httpx.Client) -> None:
    bundle = pended_request("2.0.1")
    response = fhir.post(PACKAGE, json=package_input(coverage_of(bundle), "GLR000000NOSUCH"))
    assert response.status_code == 404, response.text
    (issue,) = response.json()["issue"]
    assert "GLR000000NOSUCH" in issue["diagnostics"]
    assert issue["expression"] == [CONTEXT_PATH]


def test_a_decided_request_needs_no_more_documentation(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    bundle = pended_request("2.0.1")
    number = trace_number(submit(dtr_server, bundle, "2.0.1"), "2.0.1")
    with dtr_server.client() as client:
        decided = client.post(f"/um/cases/{number}/decision", json={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    response = fhir.post(PACKAGE, json=package_input(coverage_of(bundle), number))
    assert response.status_code == 200
    body = response.json()
    assert [p["name"] for p in body["parameter"]] == ["operationOutcome"]
    texts = [i["diagnostics"] for i in issues(body)]
    assert any(f"{number} is no longer pended (approved)" in t for t in texts), texts
