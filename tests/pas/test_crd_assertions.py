"""PAS honours a non-expired CRD coverage assertion (CRD found-11: coverage guidance is retained
and honoured when adjudicating), but only for the order as it was asked about.

The flow is real: the kit's approval Bundle's own ServiceRequest goes through CRD order-sign on
the same server; the order CRD returns, annotated with its coverage-assertion-id, is what the
PAS request carries.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import INFERNO_FIXTURES
from tests.pas.conftest import PasServer, kit_bundle, review_actions
from tests.support.conformance import assert_conforms

CPT = "http://www.ama-assn.org/go/cpt"
OFFICE_VISIT, LUMBAR_MRI = "99213", "72148"
ORDER_SIGN_BODIES = (
    INFERNO_FIXTURES / "davinci-crd-test-kit" / "extracted" / "order_sign_request_bodies.json"
)
RESPONSE_BUNDLE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-response-bundle"
)


def _resource(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    )
    return found


def _crd_annotated_order(pas: PasServer, bundle: dict[str, Any], code: str) -> dict[str, Any]:
    """The bundle's ServiceRequest for `code`, as CRD order-sign returns it (with its assertion)."""
    order = copy.deepcopy(_resource(bundle, "ServiceRequest"))
    order["code"] = {"coding": [{"system": CPT, "code": code}]}
    hook = orjson.loads(ORDER_SIGN_BODIES.read_bytes())[1]
    hook["hookInstance"] = str(uuid.uuid4())
    hook.pop("fhirServer", None)
    hook.pop("fhirAuthorization", None)
    hook["context"]["patientId"] = _resource(bundle, "Patient")["id"]
    hook["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": order}],
    }
    hook["prefetch"] = {
        "patient": _resource(bundle, "Patient"),
        "coverage": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": _resource(bundle, "Coverage")}],
        },
    }
    with httpx.Client(base_url=pas.server.base_url, timeout=30) as client:
        answer = client.post("/cds-services/order-sign-crd", json=hook)
    assert answer.status_code == 200, answer.text
    actions = answer.json()["systemActions"]
    assert len(actions) == 1
    annotated: dict[str, Any] = actions[0]["resource"]
    return annotated


def _with_order(bundle: dict[str, Any], order: dict[str, Any], item_code: str) -> dict[str, Any]:
    changed = copy.deepcopy(bundle)
    for entry in changed["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"] = order
    claim = changed["entry"][0]["resource"]
    claim["item"][0]["productOrService"] = {"coding": [{"system": CPT, "code": item_code}]}
    changed["identifier"]["value"] = f"crd-{uuid.uuid4().hex[:12]}"
    return changed


@pytest.mark.requirement("CRD", "found-11")
def test_a_no_auth_crd_answer_is_honoured_for_the_same_order(pas: PasServer) -> None:
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    order = _crd_annotated_order(pas, bundle, OFFICE_VISIT)
    response = pas.submit(_with_order(bundle, order, OFFICE_VISIT))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_conforms(answer, RESPONSE_BUNDLE, ig="hl7.fhir.us.davinci-pas#2.0.1")
    assert review_actions(answer) == ["A1"]


def test_a_crd_answer_does_not_carry_over_to_a_changed_order(pas: PasServer) -> None:
    """No-auth was asserted for an office visit; the same order re-coded as a lumbar MRI is a
    different request: it is adjudicated afresh (pended: prior auth needed, no documentation)."""
    bundle = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    order = _crd_annotated_order(pas, bundle, OFFICE_VISIT)
    order["code"] = {"coding": [{"system": CPT, "code": LUMBAR_MRI}]}
    response = pas.submit(_with_order(bundle, order, LUMBAR_MRI))
    assert response.status_code == 200, response.text
    assert review_actions(response.json()) == ["A4"]
