"""DTR payer-server statements proven over real HTTP, one focused test each: tolerance of small
order changes after CRD (spec-128), the explanation owed when CRD asked for documentation but no
form applies any more (oper-8), one version of a form per set of orders (oper-7), what the
QuestionnaireResponses the server returns may reference and contain (spec-139, spec-140), the
adaptive form served from the payer's own base (spec-24) and nothing kept from it (sec-10), the
coverage-information the server must not hand out (spec-42, spec-43), requests that omit
optional elements (conf-9, conf-12) and need nothing beyond the profiles (conf-8), valid
responses to its own forms processed (conf-10), and one endpoint for every DTR call (spec-6)."""

from __future__ import annotations

import copy
import tarfile
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest

from app.demo.dtr_inputs import ADAPTIVE_REQUEST, ANSWERS, load
from tests.conftest import FHIR_PACKAGES
from tests.crd.hook_requests import coverage_information, order_sign
from tests.dtr.inferno_checks import (
    DTR,
    IG,
    check_adaptive_package,
    check_static_package,
    resources,
)
from tests.dtr.prefill import completed_response, manual, response_items, stored_outcome
from tests.dtr.test_log_errors_and_expand import ig_example
from tests.dtr.test_next_question import FLAG, PRESENTATION, answer, ask
from tests.dtr.test_pas_context import (
    coverage_of,
    package_input,
    pended_request,
    submit,
    trace_number,
)
from tests.dtr.test_questionnaire_package import PRESET, fixture, lumbar_order_input
from tests.support.conformance import assert_conforms
from tests.support.live_server import LiveServer

GL = "http://greenlight.example.org/fhir"
PACKAGE = "/Questionnaire/$questionnaire-package"
MEMBER = "10A3D58WH456"
CPT = "http://www.ama-assn.org/go/cpt"
XHTML = "http://www.w3.org/1999/xhtml"
AUTHOR = "Practitioner/pra1234"  # `manual()` answers' author
COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)


def crd_lumbar_mri(server: LiveServer) -> tuple[dict[str, Any], dict[str, Any], str]:
    """CRD order-sign for a lumbar spine MRI: documentation needed, the lumbar MRI form named."""
    body = order_sign(MEMBER, "72148", fhir_server=False)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        answer_ = client.post("/cds-services/order-sign-crd", json=body)
    assert answer_.status_code == 200, answer_.text
    (info,) = coverage_information(answer_.json())
    assert info["doc-needed"] == ["clinical"]
    assert info["questionnaire"] == [f"{GL}/Questionnaire/lumbar-mri"]
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    return order, coverage, info["coverage-assertion-id"][0]


def context_input(coverage: dict[str, Any], order: dict[str, Any], context: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": coverage},
            {"name": "order", "resource": order},
            {"name": "context", "valueString": context},
        ],
    }


