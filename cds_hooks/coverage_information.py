"""The CRD 2.0.1 `ext-coverage-information` extension and the system action carrying it.

Coverage information is never a card: it is an `update` system action of the order carrying the
extension (CRD resp-25). Element names and cardinalities are CRD 2.0.1's: `doc-needed` 0..1, no
`expiry-date`. Invariants kept: q1 questionnaire only with doc-needed, q3 info-needed only with a
conditional answer, q5 satisfied-pa-id iff satisfied, and q2 per version: CRD 2.0.1's FHIRPath,
as the HL7 validator evaluates it, requires pa-needed even on a not-covered answer (its left side
is empty, and an empty result fails), while CRD 2.2 forbids pa-needed there. A not-covered answer
therefore says `no-auth` for 2.0.1 callers (no authorization can or need be sought) and nothing
for callers that request 2.2.

Reasons: the administrative answers carry the CRD 2.2 codes `no-member-found` (resp-44),
`no-active-coverage` and `coverage-not-found` (resp-45) of the CRD temp code system. CRD 2.0.1's
copy of that code system lacks them (a validator would report an unknown code), so 2.0.1 callers
get those reasons as text only.

Technical failures (CRD resp-43): CRD 2.2 callers get `indeterminate` in each element that could
not be determined, with the reason `technical`; CRD 2.0.1 has no `indeterminate`, so its callers
get `conditional` there, with the info-needed that q3 requires and the technical reason as text.

Qualifiers of the answer travel with it (CRD resp-30): the billing codes it holds for, the reason
that qualified it (e.g. the gold-carded orderer) and, for CRD 2.2 callers, `expiry-date` (a
2.2 sub-extension) when the decision has one.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.fhir.json_copy import json_copy
from app.rules.engine import INDETERMINATE, Decision
from app.rules.topic import CRD_TEMP, Reason

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
#: coverageAssertionReasons codes CRD 2.2 added to its temp code system (absent from 2.0.1's)
CRD_22_REASON_CODES = frozenset(
    {"no-member-found", "no-active-coverage", "coverage-not-found", "auth-out-network", "technical"}
)


def _reason_for(reason: Reason, crd_22: bool) -> Reason:
    """The reason as the caller's CRD version can read it (2.0.1: 2.2-only codes as text)."""
    if crd_22 or reason.system != CRD_TEMP or reason.code not in CRD_22_REASON_CODES:
        return reason
    return Reason(text=reason.text or reason.display or str(reason.code))


def _in_version(value: str | None, crd_22: bool) -> str | None:
    """`indeterminate` (CRD 2.2) as CRD 2.0.1 can say it: `conditional`."""
    return "conditional" if value == INDETERMINATE and not crd_22 else value


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
    covered = _in_version(decision.covered, crd_22)
    parts: list[dict[str, Any]] = [
        _sub("coverage", "valueReference", {"reference": coverage_reference}),
        _sub("covered", "valueCode", covered),
    ]
    pa_needed = _in_version(decision.pa_needed, crd_22)
    if pa_needed is None and covered == "not-covered" and not crd_22:
        pa_needed = "no-auth"  # CRD 2.0.1 crd-ci-q2 as validators evaluate it
    if pa_needed:
        parts.append(_sub("pa-needed", "valueCode", pa_needed))
    doc_needed = _in_version(decision.doc_needed, crd_22)
    if doc_needed:
        parts.append(_sub("doc-needed", "valueCode", doc_needed))
        parts.extend(_sub("doc-purpose", "valueCode", p) for p in decision.doc_purpose)
    if "conditional" in (covered, pa_needed, doc_needed):
        parts.extend(_sub("info-needed", "valueCode", i) for i in decision.info_needed)
    parts.extend(_sub("billingCode", "valueCoding", dict(c)) for c in decision.billing_codes)
    parts.extend(
        _sub("reason", "valueCodeableConcept", _reason_for(r, crd_22).codeable_concept())
        for r in decision.reasons
    )
    if decision.doc_needed:
        parts.extend(_sub("questionnaire", "valueCanonical", q) for q in decision.questionnaires)
    parts.append(_sub("date", "valueDate", today.isoformat()))
    if crd_22 and decision.expiry_date:  # 2.2 `expiry-date`: how long the answer holds (resp-30)
        parts.append(_sub("expiry-date", "valueDate", decision.expiry_date.isoformat()))
    parts.append(_sub("coverage-assertion-id", "valueString", assertion_id))
    if decision.pa_needed == "satisfied" and satisfied_pa_id:
        parts.append(_sub("satisfied-pa-id", "valueString", satisfied_pa_id))
    return {"url": EXTENSION_URL, "extension": parts}


def annotated(
    resource: dict[str, Any], extension: dict[str, Any], coverage_reference: str
) -> dict[str, Any]:
    """A copy of `resource` with its coverage information for this coverage replaced."""
    updated = json_copy(resource)
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
