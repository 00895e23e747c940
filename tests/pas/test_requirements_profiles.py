"""PAS profiles and must-support, from the payer's side, over real HTTP.

- spec-12, spec-23: with `GREENLIGHT_VALIDATION=enforce`, a request whose Claim (or any other
  entry) breaks its PAS profile is refused with 422 naming the element (in the default `warn`
  mode it is accepted and logged); the structural rules (the Claim first) hold in every mode.
- conf-4: every must-support element of the request is processed: the kit's must-support
  payloads are answered item by item, and the must-support elements that decide (service,
  practitioner NPI, member id, supporting information, level of service, certification type) do.
- conf-11, conf-12: the answer never depends on anything but profile-conformant resources and
  their mandatory or must-support elements: the same requests cut down to exactly that get the
  same answers (and still pass the profile validator).
- conf-15: what the payer has to say goes in the PAS elements meant for it, with PAS-defined
  extensions only.
- prof-2, prof-3: every PAS 2.2 Quantity the payer writes has a value and a unit or code, and a
  code only from the X12 quantity units; requests and reviewer decisions breaking that are refused.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.pas.variants import (
    SLEEVE_GASTRECTOMY,
    UNKNOWN_MEMBER,
    variant,
    with_member,
    with_questionnaire_response,
    with_service,
)
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.pas.conftest import (
    IG,
    RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    review_actions,
    start_pas_server,
    table_counts,
)
from tests.pas.profile_elements import element_count, pas_extensions, without_optional_elements
from tests.support.conformance import assert_conforms

VERSIONS = ("2.0.1", "2.2.1")
PAS_SD = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
HL7_EXTENSIONS = "http://hl7.org/fhir/StructureDefinition/"
REVIEW_ACTION = PAS_SD + "extension-reviewAction"
ITEM_TRACE_NUMBER = PAS_SD + "extension-itemTraceNumber"
AUTHORIZED_DETAIL = PAS_SD + "extension-itemAuthorizedDetail"
PREAUTH_PERIOD = PAS_SD + "extension-itemPreAuthPeriod"
LEVEL_OF_SERVICE = PAS_SD + "extension-levelOfServiceCode"
CERTIFICATION_TYPE = PAS_SD + "extension-certificationType"
X12_673 = "https://codesystem.x12.org/005010/673"
CPT = "http://www.ama-assn.org/go/cpt"
LUMBAR_CT = {"coding": [{"system": CPT, "code": "72131"}]}
DENIAL = {"code": "0U", "display": "Medical necessity criteria not met"}


@pytest.fixture(scope="module", params=BACKENDS)
def enforcing(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[PasServer]:
    """A live PAS server that validates inbound requests against the profiles and refuses."""
    yield from start_pas_server(
        request.param, new_database_url, make_settings, validation="enforce"
    )


def _ok(pas: PasServer, bundle: dict[str, Any], version: str) -> dict[str, Any]:
    response = pas.submit(bundle, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    return body


def _refused(pas: PasServer, bundle: dict[str, Any], version: str, status: int) -> list[str]:
    """The expressions of the error issues of a refused request (nothing stored)."""
    before = table_counts(pas.database_url)
    response = pas.submit(bundle, version)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert table_counts(pas.database_url) == before
    return [e for i in outcome["issue"] if i["severity"] == "error" for e in i["expression"]]


def _claim_response(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["entry"][0]["resource"]
    return found


# --- spec-12, spec-23: profile conformance (enforce) --------------------------------------------


@pytest.mark.requirement("PAS", "spec-12")
def test_the_first_entry_is_a_claim_conforming_to_the_pas_claim_profile(
    enforcing: PasServer,
) -> None:
    approval = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    assert review_actions(_ok(enforcing, variant("approve-gold-card", approval), "2.0.1")) == ["A1"]
    moved = copy.deepcopy(approval)
    moved["entry"].append(moved["entry"].pop(0))
    assert _refused(enforcing, moved, "2.0.1", 400) == ["Bundle.entry[0].resource.resourceType"]
    draft = copy.deepcopy(approval)
    draft["entry"][0]["resource"]["status"] = "draft"  # valid R4, not the PAS Claim (active)
    assert "Bundle.entry[0].resource.status" in _refused(enforcing, draft, "2.0.1", 422)
    uncategorized = copy.deepcopy(approval)
    del uncategorized["entry"][0]["resource"]["item"][0]["category"]  # 0..1 in R4, 1..1 in PAS
    expressions = _refused(enforcing, uncategorized, "2.0.1", 422)
    assert "Bundle.entry[0].resource.item[0].category" in expressions


@pytest.mark.requirement("PAS", "spec-23")
def test_every_resource_conforms_to_its_profile(enforcing: PasServer) -> None:
    approval = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    for bundle in kit("2.0.1", "must_support_pa_submit_request_payload"):
        _ok(enforcing, bundle, "2.0.1")
    changes = {
        "Patient": ("gender", "birthDate"),  # PAS Subscriber (US Core Patient): 1..1
        "Coverage": ("payor",),
        "Organization": ("name",),  # the UMO (PAS Requestor): name 1..1
    }
    for resource_type, elements in changes.items():
        broken = copy.deepcopy(approval)
        index = next(
            i
            for i, e in enumerate(broken["entry"])
            if e["resource"]["resourceType"] == resource_type
        )
        for element in elements:
            broken["entry"][index]["resource"].pop(element, None)
        expressions = _refused(enforcing, broken, "2.0.1", 422)
        assert f"Bundle.entry[{index}].resource.{elements[0]}" in expressions, expressions


# --- conf-4: must-support elements are processed --------------------------------------------------


def _trace_numbers(item: dict[str, Any]) -> list[Any]:
    return [
        e["valueIdentifier"] for e in item.get("extension", []) if e["url"] == ITEM_TRACE_NUMBER
    ]


@pytest.mark.requirement("PAS", "conf-4")
@pytest.mark.parametrize("version", VERSIONS)
def test_every_must_support_element_of_the_request_is_processed(
    pas: PasServer, version: str
) -> None:
    for request in kit(version, "must_support_pa_submit_request_payload"):
        body = _ok(pas, request, version)
        claim, answer = request["entry"][0]["resource"], _claim_response(body)
        items = {i["itemSequence"]: i for i in answer["item"]}
        assert set(items) == {i["sequence"] for i in claim["item"]}
        for requested in claim["item"]:
            assert _trace_numbers(items[requested["sequence"]]) == _trace_numbers(requested)
        assert all(i in answer["identifier"] for i in claim["identifier"])
        echoed = {e["fullUrl"] for e in body["entry"]}
        assert {answer[k]["reference"] for k in ("patient", "insurer", "requestor")} <= echoed
    for inquiry in kit(version, "must_support_pa_inquire_request_payload"):
        assert pas.inquire(inquiry, version).status_code == 200
    approval = kit(version, "approval_pa_submit_request_payload")
    first = {  # the decision each must-support element makes
        "as sent (X12 service type, no topic)": (approval, "NA"),
        "item.productOrService lumbar MRI": (with_service(approval, "72148"), "A4"),
        "item.productOrService excluded surgery": (
            with_service(approval, SLEEVE_GASTRECTOMY),
            "A3",
        ),
        "Practitioner.identifier gold-card NPI": (variant("approve-gold-card", approval), "A1"),
        "Coverage subscriber id unknown": (with_member(approval, UNKNOWN_MEMBER), "A3"),
        "supportingInfo questionnaire response": (
            with_questionnaire_response(with_service(approval, "72148"), therapy_weeks=8),
            "A1",
        ),
    }
    for why, (request, action) in first.items():
        assert review_actions(_ok(pas, request, version))[0] == action, why
    # levelOfServiceCode: urgent requests are expedited, elective ones standard
    elective = with_service(approval, "72148")
    for extension in elective["entry"][0]["resource"]["extension"]:
        if extension["url"] == LEVEL_OF_SERVICE:
            extension["valueCodeableConcept"]["coding"][0]["code"] = "E"
    assert pas.case_of(_ok(pas, with_service(approval, "72148"), version))["priority"] == (
        "expedited"
    )
    assert pas.case_of(_ok(pas, elective, version))["priority"] == "standard"
    # item certificationType 3: the item is cancelled
    cancelled = with_service(approval, "72148")
    for extension in cancelled["entry"][0]["resource"]["item"][0]["extension"]:
        if extension["url"] == CERTIFICATION_TYPE:
            extension["valueCodeableConcept"]["coding"][0]["code"] = "3"
    assert review_actions(_ok(pas, cancelled, version))[0] == "C"


# --- conf-11, conf-12: nothing but profiled resources and their mandatory / must-support elements -


def _requests(version: str) -> dict[str, dict[str, Any]]:
    approval = kit(version, "approval_pa_submit_request_payload")
    return {
        "no action": approval,
        "gold card": variant("approve-gold-card", approval),
        "documented": variant("approve-documented", approval),
        "pended, documentation asked for": variant("pend", approval),
        "excluded": variant("deny-excluded", approval),
        "unknown member": variant("deny-unknown-member", approval),
        "must support": kit(version, "must_support_pa_submit_request_payload")[0],
    }


def _answer(body: dict[str, Any]) -> tuple[Any, ...]:
    claim_response = _claim_response(body)
    return (
        review_actions(body),
        claim_response["outcome"],
        "communicationRequest" in claim_response,
        [e["code"] for e in claim_response.get("error", [])],
        [n["text"] for n in claim_response.get("processNote", [])],
    )


@pytest.mark.requirement("PAS", "conf-11")
@pytest.mark.requirement("PAS", "conf-12")
@pytest.mark.parametrize("version", VERSIONS)
def test_answers_depend_only_on_mandatory_and_must_support_elements_of_profiled_resources(
    pas: PasServer, enforcing: PasServer, version: str
) -> None:
    """Each request is cut down to the entries declaring a PAS profile and, in them, the
    elements with min >= 1 or mustSupport (the QuestionnaireResponse DTR supplies is kept as
    sent). The cut-down request gets the same answer as the full one; for PAS 2.0.1 it is sent
    to the enforcing server, so it is also shown to be conformant as cut."""
    server = enforcing if version == "2.0.1" else pas
    removed = 0
    for why, request in _requests(version).items():
        cut = without_optional_elements(request, version)
        cut["identifier"] = {**cut["identifier"], "value": cut["identifier"]["value"] + "-cut"}
        removed += element_count(request) - element_count(cut)
        full = _answer(_ok(server, request, version))
        assert _answer(_ok(server, cut, version)) == full, why
    assert removed > 50  # optional elements there were to remove


# --- conf-15: standard PAS elements carry what the payer says -------------------------------------


def _extension_urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for extension in node.get("extension", []) + node.get("modifierExtension", []):
            url = str(extension.get("url"))
            if "://" in url:
                yield url
        for value in node.values():
            yield from _extension_urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _extension_urls(value)


def _review_action(item: dict[str, Any]) -> dict[str, Any]:
    (adjudication,) = item["adjudication"]
    (action,) = [e for e in adjudication["extension"] if e["url"] == REVIEW_ACTION]
    return {part["url"].rsplit("-", 1)[-1]: part for part in action["extension"]}


@pytest.mark.requirement("PAS", "conf-15")
@pytest.mark.parametrize("version", VERSIONS)
def test_the_payer_says_what_it_has_to_in_the_pas_elements_meant_for_it(
    pas: PasServer, version: str
) -> None:
    approval = kit(version, "approval_pa_submit_request_payload")
    certified = _ok(pas, variant("approve-gold-card", approval), version)
    pended = _ok(pas, variant("pend", approval), version)
    error = _ok(pas, variant("deny-unknown-member", approval), version)
    reviewed = []
    for body in (
        {"decision": "deny", "reason": DENIAL},
        {
            "decision": "approve",
            "items": [{"sequence": 1, "decision": "modify", "service": LUMBAR_CT}],
        },
    ):
        case = pas.case_of(_ok(pas, variant("pend", approval), version))
        decided = pas.decide(case["id"], body)
        assert decided.status_code == 200, decided.text
        with pas.client() as client:
            reference = decided.json()["claimResponse"]
            reviewed.append(client.get(f"/fhir/{reference}").json())
    denied, modified = reviewed
    # the decision and the authorization number: reviewAction (code, number)
    answer = _claim_response(certified)
    action = _review_action(answer["item"][0])
    assert action["reviewActionCode"]["valueCodeableConcept"]["coding"][0]["code"] == "A1"
    assert action["number"]["valueString"] == answer["preAuthRef"]
    assert any(e["url"] == PREAUTH_PERIOD for e in answer["item"][0]["extension"])
    # the reasons: item.noteNumber; a denial reason: reviewAction.reasonCode
    assert answer["item"][0]["noteNumber"]
    reason = _review_action(denied["item"][0])["reasonCode"]["valueCodeableConcept"]
    assert reason["coding"][0]["code"] == DENIAL["code"]
    # a modified authorization: A6 on the item, what is certified in addItem
    modification = _review_action(modified["item"][0])["reviewActionCode"]
    assert modification["valueCodeableConcept"]["coding"][0]["code"] == "A6"
    assert modified["addItem"][0]["productOrService"] == LUMBAR_CT
    # documentation needed: communicationRequest; a business error: error (code and extensions)
    assert _claim_response(pended)["communicationRequest"]
    (problem,) = _claim_response(error)["error"]
    assert problem["code"]["coding"][0]["code"] == "75" and len(problem["extension"]) == 3
    # only extensions the PAS IG (or FHIR itself) defines, in everything the payer wrote
    defined = pas_extensions(version)
    written = [
        e["resource"]
        for body in (certified, pended, error)
        for e in body["entry"]
        if e["resource"]["resourceType"] in ("ClaimResponse", "CommunicationRequest", "Task")
    ] + reviewed
    urls = {url for resource in written for url in _extension_urls(resource)}
    assert len(urls) > 10
    assert {u for u in urls if u not in defined and not u.startswith(HL7_EXTENSIONS)} == set()


# --- prof-2, prof-3: PAS 2.2 Quantities ----------------------------------------------------------


def _quantities(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, value) of every Quantity the PAS 2.2 profiles type with PAS Quantity."""
    if isinstance(node, dict):
        if node.get("url") == "quantity" and "valueQuantity" in node:
            yield f"{path}.valueQuantity", node["valueQuantity"]
        for key, value in node.items():
            if key == "quantity" and isinstance(value, dict):
                yield f"{path}.quantity", value
            else:
                yield from _quantities(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from _quantities(value, f"{path}[{position}]")


@pytest.mark.requirement("PAS", "prof-2")
@pytest.mark.requirement("PAS", "prof-3")
def test_pas_quantities_have_a_value_a_unit_or_x12_code(pas: PasServer) -> None:
    version = "2.2.1"
    approval = kit(version, "approval_pa_submit_request_payload")
    for change, where in (
        ({"value": 2}, "quantity.unit"),
        ({"unit": "visit"}, "quantity.value"),
        ({"value": 2, "system": "http://unitsofmeasure.org", "code": "1"}, "quantity.system"),
    ):
        request = variant("pend", approval)
        request["entry"][0]["resource"]["item"][0]["quantity"] = change
        expressions = _refused(pas, request, version, 400)
        assert expressions == [f"Bundle.entry[0].resource.item[0].{where}"]
    coded = variant("pend", approval)
    coded["entry"][0]["resource"]["item"][0]["quantity"] = {
        "value": 12,
        "unit": "visit",
        "system": X12_673,
        "code": "VS",
    }
    written = [_claim_response(_ok(pas, variant("approve-gold-card", coded), version))]
    ucum = {"value": 4, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    for item in (
        {"sequence": 1, "decision": "partial", "quantity": {"value": 6}},
        {
            "sequence": 1,
            "decision": "modify",
            "quantity": {"value": 8, "unit": "day", "system": X12_673, "code": "DY"},
        },
    ):
        decision = {"decision": "approve", "items": [item]}
        case = pas.case_of(_ok(pas, _fresh(coded), version))
        refused = pas.decide(
            case["id"], {"decision": "approve", "items": [{**item, "quantity": ucum}]}
        )
        assert refused.status_code == 400
        assert refused.json()["issue"][0]["expression"] == ["items[0].quantity.system"]
        answer = pas.decide(case["id"], decision)
        assert answer.status_code == 200, answer.text
        with pas.client() as client:
            written.append(client.get(f"/fhir/{answer.json()['claimResponse']}").json())
    found = [q for resource in written for q in _quantities(resource)]
    assert len(found) >= 3  # certified detail (A1, A2) and the modification's addItem
    for path, quantity in found:
        assert isinstance(quantity.get("value"), int | float), path
        assert quantity.get("unit") or quantity.get("code"), path
        if "code" in quantity:
            assert quantity["system"] == X12_673, path


def _fresh(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same request under a Bundle identifier of its own (a new request)."""
    changed = copy.deepcopy(bundle)
    changed["identifier"] = {**changed["identifier"], "value": f"GL-{uuid.uuid4().hex}"}
    return changed
