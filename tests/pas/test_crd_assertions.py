"""CRD guidance and PAS adjudication on the same server: PAS honours a non-expired CRD coverage
assertion (CRD found-11: coverage guidance is retained and honoured when adjudicating), but only
for the order as it was asked about; and what CRD says about a request is what PAS, deciding it
afresh, decides (CRD found-9: CRD's guidance is as accurate as the payer's other channels).

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

from app.pas.variants import variant, with_service
from tests.conftest import INFERNO_FIXTURES
from tests.crd.hook_requests import coverage_information
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


def _order_sign(pas: PasServer, bundle: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """CRD order-sign's answer for `order`, the EHR holding the bundle's Patient and Coverage
    (prefetched) and the signing user being the bundle's Practitioner."""
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
    practitioner = _resource(bundle, "Practitioner")
    hook["context"]["userId"] = f"Practitioner/{practitioner['id']}"
    hook["prefetch"]["user"] = practitioner
    with httpx.Client(base_url=pas.server.base_url, timeout=30) as client:
        answer = client.post("/cds-services/order-sign-crd", json=hook)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _crd_annotated_order(pas: PasServer, bundle: dict[str, Any], code: str) -> dict[str, Any]:
    """The bundle's ServiceRequest for `code`, as CRD order-sign returns it (with its assertion)."""
    order = copy.deepcopy(_resource(bundle, "ServiceRequest"))
    order["code"] = {"coding": [{"system": CPT, "code": code}]}
    actions = _order_sign(pas, bundle, order)["systemActions"]
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


def _crd_answer(pas: PasServer, bundle: dict[str, Any]) -> tuple[str, str]:
    """(covered, pa-needed) CRD order-sign gives for what the PAS request asks: its
    ServiceRequest for the Claim's first service, as the EHR holds it before any CRD call."""
    order = copy.deepcopy(_resource(bundle, "ServiceRequest"))
    order.pop("extension", None)
    order["code"] = copy.deepcopy(bundle["entry"][0]["resource"]["item"][0]["productOrService"])
    (parts,) = coverage_information(_order_sign(pas, bundle, order))
    return parts["covered"][0], parts["pa-needed"][0]


@pytest.mark.requirement("CRD", "found-9")
@pytest.mark.parametrize(
    ("name", "crd", "pas_actions"),
    [
        ("office-visit", ("covered", "no-auth"), ["NA"]),
        ("approve-gold-card", ("covered", "no-auth"), ["A1"]),
        ("pend", ("covered", "auth-needed"), ["A4"]),
        ("pend-short-therapy", ("covered", "auth-needed"), ["A4"]),
        ("approve-documented", ("covered", "auth-needed"), ["A1"]),
        ("deny-excluded", ("not-covered", "no-auth"), ["A3"]),
        ("deny-inactive", ("not-covered", "no-auth"), ["A3"]),
        ("deny-unknown-member", ("not-covered", "no-auth"), ["A3"]),
    ],
)
def test_crd_guidance_is_what_pas_adjudication_decides(
    pas: PasServer, name: str, crd: tuple[str, str], pas_actions: list[str]
) -> None:
    """For each documented PAS outcome (app/pas/OUTCOMES.md), CRD asked about the same order, for
    the same member and orderer, says the same: not covered where PAS denies; no authorization
    needed where PAS needs none (NA) or approves without documentation (a gold-carded orderer);
    authorization needed where PAS pends for want of documentation or approves on the
    documentation the request carries (CRD cannot see it: the DTR form it asks for supplies it).
    PAS decides each request afresh: its order carries no CRD assertion to honour."""
    approval = kit_bundle("2.0.1", "approval_pa_submit_request_payload")
    bundle = (
        with_service(approval, OFFICE_VISIT) if name == "office-visit" else variant(name, approval)
    )
    _resource(bundle, "ServiceRequest").pop("extension", None)  # no CRD assertion to honour
    response = pas.submit(bundle)
    assert response.status_code == 200, response.text
    assert review_actions(response.json()) == pas_actions
    assert _crd_answer(pas, bundle) == crd
