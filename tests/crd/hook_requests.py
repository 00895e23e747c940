"""Hook requests for the demo topics, built from the Inferno kit's own order-sign request (its
envelope, prefetch shape and orders) with the member, order code, orderer and place swapped in.
"""

from __future__ import annotations

import copy
import uuid
from functools import lru_cache
from typing import Any

import orjson

from tests.conftest import INFERNO_FIXTURES

EXTRACTED = INFERNO_FIXTURES / "davinci-crd-test-kit" / "extracted"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NPI = "http://hl7.org/fhir/sid/us-npi"


@lru_cache(maxsize=16)
def _fixture(name: str) -> bytes:
    return (EXTRACTED / name).read_bytes()


def inferno_bodies(name: str) -> list[dict[str, Any]]:
    """The request bodies of one extracted Inferno fixture file (fresh copies)."""
    loaded = orjson.loads(_fixture(name))
    return loaded if isinstance(loaded, list) else [loaded]


def ehr_coverage(member_id: str) -> dict[str, Any]:
    """The EHR's Coverage as these requests send it: the subscriber id and little else."""
    return {
        "resourceType": "Coverage",
        "id": f"ehr-cov-{member_id.lower()}",
        "status": "active",
        "subscriberId": member_id,
        "beneficiary": {"reference": "Patient/pat015"},
        "payor": [{"reference": "Organization/org1234"}],
    }


def order_sign(
    member_id: str,
    code: str,
    system: str = CPT,
    *,
    order_type: str = "ServiceRequest",
    orderer_npi: str | None = None,
    place_of_service: str | None = None,
    prefetch_coverage: bool = True,
    fhir_server: bool = True,
    coverage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An order-sign call for `member_id` ordering `system|code`; the prefetched Coverage is
    `coverage` when given, else `ehr_coverage(member_id)`."""
    template = inferno_bodies("order_sign_request_bodies.json")
    body = copy.deepcopy(template[1] if order_type == "ServiceRequest" else template[0])
    body["hookInstance"] = str(uuid.uuid4())
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    coding = {"system": system, "code": code}
    if order_type == "ServiceRequest":
        order["code"] = {"coding": [coding]}
        if place_of_service:
            order["locationCode"] = [{"coding": [{"system": POS, "code": place_of_service}]}]
    elif order_type == "DeviceRequest":
        order["codeCodeableConcept"] = {"coding": [coding]}
    elif order_type == "MedicationRequest":
        medication = copy.deepcopy(inferno_bodies("order_select_request_bodies.json")[0])
        order = medication["context"]["draftOrders"]["entry"][0]["resource"]
        order["medicationCodeableConcept"] = {"coding": [coding]}
        body["context"]["draftOrders"]["entry"] = [{"resource": order}]
    prefetch: dict[str, Any] = {"patient": body["prefetch"]["patient"]}
    if prefetch_coverage:
        prefetch["coverage"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": coverage or ehr_coverage(member_id)}],
        }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "pra1234",
        "name": [{"family": "Orderer", "given": ["Test"]}],
    }
    if orderer_npi:
        practitioner["identifier"] = [{"system": NPI, "value": orderer_npi}]
    prefetch["user"] = practitioner
    body["prefetch"] = prefetch
    if not fhir_server:
        body.pop("fhirServer", None)
        body.pop("fhirAuthorization", None)
    return body


def coverage_information(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Each system action's coverage-information sub-extensions as {url: [values]}."""
    found = []
    for action in response.get("systemActions") or []:
        for extension in action["resource"].get("extension") or []:
            if extension["url"].endswith("ext-coverage-information"):
                parts: dict[str, Any] = {}
                for part in extension["extension"]:
                    value = next(v for k, v in part.items() if k.startswith("value"))
                    parts.setdefault(part["url"], []).append(value)
                found.append(parts)
    return found


#: Each hook's service id and the Inferno CRD kit's request-body fixture for it (the kit's other
#: dispatch file has a hookInstance that is not a UUID: MANIFEST.md).
HOOK_FIXTURES = {
    "appointment-book": ("appointment-book-crd", "appointment_book_request_bodies.json"),
    "encounter-start": ("encounter-start-crd", "encounter_start_request_bodies.json"),
    "encounter-discharge": ("encounter-discharge-crd", "encounter_discharge_request_bodies.json"),
    "order-select": ("order-select-crd", "order_select_request_bodies.json"),
    "order-dispatch": (
        "order-dispatch-crd",
        "order_dispatch_request_bodies.inferno_client_preset.json",
    ),
    "order-sign": ("order-sign-crd", "order_sign_request_bodies.json"),
}
