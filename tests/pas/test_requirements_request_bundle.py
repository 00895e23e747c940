"""PAS request Bundle rules as the payer applies them to `Claim/$submit` (real HTTP, both backends).

The PAS statements about the request Bundle (spec-11 to spec-25) bind the Bundle a client sends;
the payer's side of each is to read the Bundle by that rule and refuse one that breaks it with a
4xx OperationOutcome naming the element, before anything is stored. Each test starts from the
Inferno PAS kit's request payloads (both PAS versions where the rule is shared) and shows the
conformant Bundle answered and the breaking one refused.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import orjson
import pytest

from app.pas.bundle import RequestBundle, references
from app.pas.variants import variant
from tests.pas.conftest import (
    IG,
    INQUIRY_RESPONSE_BUNDLE,
    RESPONSE_BUNDLE,
    PasServer,
    kit,
    kit_bundle,
    review_actions,
    table_counts,
)
from tests.support.conformance import assert_conforms

VERSIONS = ("2.0.1", "2.2.1")
PAS_TEMP = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _approval(version: str) -> dict[str, Any]:
    return kit_bundle(version, "approval_pa_submit_request_payload")


def _ok(pas: PasServer, bundle: dict[str, Any], version: str) -> dict[str, Any]:
    response = pas.submit(bundle, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    return body


def _refused(
    pas: PasServer, bundle: dict[str, Any], version: str, status: int = 400
) -> dict[str, Any]:
    """The 4xx OperationOutcome of a refused request; nothing was stored."""
    before = table_counts(pas.database_url)
    response = pas.submit(bundle, version)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome: dict[str, Any] = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert table_counts(pas.database_url) == before
    return outcome


def _expression(outcome: dict[str, Any]) -> str:
    (expression,) = outcome["issue"][0]["expression"]
    return str(expression)


def _index(bundle: dict[str, Any], resource_type: str) -> int:
    (found,) = [
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == resource_type
    ]
    return found


def _echoed(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in body["entry"]}


def _add_supporting_info(bundle: dict[str, Any], full_url: str) -> None:
    claim = bundle["entry"][0]["resource"]
    infos = claim.setdefault("supportingInfo", [])
    infos.append(
        {
            "sequence": max(int(i["sequence"]) for i in infos) + 1,
            "category": {"coding": [{"system": PAS_TEMP, "code": "additionalInformation"}]},
            "valueReference": {"reference": full_url},
        }
    )


def _as_urn_uuids(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle with every fullUrl a `urn:uuid:` GUID and every reference rewritten to it."""
    request = RequestBundle.stored(bundle)
    new_urls = {entry.index: f"urn:uuid:{uuid.uuid4()}" for entry in request.entries}
    changed = copy.deepcopy(bundle)
    for entry in request.entries:
        for path, reference in references(entry.resource, ""):
            target = request.resolve(reference, entry)
            assert target is not None, (entry.index, path)
            node: Any = changed["entry"][entry.index]["resource"]
            for step in path.strip(".").split(".")[:-1]:
                name, _, position = step.partition("[")
                node = node[name]
                if position:
                    node = node[int(position.rstrip("]"))]
            node["reference"] = new_urls[target.index]
    for entry in request.entries:
        changed["entry"][entry.index]["fullUrl"] = new_urls[entry.index]
    return changed


# --- spec-11 and use-1: FHIR JSON in, FHIR JSON Bundle out -------------------------------------


@pytest.mark.requirement("PAS", "spec-11")
@pytest.mark.requirement("PAS", "use-1")
@pytest.mark.parametrize("version", VERSIONS)
def test_the_exchange_with_the_ehr_is_a_fhir_json_bundle_both_ways(
    pas: PasServer, version: str
) -> None:
    """Every $submit outcome (no action, certified, pended, not certified with an AAA error,
    cancelled) and the $inquire answer are FHIR JSON Bundles (PAS 2.2.1 $inquire: Parameters
    holding Bundles), never anything else; a Bundle encoded otherwise is refused (415), and a
    response format other than JSON cannot be asked for (406)."""
    approval = _approval(version)
    requests = [
        approval,
        variant("approve-gold-card", approval),
        variant("pend", approval),
        variant("deny-unknown-member", approval),
    ]
    if version == "2.2.1":
        requests.append(kit("2.2.1", "claim_update_cancel_all_submit_payload"))
    for bundle in requests:
        response = pas.submit(bundle, version)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        body = orjson.loads(response.content)
        assert body["resourceType"] == "Bundle" and body["type"] == "collection"
        assert_conforms(body, RESPONSE_BUNDLE, ig=IG[version])
    inquired = pas.inquire(kit_bundle(version, "pended_pa_inquire_request_payload"), version)
    assert inquired.status_code == 200
    assert inquired.headers["content-type"].startswith("application/fhir+json")
    answer = orjson.loads(inquired.content)
    bundles = [answer] if version == "2.0.1" else [p["resource"] for p in answer["parameter"]]
    assert bundles
    for bundle in bundles:
        assert_conforms(bundle, INQUIRY_RESPONSE_BUNDLE, ig=IG[version])
    xml = '<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>'
    with pas.client() as client:
        as_xml = client.post(
            pas.url(version, "Claim/$submit"),
            content=xml,
            headers={"Content-Type": "application/fhir+xml"},
        )
        xml_wanted = client.post(
            pas.url(version, "Claim/$submit"),
            content=orjson.dumps(approval),
            headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+xml"},
        )
    assert as_xml.status_code == 415
    assert as_xml.json()["issue"][0]["expression"] == ["Content-Type"]
    assert xml_wanted.status_code == 406
    assert xml_wanted.json()["resourceType"] == "OperationOutcome"


