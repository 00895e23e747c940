"""The CRD 2.0.1 `ext-coverage-information` extension and the system action carrying it.

Coverage information is never a card: it is an `update` system action of the order carrying the
extension (CRD resp-25). Element names and cardinalities are CRD 2.0.1's: `doc-needed` 0..1, no
`expiry-date`. Invariants kept: q1 questionnaire only with doc-needed, q3 info-needed only with a
conditional answer, q5 satisfied-pa-id iff satisfied, and q2 per version: CRD 2.0.1's FHIRPath,
as the HL7 validator evaluates it, requires pa-needed even on a not-covered answer (its left side
is empty, and an empty result fails), while CRD 2.2 forbids pa-needed there. A not-covered answer
therefore says `no-auth` for 2.0.1 callers (no authorization can or need be sought) and nothing
for callers that request 2.2.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from app.rules.engine import Decision

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def _sub(url: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"url": url, value_key: value}


def coverage_information(
    decision: Decision,
    *,
    coverage_reference: str,
    assertion_id: str,
    today: date,
    satisfied_pa_id: str | None = None,
    crd_22: bool = False,
) -> dict[str, Any]:
    """One ext-coverage-information instance for `decision` about the client's Coverage."""
    parts: list[dict[str, Any]] = [
        _sub("coverage", "valueReference", {"reference": coverage_reference}),
        _sub("covered", "valueCode", decision.covered),
    ]
    pa_needed = decision.pa_needed
    if pa_needed is None and decision.covered == "not-covered" and not crd_22:
        pa_needed = "no-auth"  # CRD 2.0.1 crd-ci-q2 as validators evaluate it
    if pa_needed:
        parts.append(_sub("pa-needed", "valueCode", pa_needed))
    if decision.doc_needed:
        parts.append(_sub("doc-needed", "valueCode", decision.doc_needed))
        parts.extend(_sub("doc-purpose", "valueCode", p) for p in decision.doc_purpose)
    if "conditional" in (decision.covered, decision.pa_needed, decision.doc_needed):
        parts.extend(_sub("info-needed", "valueCode", i) for i in decision.info_needed)
    parts.extend(_sub("billingCode", "valueCoding", dict(c)) for c in decision.billing_codes)
    parts.extend(
        _sub("reason", "valueCodeableConcept", r.codeable_concept()) for r in decision.reasons
    )
    if decision.doc_needed:
        parts.extend(_sub("questionnaire", "valueCanonical", q) for q in decision.questionnaires)
    parts.append(_sub("date", "valueDate", today.isoformat()))
    parts.append(_sub("coverage-assertion-id", "valueString", assertion_id))
    if decision.pa_needed == "satisfied" and satisfied_pa_id:
        parts.append(_sub("satisfied-pa-id", "valueString", satisfied_pa_id))
    return {"url": EXTENSION_URL, "extension": parts}


def annotated(
    resource: dict[str, Any], extension: dict[str, Any], coverage_reference: str
) -> dict[str, Any]:
    """A copy of `resource` with its coverage information for this coverage replaced."""
    updated = copy.deepcopy(resource)
    kept = [
        existing
        for existing in updated.get("extension") or []
        if not (
            existing.get("url") == EXTENSION_URL and _coverage_of(existing) == coverage_reference
        )
    ]
    updated["extension"] = [*kept, extension]
    return updated


def _coverage_of(extension: dict[str, Any]) -> str | None:
    for part in extension.get("extension") or []:
        if part.get("url") == "coverage":
            reference = (part.get("valueReference") or {}).get("reference")
            return str(reference) if reference else None
    return None


def existing_information(
    resource: dict[str, Any], coverage_reference: str
) -> dict[str, Any] | None:
    """The coverage information the order already carries for this coverage, if any."""
    for existing in resource.get("extension") or []:
        if existing.get("url") == EXTENSION_URL and _coverage_of(existing) == coverage_reference:
            return dict(existing)
    return None


def same_answer(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Equal but for the assertion date (resp-35: send nothing when nothing is new)."""

    def essence(extension: dict[str, Any]) -> list[Any]:
        return [p for p in extension.get("extension") or [] if p.get("url") != "date"]

    return essence(left) == essence(right)


def update_action(resource: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "update", "description": description, "resource": resource}
