"""`POST /fhir/Questionnaire/$questionnaire-package` with the Inferno DTR kit's inputs, as sent:
the payer server preset's static request (DeviceRequest E0424 for pat015, cov015: home oxygen),
the IG's conformant input and the Postman "respiratory" request (a blood gas panel, LOINC
24338-6: the blood-gas topic), the Postman dinner requests (no code: nothing applies) and the
adaptive request shipped for testers (`app/demo/inferno/`), each checked as Inferno's
`dtr_payer_server` suite does (inferno_checks.py), and the errors DTR requires (spec-130, oper-9,
dtr-1)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from app.demo.dtr_inputs import ADAPTIVE_REQUEST, load
from tests.conftest import INFERNO_FIXTURES
from tests.dtr.inferno_checks import (
    DTR,
    IG,
    check_adaptive_package,
    check_static_package,
    package_bundles,
    resources,
)
from tests.support.conformance import assert_conforms

KIT = INFERNO_FIXTURES / "davinci-dtr-test-kit"
GL = "http://greenlight.example.org/fhir"
PACKAGE = "/Questionnaire/$questionnaire-package"
CPT = "http://www.ama-assn.org/go/cpt"


def fixture(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((KIT / path).read_bytes())
    return loaded


PRESET = "extracted/initial_static_questionnaire_request.json"
CONFORMANT = "spec/fixtures/questionnaire_package_input_params_conformant.json"
POSTMAN = [
    "extracted/postman_static_dinner_questionnaire_package_request.json",
    "extracted/postman_respiratory_questionnaire_package_request.json",
    "extracted/postman_adaptive_dinner_questionnaire_package_request.json",
]
GAS_PANEL = [CONFORMANT, POSTMAN[1]]  # ServiceRequest LOINC 24338-6 "Gas panel - Blood"
DINNER = [POSTMAN[0], POSTMAN[2]]  # ServiceRequest with `code.text` "Dinner" and no coding


def with_questionnaire(body: dict[str, Any], canonical: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["parameter"].append({"name": "questionnaire", "valueCanonical": canonical})
    return changed


def issues(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body["resourceType"] == "OperationOutcome":
        return list(body["issue"])
    outcome = [p["resource"] for p in body["parameter"] if p["name"] == "operationOutcome"]
    return list(outcome[0]["issue"]) if outcome else []


@pytest.mark.requirement("DTR", "oper-10")
@pytest.mark.requirement("DTR", "oper-12")
@pytest.mark.requirement("DTR", "oper-13")
@pytest.mark.requirement("DTR", "spec-87")
@pytest.mark.requirement("DTR", "spec-95")
@pytest.mark.requirement("DTR", "spec-99")
def test_inferno_preset_static_request(fhir: httpx.Client) -> None:
    """The payer-server preset: E0424 (home oxygen) for pat015 gets the home oxygen package."""
    response = fhir.post(PACKAGE, json=fixture(PRESET))
    (bundle,) = check_static_package(response)
    kinds = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert kinds[:2] == [("Questionnaire", "home-oxygen"), kinds[1]]
    assert kinds[1][0] == "QuestionnaireResponse"
    assert [k for k in kinds if k[0] == "Library"] == [
        ("Library", "HomeOxygenPrepopulation"),
        ("Library", "FHIRHelpers"),
        ("Library", "GreenlightCommon"),
    ]
    assert {k[1] for k in kinds if k[0] == "ValueSet"} == {
        "home-oxygen-diagnoses",
        "oxygen-test-types",
        "oxygen-test-conditions",
    }


@pytest.mark.requirement("DTR", "oper-18")
@pytest.mark.requirement("DTR", "spec-122")
def test_draft_response_names_questionnaire_subject_and_context(fhir: httpx.Client) -> None:
    (bundle,) = package_bundles(fhir.post(PACKAGE, json=fixture(PRESET)))
    (draft,) = resources([bundle], "QuestionnaireResponse")
    questionnaire = bundle["entry"][0]["resource"]
    assert draft["questionnaire"] == f"{questionnaire['url']}|{questionnaire['version']}"
    assert draft["status"] == "in-progress"
    assert draft["subject"] == {"reference": "Patient/pat015"}
    contexts = [
        e["valueReference"]["reference"]
        for e in draft["extension"]
        if e["url"].endswith("/qr-context")
    ]
    assert contexts == ["Coverage/cov015", "DeviceRequest/devreq015"]
    uses = [e for e in draft["extension"] if e["url"].endswith("/intendedUse")]
    assert uses[0]["valueCodeableConcept"]["coding"][0]["code"] == "withclaim"
    assert [i["linkId"] for i in draft["item"]] == [
        "diagnosis",
        "qualifying-test",
        "room-air",
        "flow-rate",
        "alternatives-considered",
    ]
    assert_conforms(draft, DTR + "dtr-questionnaireresponse", ig=IG)


@pytest.mark.requirement("DTR", "oper-14")
@pytest.mark.requirement("DTR", "oper-15")
@pytest.mark.requirement("DTR", "oper-16")
def test_value_sets_are_expanded_and_references_versioned(fhir: httpx.Client) -> None:
    (bundle,) = package_bundles(fhir.post(PACKAGE, json=fixture(PRESET)))
    valuesets = {f"{vs['url']}|{vs['version']}": vs for vs in resources([bundle], "ValueSet")}
    questionnaire = bundle["entry"][0]["resource"]
    stack = list(questionnaire["item"])
    while stack:
        item = stack.pop()
        stack.extend(item.get("item") or [])
        if "answerValueSet" in item:
            assert item["answerValueSet"] in valuesets  # version-specific and delivered
    for library in resources([bundle], "Library"):
        for artifact in library.get("relatedArtifact") or []:
            assert "|" in artifact["resource"]
    today = datetime.now(UTC).date().isoformat()
    for valueset in valuesets.values():
        expansion = valueset["expansion"]
        assert expansion["timestamp"] == today
        assert expansion["total"] == len(expansion["contains"]) < 40
        assert_conforms(valueset, "http://hl7.org/fhir/StructureDefinition/ValueSet")


@pytest.mark.requirement("DTR", "oper-10")
@pytest.mark.requirement("DTR", "oper-18")
@pytest.mark.parametrize("path", GAS_PANEL)
def test_kit_gas_panel_inputs_get_the_blood_gas_package(fhir: httpx.Client, path: str) -> None:
    """The IG's conformant input and the Postman "respiratory" request, as sent: the blood gas
    panel is the blood-gas topic's (documentation sent with the order, no prior auth)."""
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=fixture(path)))
    kinds = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert kinds[0] == ("Questionnaire", "blood-gas")
    assert [k for k in kinds if k[0] == "Library"] == [
        ("Library", "BloodGasPrepopulation"),
        ("Library", "FHIRHelpers"),
        ("Library", "GreenlightCommon"),
    ]
    assert {k[1] for k in kinds if k[0] == "ValueSet"} == {
        "blood-gas-indications",
        "blood-gas-reasons",
    }
    (draft,) = resources([bundle], "QuestionnaireResponse")
    assert draft["subject"] == {"reference": "Patient/examplepatient"}
    contexts = [
        e["valueReference"]["reference"]
        for e in draft["extension"]
        if e["url"].endswith("/qr-context")
    ]
    assert contexts == ["Coverage/CoverageExample", "ServiceRequest/ServiceRequestExample"]
    uses = [e for e in draft["extension"] if e["url"].endswith("/intendedUse")]
    assert [u["valueCodeableConcept"]["coding"][0]["code"] for u in uses] == ["withorder"]
    assert_conforms(draft, DTR + "dtr-questionnaireresponse", ig=IG)