# --- spec-13, spec-18: what the Claim references is in the Bundle, transitively -----------------


@pytest.mark.requirement("PAS", "spec-13")
@pytest.mark.parametrize("version", VERSIONS)
def test_references_are_resolved_through_the_whole_bundle(pas: PasServer, version: str) -> None:
    """The Location is referenced only by the PractitionerRole and the Encounter the Claim points
    at: without it the Bundle is refused, naming the second-level reference."""
    bundle = _approval(version)
    location = _index(bundle, "Location")
    claim_targets = {
        reference for _, reference in references(bundle["entry"][0]["resource"], "Claim")
    }
    assert bundle["entry"][location]["fullUrl"].split("/fhir/")[1] not in claim_targets
    body = _ok(pas, bundle, version)
    assert bundle["entry"][location]["fullUrl"] in _echoed(body)
    del bundle["entry"][location]
    outcome = _refused(pas, bundle, version)
    expression = _expression(outcome)
    assert expression in (
        f"Bundle.entry[{_index(bundle, 'PractitionerRole')}].resource.location[0].reference",
        f"Bundle.entry[{_index(bundle, 'Encounter')}].resource.location[0].location.reference",
    )
    assert outcome["issue"][0]["code"] == "not-found"


def _medication_order(bundle: dict[str, Any], with_medication: bool) -> dict[str, Any]:
    """The Bundle with a MedicationRequest as supporting information, pointing at a Medication
    (included or not) and at the request's Practitioner as prescriber (the IG's example)."""
    changed = copy.deepcopy(bundle)
    practitioner = changed["entry"][_index(changed, "Practitioner")]["fullUrl"]
    medication_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    order = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": f"urn:uuid:{medication_id}"},
        "subject": copy.deepcopy(changed["entry"][0]["resource"]["patient"]),
        "requester": {"reference": practitioner},
    }
    changed["entry"].append({"fullUrl": f"urn:uuid:{order_id}", "resource": order})
    if with_medication:
        medication = {
            "resourceType": "Medication",
            "id": medication_id,
            "code": {"coding": [{"system": RXNORM, "code": "327361", "display": "adalimumab"}]},
        }
        changed["entry"].append({"fullUrl": f"urn:uuid:{medication_id}", "resource": medication})
    _add_supporting_info(changed, f"urn:uuid:{order_id}")
    return changed


@pytest.mark.requirement("PAS", "spec-18")
@pytest.mark.parametrize("version", VERSIONS)
def test_what_supporting_information_references_is_in_the_bundle(
    pas: PasServer, version: str
) -> None:
    with_medication = _medication_order(_approval(version), with_medication=True)
    body = _ok(pas, with_medication, version)
    echoed = _echoed(body)
    for entry in with_medication["entry"][-2:]:
        assert echoed[entry["fullUrl"]] == entry["resource"]
    without = _medication_order(_approval(version), with_medication=False)
    outcome = _refused(pas, without, version)
    order = len(without["entry"]) - 1
    assert _expression(outcome) == f"Bundle.entry[{order}].resource.medicationReference.reference"


# --- spec-14, spec-16, spec-17: entries, their fullUrls and GUIDs -------------------------------


@pytest.mark.requirement("PAS", "spec-14")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_resource_instance_appears_once(pas: PasServer, version: str) -> None:
    bundle = _approval(version)
    patient = bundle["entry"][_index(bundle, "Patient")]
    bundle["entry"].append(copy.deepcopy(patient))
    outcome = _refused(pas, bundle, version)
    assert _expression(outcome) == f"Bundle.entry[{len(bundle['entry']) - 1}].fullUrl"
    assert "PAS spec-14" in outcome["issue"][0]["diagnostics"]