def outcome_issues(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = [p["resource"] for p in body["parameter"] if p["name"] == "operationOutcome"]
    return list(found[0]["issue"]) if found else []


def references(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, reference) of every `reference` string anywhere in `node`."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append((path, value))
            else:
                found.extend(references(value, f"{path}.{key}" if path else key))
    elif isinstance(node, list):
        for value in node:
            found.extend(references(value, path))
    return found


def client_resources(package_input_: dict[str, Any]) -> set[str]:
    """`Type/id` of the resources the DTR client sent (they reside on its FHIR endpoint), and the
    Patient the Coverage names."""
    sent = {
        f"{p['resource']['resourceType']}/{p['resource']['id']}"
        for p in package_input_["parameter"]
        if "resource" in p
    }
    coverage = next(p["resource"] for p in package_input_["parameter"] if p["name"] == "coverage")
    sent.add(coverage["beneficiary"]["reference"])
    return sent


def assert_references_stay_local(response: dict[str, Any], local: set[str]) -> None:
    """DTR spec-139: every reference is to a contained resource or a client resource."""
    contained = {f"#{c['id']}" for c in response.get("contained") or []}
    questionnaire = response.get("questionnaire", "")
    if questionnaire.startswith("#"):
        assert questionnaire in contained
    for path, reference in references(response):
        assert reference in contained or reference in local, (path, reference)


@pytest.mark.requirement("DTR", "spec-128")
def test_minor_order_changes_after_crd_keep_the_package(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    """The order DTR gets differs from the one CRD saw in status, notes, dates and text: it is
    still the same order, so the assertion's form comes back, linked to the assertion."""
    order, coverage, assertion_id = crd_lumbar_mri(dtr_server)
    changed = copy.deepcopy(order)
    changed["status"] = "active" if order.get("status") != "active" else "on-hold"
    changed["note"] = [{"text": "Patient prefers morning appointments"}]
    changed["authoredOn"] = "2026-01-02"
    changed["code"]["text"] = "MRI lumbar spine without contrast"
    response = fhir.post(PACKAGE, json=context_input(coverage, changed, assertion_id))
    (bundle,) = check_static_package(response)
    assert bundle["entry"][0]["resource"]["url"] == f"{GL}/Questionnaire/lumbar-mri"
    (draft,) = resources([bundle], "QuestionnaireResponse")
    (carried,) = [e for e in draft["extension"] if e["url"] == COVERAGE_INFORMATION]
    assert {"url": "coverage-assertion-id", "valueString": assertion_id} in carried["extension"]
    contexts = [
        e["valueReference"]["reference"]
        for e in draft["extension"]
        if e["url"].endswith("/qr-context")
    ]
    assert f"ServiceRequest/{order['id']}" in contexts


@pytest.mark.requirement("DTR", "oper-8")
def test_documentation_asked_by_crd_but_no_form_now_is_explained(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    """CRD said documentation was needed; the order was since changed to a service no rule
    names, so no form applies: the outcome says why and what to do instead."""
    order, coverage, assertion_id = crd_lumbar_mri(dtr_server)
    changed = copy.deepcopy(order)
    changed["code"] = {"coding": [{"system": CPT, "code": "99999"}], "text": "Unlisted service"}
    response = fhir.post(PACKAGE, json=context_input(coverage, changed, assertion_id))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["name"] for p in body["parameter"]] == ["operationOutcome"]
    found = outcome_issues(body)
    warnings = [i["diagnostics"] for i in found if i["severity"] == "warning"]
    assert any(
        "CRD said documentation was needed" in w and "ask CRD again" in w for w in warnings
    ), found
    per_order = [i for i in found if i.get("expression") == [f"ServiceRequest/{order['id']}"]]
    assert per_order and "no coverage rule names this service" in per_order[0]["diagnostics"]


@pytest.mark.requirement("DTR", "oper-8")
def test_unchanged_order_gets_the_form_without_the_explanation(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    order, coverage, assertion_id = crd_lumbar_mri(dtr_server)
    response = fhir.post(PACKAGE, json=context_input(coverage, order, assertion_id))
    check_static_package(response)
    assert not [i for i in outcome_issues(response.json()) if i["severity"] == "warning"]


@pytest.mark.requirement("DTR", "spec-139")
@pytest.mark.requirement("DTR", "spec-140")
def test_static_draft_references_only_client_resources(fhir: httpx.Client) -> None:
    """The draft of a static package references the member, the coverage and the order the
    client sent (resources on the client's endpoint) and contains nothing."""
    request = fixture(PRESET)
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=request))
    (draft,) = resources([bundle], "QuestionnaireResponse")
    assert "contained" not in draft
    assert references(draft)  # subject and qr-context are references
    assert_references_stay_local(draft, client_resources(request))


@pytest.mark.requirement("DTR", "spec-24")
@pytest.mark.requirement("DTR", "spec-43")
@pytest.mark.requirement("DTR", "spec-139")
@pytest.mark.requirement("DTR", "spec-140")
def test_adaptive_responses_stay_local_and_carry_no_coverage_information(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    """The adaptive form, run to completion on the same base and connection as the package call
    (spec-24: `questionnaireAdaptive` is `true`, so `$next-question` is the payer base's own
    operation; a url would have to lie under that base). Launched without CRD, the completed
    responses carry no coverage-information (spec-43). Every response references only its
    contained Questionnaire (the payer-provided adaptive form, spec-140) and client resources."""
    request = load(ADAPTIVE_REQUEST)
    (bundle,) = check_adaptive_package(fhir.post(PACKAGE, json=request))
    questionnaire = bundle["entry"][0]["resource"]
    adaptive = [e for e in questionnaire["extension"] if e["url"].endswith("questionnaireAdaptive")]
    assert len(adaptive) == 1
    if "valueUrl" in adaptive[0]:
        assert adaptive[0]["valueUrl"].startswith(dtr_server.fhir + "/")
    else:
        assert adaptive[0]["valueBoolean"] is True
    (draft,) = resources([bundle], "QuestionnaireResponse")
    local = client_resources(request) | {AUTHOR}  # the clinician answering, on the EHR

    first = ask(fhir, draft)
    flagged = dict(PRESENTATION)
    flagged["red-flags"] = [manual({"valueCoding": {"system": FLAG, "code": "cauda-equina"}})]
    second = ask(fhir, answer(first.json(), flagged))
    final = ask(
        fhir, answer(second.json(), {"prior-imaging-done": [manual({"valueBoolean": False})]})
    )
    steps = [draft, *(r.json() for r in (first, second, final))]
    assert steps[-1]["status"] == "completed", steps[-1]
    assert str(fhir.base_url).rstrip("/") == dtr_server.fhir
    for step in steps:
        assert [c["resourceType"] for c in step["contained"]] == ["Questionnaire"]
        assert step["contained"][0]["derivedFrom"] == [
            f"{questionnaire['url']}|{questionnaire['version']}"
        ]
        assert step["questionnaire"] == f"#{step['contained'][0]['id']}"
        assert_references_stay_local(step, local)
        assert COVERAGE_INFORMATION.encode() not in orjson.dumps(step)


@pytest.mark.requirement("DTR", "spec-42")
def test_pas_launched_dtr_gives_no_satisfied_pa_id(
    dtr_server: LiveServer, fhir: httpx.Client
) -> None:
    """DTR launched from a pended PAS response: neither the package nor the answer to the
    completed response carries a `satisfied-pa-id` (the PAS request itself is the decision)."""
    bundle = pended_request("2.0.1")
    number = trace_number(submit(dtr_server, bundle, "2.0.1"), "2.0.1")
    response = fhir.post(PACKAGE, json=package_input(coverage_of(bundle), number))
    (package,) = check_static_package(response)
    assert b"satisfied-pa-id" not in response.content
    (draft,) = resources([package], "QuestionnaireResponse")
    completed = completed_response(draft, package["entry"][0]["resource"]["item"], ANSWERS)
    for prefer in ("return=representation", "return=OperationOutcome"):
        created = fhir.post("/QuestionnaireResponse", json=completed, headers={"Prefer": prefer})
        assert created.status_code == 201, created.text
        assert b"satisfied-pa-id" not in created.content
        assert created.json()["resourceType"] in ("QuestionnaireResponse", "OperationOutcome")


def _optional(resource: dict[str, Any], required: set[str]) -> list[str]:
    return [k for k in resource if k not in required | {"resourceType", "id"}]


#: Elements 1..1 in the profiles the Inferno preset's resources claim (HRex / US Core Coverage,
#: CRD DeviceRequest); everything else the client may omit. The member id is required too: in
#: `subscriberId` or else in `identifier` (US Core invariant us-core-15), see the next test.
COVERAGE_REQUIRED = {"status", "beneficiary", "payor", "subscriberId"}
ORDER_REQUIRED = {"status", "intent", "codeCodeableConcept", "subject"}


@pytest.mark.requirement("DTR", "conf-9")
@pytest.mark.requirement("DTR", "conf-12")
@pytest.mark.parametrize(
    ("index", "element"),
    [(1, k) for k in _optional(fixture(PRESET)["parameter"][1]["resource"], COVERAGE_REQUIRED)]
    + [(0, k) for k in _optional(fixture(PRESET)["parameter"][0]["resource"], ORDER_REQUIRED)],
)
def test_omitted_optional_elements_are_no_error(
    fhir: httpx.Client, index: int, element: str
) -> None:
    """The Inferno preset request with one element the profiles let the client leave out
    removed: still the home oxygen package, not an error."""
    request = fixture(PRESET)
    assert request["parameter"][1]["name"] == "coverage"
    del request["parameter"][index]["resource"][element]
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=request))
    assert bundle["entry"][0]["resource"]["id"] == "home-oxygen"


