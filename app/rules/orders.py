"""What an order asks for: its codes and the element they are in, for every CRD order type.

ServiceRequest.code, DeviceRequest.codeCodeableConcept, MedicationRequest
.medicationCodeableConcept, NutritionOrder diet/supplement/formula types, VisionPrescription lens
products, CommunicationRequest payload/reason codes, Appointment serviceType, Encounter type.

A code element may carry CRD's `ext-billing-options` extension: billing codes (e.g. CPT, HCPCS)
that could be billed for the clinical code. Their codings count after the element's own, so a
clinically coded order is still matched by its billing codes (CRD billopt-3: consider any codes
provided). Nothing depends on the extension being there (billopt-2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ORDER_TYPES = (
    "ServiceRequest",
    "DeviceRequest",
    "MedicationRequest",
    "NutritionOrder",
    "VisionPrescription",
    "CommunicationRequest",
    "Appointment",
    "Encounter",
)

_CODE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ServiceRequest": (("code",),),
    "DeviceRequest": (("codeCodeableConcept",),),
    "MedicationRequest": (("medicationCodeableConcept",),),
    "NutritionOrder": (
        ("oralDiet", "type"),
        ("supplement", "type"),
        ("enteralFormula", "baseFormulaType"),
        ("enteralFormula", "additiveType"),
    ),
    "VisionPrescription": (("lensSpecification", "product"),),
    "CommunicationRequest": (("payload", "contentCodeableConcept"), ("reasonCode",)),
    "Appointment": (("serviceType",), ("appointmentType",)),
    "Encounter": (("type",), ("serviceType",)),
}


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if isinstance(node, dict):
        yield from _values(node.get(path[0]), path[1:])


BILLING_OPTIONS = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options"


def _concept_codings(concept: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("code")]


def _billing_options(concept: dict[str, Any]) -> list[dict[str, Any]]:
    """The codings of the concept's ext-billing-options extensions (CRD billopt-3)."""
    found: list[dict[str, Any]] = []
    for extension in concept.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == BILLING_OPTIONS:
            value = extension.get("valueCodeableConcept")
            if isinstance(value, dict):
                found.extend(_concept_codings(value))
    return found


def order_codings(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Coding that says what `order` is for (empty for unknown types or code-less orders):
    the code elements' codings, then the billing options they carry."""
    codings: list[dict[str, Any]] = []
    options: list[dict[str, Any]] = []
    for path in _CODE_PATHS.get(str(order.get("resourceType")), ()):
        for concept in _values(order, path):
            if isinstance(concept, dict):
                codings.extend(_concept_codings(concept))
                options.extend(_billing_options(concept))
    return codings + [c for c in options if c not in codings]


def reason_codings(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The diagnoses an order gives as its reason (reasonCode)."""
    return [
        coding
        for concept in order.get("reasonCode") or []
        if isinstance(concept, dict)
        for coding in concept.get("coding") or []
        if isinstance(coding, dict) and coding.get("code")
    ]