def _relative(bundle: dict[str, Any], index: int) -> None:
    entry = bundle["entry"][index]
    entry["fullUrl"] = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"


def _bad_guid(bundle: dict[str, Any], index: int) -> None:
    bundle["entry"][index]["fullUrl"] = "urn:uuid:patient-1"


def _oid(bundle: dict[str, Any], index: int) -> None:
    bundle["entry"][index]["fullUrl"] = "urn:oid:2.16.840.1.113883.4.642"


def _other_type(bundle: dict[str, Any], index: int) -> None:
    entry = bundle["entry"][index]
    entry["fullUrl"] = entry["fullUrl"].replace("/Patient/", "/Person/")


def _other_id(bundle: dict[str, Any], index: int) -> None:
    bundle["entry"][index]["fullUrl"] += "-2"


def _versioned(bundle: dict[str, Any], index: int) -> None:
    bundle["entry"][index]["fullUrl"] += "/_history/1"


@pytest.mark.requirement("PAS", "spec-16")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("change", [_relative, _bad_guid, _oid, _other_type, _other_id, _versioned])
def test_full_urls_are_the_resource_url_or_a_urn_uuid(
    pas: PasServer, version: str, change: Any
) -> None:
    """Allowed: the URL the client exposes the resource at (the kit's http URLs) or
    `urn:uuid:[GUID]`; anything else is refused naming the entry's fullUrl."""
    bundle = _approval(version)
    patient = _index(bundle, "Patient")
    change(bundle, patient)
    outcome = _refused(pas, bundle, version)
    assert _expression(outcome) == f"Bundle.entry[{patient}].fullUrl"
    assert "PAS spec-16" in outcome["issue"][0]["diagnostics"]


@pytest.mark.requirement("PAS", "spec-16")
@pytest.mark.requirement("PAS", "spec-17")
@pytest.mark.parametrize("version", VERSIONS)
def test_urn_uuid_requests_are_answered_and_every_guid_the_payer_mints_is_new(
    pas: PasServer, version: str
) -> None:
    """Two independent requests with urn:uuid fullUrls are both answered, each echoing the
    client's GUIDs unchanged. The same resource instances sent again under the same GUIDs (the
    exception spec-17 allows) are accepted, and every GUID and id the payer itself mints (response
    Bundle id and identifier, ClaimResponse, CommunicationRequest and Task) is new each time."""
    first = _as_urn_uuids(variant("pend", _approval(version)))
    second = _as_urn_uuids(variant("pend", _approval(version)))
    again = copy.deepcopy(first)
    again["identifier"] = {**again["identifier"], "value": f"GL-{uuid.uuid4().hex}"}
    minted: list[set[str]] = []
    for request in (first, second, again):
        body = _ok(pas, request, version)
        assert review_actions(body)[0] == "A4"
        echoed = _echoed(body)
        for entry in request["entry"][1:]:
            assert echoed[entry["fullUrl"]] == entry["resource"]
        ours = {body["id"], body["identifier"]["value"]}
        for entry in body["entry"]:
            if entry["fullUrl"] not in {e["fullUrl"] for e in request["entry"]}:
                ours |= {entry["fullUrl"], entry["resource"]["id"]}
        assert len(ours) >= 8  # Bundle id and identifier, ClaimResponse, CommunicationRequest, Task
        minted.append(ours)
    assert not minted[0] & minted[1]
    assert not minted[0] & minted[2]
    assert not minted[1] & minted[2]


# --- spec-20, spec-22: supporting information -----------------------------------------------------


@pytest.mark.requirement("PAS", "spec-20")
@pytest.mark.parametrize("version", VERSIONS)
def test_supporting_information_is_pointed_to_by_the_claim(pas: PasServer, version: str) -> None:
    bundle = _approval(version)
    note_id = str(uuid.uuid4())
    observation = {
        "resourceType": "Observation",
        "id": note_id,
        "status": "final",
        "code": {"text": "Weeks of conservative therapy"},
        "subject": copy.deepcopy(bundle["entry"][0]["resource"]["patient"]),
        "valueQuantity": {"value": 8, "unit": "wk"},
    }
    bundle["entry"].append({"fullUrl": f"urn:uuid:{note_id}", "resource": observation})
    outcome = _refused(pas, bundle, version)
    assert _expression(outcome) == f"Bundle.entry[{len(bundle['entry']) - 1}]"
    assert "PAS spec-20" in outcome["issue"][0]["diagnostics"]
    _add_supporting_info(bundle, f"urn:uuid:{note_id}")
    body = _ok(pas, bundle, version)
    assert _echoed(body)[f"urn:uuid:{note_id}"] == observation