@pytest.mark.requirement("DTR", "conf-12")
def test_member_id_in_identifier_instead_of_subscriber_id(fhir: httpx.Client) -> None:
    """us-core-15 lets the member id sit in `Coverage.identifier` (type MB) instead of
    `subscriberId`: the member is found either way."""
    request = fixture(PRESET)
    coverage = request["parameter"][1]["resource"]
    member = coverage.pop("subscriberId")
    coverage["identifier"] = [
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
                ]
            },
            "value": member,
        }
    ]
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=request))
    assert bundle["entry"][0]["resource"]["id"] == "home-oxygen"


def _must_support_top_level() -> set[str]:
    with tarfile.open(FHIR_PACKAGES / "davinci_dtr_2.0.1.tgz") as package:
        member = package.extractfile("package/StructureDefinition-dtr-questionnaireresponse.json")
        assert member is not None
        definition = orjson.loads(member.read())
    return {
        e["path"].split(".")[1]
        for e in definition["snapshot"]["element"]
        if e["path"].count(".") == 1 and (e.get("mustSupport") or e.get("min", 0) >= 1)
    }


@pytest.mark.requirement("DTR", "conf-10")
@pytest.mark.parametrize("shape", ["must-support-only", "with-optional-extras"])
def test_valid_responses_to_own_forms_are_processed(fhir: httpx.Client, shape: str) -> None:
    """A completed response to the payer's lumbar MRI form is accepted and evaluated whether it
    carries only what the QuestionnaireResponse profile makes mandatory or mustSupport, or also
    optional elements a client may add."""
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=lumbar_order_input()))
    questionnaire = bundle["entry"][0]["resource"]
    assert questionnaire["id"] == "lumbar-mri"
    (draft,) = resources([bundle], "QuestionnaireResponse")
    completed = completed_response(draft, questionnaire["item"], ANSWERS)
    if shape == "must-support-only":
        kept = _must_support_top_level()
        assert {"questionnaire", "status", "subject", "authored", "item"} <= kept
        completed = {
            k: v for k, v in completed.items() if k in kept | {"resourceType", "extension"}
        }
        assert "id" not in completed and "meta" not in completed
    else:
        completed["language"] = "en-US"
        completed["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid4()}"}
        completed["text"] = {
            "status": "generated",
            "div": f'<div xmlns="{XHTML}"><p>Lumbar MRI documentation</p></div>',
        }
        completed["author"] = {"reference": AUTHOR}
        completed["source"] = {"reference": AUTHOR}
    texts = stored_outcome(fhir, completed)
    assert "The response meets the documentation requirement of topic lumbar-mri" in texts