@pytest.mark.parametrize("path", DINNER)
def test_kit_dinner_inputs_name_nothing_a_rule_can_match(fhir: httpx.Client, path: str) -> None:
    """The Postman dinner orders carry only the text "Dinner": no coverage rule can name an order
    without a code, so 200 with an informational outcome and no package (testers use the kit's
    preset request, the conformant input or the shipped adaptive request instead)."""
    response = fhir.post(PACKAGE, json=fixture(path))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["name"] for p in body["parameter"]] == ["operationOutcome"]
    texts = [i["diagnostics"] for i in issues(body) if i["severity"] == "information"]
    assert any("the order carries no code (only the text 'Dinner')" in t for t in texts), texts


@pytest.mark.parametrize("path", [CONFORMANT, *POSTMAN])
def test_kit_inputs_naming_a_questionnaire_get_a_conformant_package(
    fhir: httpx.Client, path: str
) -> None:
    body = with_questionnaire(fixture(path), f"{GL}/Questionnaire/home-oxygen")
    bundles = check_static_package(fhir.post(PACKAGE, json=body))
    expected = ["blood-gas", "home-oxygen"] if path in GAS_PANEL else ["home-oxygen"]
    assert [b["entry"][0]["resource"]["id"] for b in bundles] == expected
    for draft in resources(bundles, "QuestionnaireResponse"):
        assert draft["subject"] == {"reference": "Patient/examplepatient"}