@pytest.mark.requirement("PAS", "spec-22")
@pytest.mark.parametrize("version", VERSIONS)
def test_supporting_info_sequences_are_unique(pas: PasServer, version: str) -> None:
    bundle = _approval(version)
    infos = bundle["entry"][0]["resource"]["supportingInfo"]
    assert len({i["sequence"] for i in infos}) == len(infos) > 1
    infos[-1]["sequence"] = infos[0]["sequence"]
    outcome = _refused(pas, bundle, version)
    assert _expression(outcome) == (
        f"Bundle.entry[0].resource.supportingInfo[{len(infos) - 1}].sequence"
    )


# --- spec-25: unsupported elements are ignored, unknown modifiers refused -----------------------


def _decision(body: dict[str, Any]) -> list[tuple[int, str]]:
    items = body["entry"][0]["resource"]["item"]
    return list(zip([i["itemSequence"] for i in items], review_actions(body), strict=True))


def _with_unsupported_elements(bundle: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(bundle)
    claim = changed["entry"][0]["resource"]
    local = {"url": "http://example.org/fhir/StructureDefinition/local-note", "valueString": "x"}
    claim.setdefault("extension", []).append(local)
    claim["fundsReserve"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/fundsreserve", "code": "none"}]
    }
    for item in claim["item"]:
        item.setdefault("extension", []).append(copy.deepcopy(local))
        item["unitPrice"] = {"value": 1200, "currency": "USD"}
    patient = changed["entry"][_index(changed, "Patient")]["resource"]
    patient.setdefault("extension", []).append(copy.deepcopy(local))
    patient["maritalStatus"] = {"text": "married"}
    changed["identifier"] = {**changed["identifier"], "value": f"GL-{uuid.uuid4().hex}"}
    return changed


@pytest.mark.requirement("PAS", "spec-25")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["approve-gold-card", "pend", "deny-excluded"])
def test_unsupported_elements_are_ignored_and_unknown_modifiers_refused(
    pas: PasServer, version: str, name: str
) -> None:
    """Elements this payer does not process (a local extension on the Claim, its items and the
    Patient; `fundsReserve`, `unitPrice`, `maritalStatus`) change nothing in the answer. A
    modifier extension it does not understand is refused (the MAY of spec-25)."""
    bundle = variant(name, _approval(version))
    plain = _decision(_ok(pas, bundle, version))
    assert _decision(_ok(pas, _with_unsupported_elements(bundle), version)) == plain
    modified = copy.deepcopy(bundle)
    modified["entry"][0]["resource"]["item"][0]["modifierExtension"] = [
        {"url": "http://example.org/fhir/StructureDefinition/not-requested", "valueBoolean": True}
    ]
    outcome = _refused(pas, modified, version)
    assert outcome["issue"][0]["code"] == "not-supported"
    assert _expression(outcome) == "Bundle.entry[0].resource.item[0].modifierExtension[0]"


# --- spec-39: synchronous HTTP answers -----------------------------------------------------------


@pytest.mark.requirement("PAS", "spec-39")
@pytest.mark.parametrize("version", VERSIONS)
def test_each_transaction_answers_synchronously_2xx_with_the_result_or_4xx_with_an_outcome(
    pas: PasServer, version: str
) -> None:
    """$submit and $inquire answer in the same HTTP exchange: 200 with the result in the body
    (no 202 and no polling location, even for a pended request), or 4xx with an
    OperationOutcome when the request cannot be processed."""
    with pas.client() as client:
        for operation, body in (
            ("Claim/$submit", variant("pend", _approval(version))),
            ("Claim/$inquire", kit_bundle(version, "pended_pa_inquire_request_payload")),
        ):
            ok = client.post(
                pas.url(version, operation),
                content=orjson.dumps(body),
                headers={"Content-Type": "application/fhir+json"},
            )
            assert ok.status_code == 200, ok.text
            assert "content-location" not in ok.headers
            assert ok.json()["resourceType"] in ("Bundle", "Parameters")
            empty = {"resourceType": "Bundle", "type": "collection"}
            for bad in (empty, {"resourceType": "Claim"}, b"{not json"):
                refused = client.post(
                    pas.url(version, operation),
                    content=bad if isinstance(bad, bytes) else orjson.dumps(bad),
                    headers={"Content-Type": "application/fhir+json"},
                )
                assert 400 <= refused.status_code < 500, refused.text
                outcome = refused.json()
                assert outcome["resourceType"] == "OperationOutcome"
                assert {"severity", "code"} <= set(outcome["issue"][0])