# Not claimed for DTR oper-7: that statement is about several versions of one form, which
# Greenlight never returns; this only shows the one version names every order it serves.
def test_one_version_per_form_with_its_orders(fhir: httpx.Client) -> None:
    """Two oxygen orders and an explicitly requested form: every Questionnaire comes back in one
    version only, its draft naming every order it serves. Were a form returned in several
    versions, each version's draft would have to name distinct orders or coverages."""
    request = fixture(PRESET)
    second = copy.deepcopy(request["parameter"][0])
    second["resource"]["id"] = "devreq016"
    request["parameter"].insert(1, second)
    request["parameter"].append(
        {"name": "questionnaire", "valueCanonical": f"{GL}/Questionnaire/home-oxygen|1.0.0"}
    )
    bundles = check_static_package(fhir.post(PACKAGE, json=request))
    contexts: dict[str, list[set[str]]] = {}
    for bundle in bundles:
        questionnaire = bundle["entry"][0]["resource"]
        (draft,) = resources([bundle], "QuestionnaireResponse")
        contexts.setdefault(questionnaire["url"], []).append(
            {
                e["valueReference"]["reference"]
                for e in draft["extension"]
                if e["url"].endswith("/qr-context")
            }
        )
    assert contexts[f"{GL}/Questionnaire/home-oxygen"] == [
        {"Coverage/cov015", "DeviceRequest/devreq015", "DeviceRequest/devreq016"}
    ]
    for versions in contexts.values():  # several versions: each for its own orders/coverages
        assert len({frozenset(named) for named in versions}) == len(versions)