def lumbar_order_input() -> dict[str, Any]:
    """The IG's conformant input, its ServiceRequest now an MRI of the lumbar spine."""
    body = fixture(CONFORMANT)
    order = body["parameter"][1]["resource"]
    order["code"] = {"coding": [{"system": CPT, "code": "72148"}], "text": "MRI lumbar spine"}
    order["reasonCode"] = [
        {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.16"}]}
    ]
    return body


def test_lumbar_mri_order_gets_the_lumbar_package(fhir: httpx.Client) -> None:
    (bundle,) = check_static_package(fhir.post(PACKAGE, json=lumbar_order_input()))
    assert bundle["entry"][0]["resource"]["id"] == "lumbar-mri"
    (draft,) = resources([bundle], "QuestionnaireResponse")
    uses = [e for e in draft["extension"] if e["url"].endswith("/intendedUse")]
    assert uses[0]["valueCodeableConcept"]["coding"][0]["code"] == "withpa"


@pytest.mark.requirement("DTR", "spec-23")
@pytest.mark.requirement("DTR", "spec-25")
def test_adaptive_form_package(fhir: httpx.Client) -> None:
    """The adaptive request shipped for Inferno testers (the kit's member, the adaptive form)."""
    (bundle,) = check_adaptive_package(fhir.post(PACKAGE, json=load(ADAPTIVE_REQUEST)))
    questionnaire = bundle["entry"][0]["resource"]
    assert "item" not in questionnaire
    (draft,) = resources([bundle], "QuestionnaireResponse")
    contained = draft["contained"][0]
    assert draft["questionnaire"] == f"#{contained['id']}"
    assert contained["derivedFrom"] == [f"{questionnaire['url']}|{questionnaire['version']}"]


@pytest.mark.requirement("DTR", "oper-9")
def test_unknown_questionnaire_is_a_warning(fhir: httpx.Client) -> None:
    body = with_questionnaire(fixture(CONFORMANT), "http://example.org/Questionnaire/nope")
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == 200
    warnings = [i for i in issues(response.json()) if i["severity"] == "warning"]
    assert any("http://example.org/Questionnaire/nope" in w["diagnostics"] for w in warnings)


def test_changed_since(fhir: httpx.Client) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    body = fixture(PRESET)
    body["parameter"].append({"name": "changedsince", "valueInstant": later})
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["parameter"]] == ["operationOutcome"]
    body["parameter"][-1]["valueInstant"] = "2020-01-01T00:00:00Z"
    package_bundles(fhir.post(PACKAGE, json=body))


@pytest.mark.requirement("DTR", "spec-130")
def test_unknown_member_is_4xx(fhir: httpx.Client) -> None:
    body = fixture(PRESET)
    body["parameter"][1]["resource"]["subscriberId"] = "NOT-A-MEMBER"
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.requirement("DTR", "spec-130")
def test_unknown_context_is_4xx(fhir: httpx.Client) -> None:
    body = fixture(CONFORMANT)
    body["parameter"].append({"name": "context", "valueString": "no-such-assertion"})
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == 404
    (issue,) = response.json()["issue"]
    assert "no-such-assertion" in issue["diagnostics"]
    assert issue["expression"] == ["Parameters.parameter[context].valueString"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("no-coverage", 400),
        ("two-coverages", 400),
        ("only-coverage", 400),
        ("kit-nonconformant", 400),
        ("kit-ri-stubs", 400),
    ],
)
def test_bad_input_is_400(fhir: httpx.Client, change: str, status: int) -> None:
    body = fixture(CONFORMANT)
    if change == "no-coverage":
        body["parameter"] = body["parameter"][1:]
    elif change == "two-coverages":
        body["parameter"].append(copy.deepcopy(body["parameter"][0]))
    elif change == "only-coverage":
        body["parameter"] = body["parameter"][:1]
    elif change == "kit-nonconformant":
        body = fixture("spec/fixtures/questionnaire_package_input_params_non_conformant.json")
    else:
        body = fixture("spec/fixtures/questionnaire_package_input_params_ri.json")
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"]


def test_get_is_not_allowed(fhir: httpx.Client) -> None:
    response = fhir.get(PACKAGE)
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_metadata_lists_the_dtr_operations(fhir: httpx.Client) -> None:
    statement = fhir.get("/metadata").json()
    operations = {
        (r["type"], o["name"])
        for r in statement["rest"][0]["resource"]
        for o in r.get("operation") or []
    }
    assert {
        ("Questionnaire", "questionnaire-package"),
        ("Questionnaire", "next-question"),
        ("Questionnaire", "log-questionnaire-errors"),
        ("ValueSet", "expand"),
    } <= operations


def test_inactive_coverage_gets_no_documentation(fhir: httpx.Client) -> None:
    """Kevin Brennan's coverage was cancelled (app/demo/DEMO.md): no template applies."""
    body = lumbar_order_input()
    body["parameter"][0]["resource"]["subscriberId"] = "GLH50744219"
    response = fhir.post(PACKAGE, json=body)
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["parameter"]] == ["operationOutcome"]
    assert any("not active" in i["diagnostics"] for i in issues(response.json()))