@pytest.mark.requirement("DTR", "spec-6")
def test_one_endpoint_answers_every_dtr_call(dtr_server: LiveServer) -> None:
    """Package, adaptive next question, value set expansion, error log and the completed
    response: all on the one FHIR base the CapabilityStatement describes, one connection."""
    with httpx.Client(base_url=dtr_server.fhir, headers={"Accept": "application/fhir+json"}) as ehr:
        statement = ehr.get("/metadata").json()
        operations = {
            o["name"] for r in statement["rest"][0]["resource"] for o in r.get("operation") or []
        }
        assert {"questionnaire-package", "next-question", "log-questionnaire-errors"} <= operations
        assert {"expand"} <= operations
        (adaptive,) = check_adaptive_package(ehr.post(PACKAGE, json=load(ADAPTIVE_REQUEST)))
        (draft,) = resources([adaptive], "QuestionnaireResponse")
        assert ask(ehr, draft).status_code in (200, 202)
        valueset = resources([adaptive], "ValueSet")[0]
        expanded = ehr.get("/ValueSet/$expand", params={"url": valueset["url"]})
        assert expanded.status_code == 200, expanded.text
        assert expanded.json()["expansion"]["contains"]
        logged = ehr.post(
            "/Questionnaire/$log-questionnaire-errors",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "questionnaire", "valueCanonical": f"{GL}/Questionnaire/lumbar-mri"},
                    {
                        "name": "outcome",
                        "resource": {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {"severity": "warning", "code": "processing", "diagnostics": "x"}
                            ],
                        },
                    },
                ],
            },
        )
        assert logged.status_code == 200, logged.text
        (static,) = check_static_package(ehr.post(PACKAGE, json=lumbar_order_input()))
        (lumbar_draft,) = resources([static], "QuestionnaireResponse")
        completed = copy.deepcopy(lumbar_draft)
        del completed["id"]
        completed["status"] = "completed"
        completed["item"] = response_items(static["entry"][0]["resource"]["item"], ANSWERS)
        assert ehr.post("/QuestionnaireResponse", json=completed).status_code == 201


@pytest.mark.requirement("DTR", "sec-10")
def test_next_question_keeps_nothing(fhir: httpx.Client) -> None:
    """What a DTR client shares through `$next-question` is used to pick the next questions and
    sent back; the server stores no QuestionnaireResponse from it."""
    request = load(ADAPTIVE_REQUEST)
    member = next(p["resource"] for p in request["parameter"] if p["name"] == "coverage")
    subject = member["beneficiary"]["reference"]

    def stored() -> list[str]:
        found = fhir.get("/QuestionnaireResponse", params={"subject": subject})
        assert found.status_code == 200, found.text
        return [e["resource"]["id"] for e in found.json().get("entry") or []]

    before = stored()
    (bundle,) = check_adaptive_package(fhir.post(PACKAGE, json=request))
    (draft,) = resources([bundle], "QuestionnaireResponse")
    first = ask(fhir, draft)
    second = ask(fhir, answer(first.json(), PRESENTATION))
    assert second.status_code in (200, 202)
    assert second.json()["item"]  # the answers came back to the client
    assert stored() == before
    posted = copy.deepcopy(second.json())  # control: what the client does store is found
    posted.pop("id", None)
    created = fhir.post("/QuestionnaireResponse", json=posted)
    assert created.status_code == 201, created.text
    assert sorted(stored()) == sorted([*before, created.json()["id"]])


@pytest.mark.requirement("DTR", "conf-8")
@pytest.mark.parametrize("source", ["ig-example", "kit-conformant"])
def test_profile_conformant_input_is_enough(fhir: httpx.Client, source: str) -> None:
    """Inputs whose every resource conforms to the DTR input profile (the IG's own example, the
    kit's conformant request) get their package: the server needs nothing beyond the profiles."""
    if source == "ig-example":
        request = ig_example("Parameters-QuestionnairePackageInputParamsExample.json")
    else:
        request = fixture("spec/fixtures/questionnaire_package_input_params_conformant.json")
    assert_conforms(request, DTR + "dtr-qpackage-input-parameters", ig=IG)
    bundles = check_static_package(fhir.post(PACKAGE, json=request))
    assert bundles
