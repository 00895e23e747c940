"""The JSON contract of `POST /um/cases/{id}/decision`, checked in two steps: the body's shape
(`parse_decision`), then its item decisions against the case (`resolve_items`).

    {"decision": "approve" | "partial" | "deny",     for every pended item not listed in items
     "reason": {"code": "<X12 HCR03>", "display": "..."},
     "note": "...",
     "items": [                                      optional: one decision per Claim.item
        {"sequence": 2,                              Claim.item.sequence (= itemSequence)
         "decision": "approve" | "partial" | "modify" | "deny",
         "reason": {"code": "...", "display": "..."},
         "quantity": {"value": 3, "unit": "...", "system": "...", "code": "..."},
         "service": {"coding": [{"system": "...", "code": "...", "display": "..."}]},
         "note": "..."}]}

approve = A1, partial = A2 (e.g. fewer units: `quantity`), modify = A6 (another service and/or
quantity certified: `service`, `quantity`; the ClaimResponse gets an `addItem`), deny = A3
(`app.pas.review`). Refusals are OperationOutcomes whose `expression` names the field
(`items[1].reason`, `items[0].quantity.value`, `decision`):

- 400: the body is not an object; `decision` is not one of approve, partial, deny (modify is per
  item); a denial (case or item) without a specific reason (`reason.code`, an X12 HCR03 code, and
  `reason.display`); `items` not a list of objects, an unknown field in an item, a `sequence`
  that is not a positive integer or is listed twice, an item `decision` not one of the four;
  `quantity` other than with partial or modify, `service` other than with modify; a modify with
  neither, or with both the same as requested; a `quantity` without a positive `value`, a unit
  `code` without its `system` or in another system than the X12 quantity units (PAS prof-3), or
  with neither `unit` nor `code`, its own or the requested item's (PAS prof-2); a `service`
  without a coding (system and code) in one of the code systems of the PAS value set
  X12278RequestedServiceType;
- 400: a `sequence` the Claim has no item for; a partial whose quantity is not less than the
  requested one (in the requested unit); no case-level `decision` while pended items are not
  listed in `items`;
- 409: a listed item that is not pended (it was answered at submission).

A `quantity` given by `value` alone takes its unit (unit, system, code) from the requested item.
An item without its own note takes the case-level note.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from app.fhir.outcomes import FhirError, Issue
from app.pas.codes import REQUESTED_SERVICE_SYSTEMS, X12_673
from app.pas.response import review_action_code
from app.pas.review import ITEM_DECISIONS, ItemDecision

CaseDecision = Literal["approve", "partial", "deny"]
CASE_DECISIONS: tuple[CaseDecision, ...] = ("approve", "partial", "deny")
_ITEM_FIELDS = frozenset({"sequence", "decision", "reason", "quantity", "service", "note"})
_QUANTITY_FIELDS = ("value", "unit", "system", "code")
_UNIT_FIELDS = ("unit", "system", "code")


@dataclass(frozen=True)
class ReviewDecision:
    """A checked decision body: the case-level decision and the listed item decisions."""

    decision: CaseDecision | None
    reason_code: str | None = None
    reason_display: str | None = None
    note: str | None = None
    items: tuple[ItemDecision, ...] = ()

    def record(self, resolved: list[ItemDecision]) -> dict[str, Any]:
        """What the case keeps (`review_cases.decision`) and the AuditEvent carries."""
        return {
            "decision": self.decision,
            "reason": {"code": self.reason_code, "display": self.reason_display}
            if self.reason_code or self.reason_display
            else None,
            "note": self.note,
            "items": [d.record() for d in resolved],
        }


def _bad(message: str, expression: str, status: int = 400) -> FhirError:
    code = "conflict" if status == 409 else "invalid"
    return FhirError(status, Issue("error", code, message, (expression,)))


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{where} is a string", where)
    return value.strip() or None


def _reason(raw: Any, where: str) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise _bad(f"{where} is an object with code and display", where)
    code = raw.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)  # a numeric X12 code, accepted as before
    return _text(code, f"{where}.code"), _text(raw.get("display"), f"{where}.display")


def _denial_reason(decision: Any, reason: tuple[str | None, str | None], where: str) -> None:
    if decision == "deny" and (reason[0] is None or reason[1] is None):
        raise _bad(
            f"A denial needs a specific reason: {where}.code (X12 HCR03) and {where}.display",
            where,
        )


def _quantity(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(f"{where} is an object with value (and unit, system, code)", where)
    for key in raw:
        if key not in _QUANTITY_FIELDS:
            raise _bad(f"{where} has value, unit, system and code only", f"{where}.{key}")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _bad(f"{where}.value is a number greater than 0", f"{where}.value")
    quantity: dict[str, Any] = {"value": value}
    for key in _UNIT_FIELDS:
        text = _text(raw.get(key), f"{where}.{key}")
        if text is not None:
            quantity[key] = text
    if "code" in quantity and "system" not in quantity:
        raise _bad(f"A unit code needs its system (FHIR qty-3): {where}.system", f"{where}.system")
    if "code" in quantity and quantity["system"] != X12_673:
        raise _bad(
            f"A unit code is one of the X12 quantity units, system {X12_673} (PAS prof-3): "
            f"{where}.system",
            f"{where}.system",
        )
    return quantity


def _service(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(f"{where} is a CodeableConcept: {{coding: [{{system, code}}]}}", where)
    codings = raw.get("coding")
    if not isinstance(codings, list) or not codings:
        raise _bad(f"{where}.coding lists the certified service's code(s)", f"{where}.coding")
    service: dict[str, Any] = {"coding": []}
    for index, coding in enumerate(codings):
        at = f"{where}.coding[{index}]"
        if not isinstance(coding, dict):
            raise _bad(f"{at} is a Coding (system, code, display)", at)
        system = _text(coding.get("system"), f"{at}.system")
        code = _text(coding.get("code"), f"{at}.code")
        if code is None:
            raise _bad(f"{at}.code is required", f"{at}.code")
        if system not in REQUESTED_SERVICE_SYSTEMS:
            raise _bad(
                f"{at}.system is one of the code systems of the PAS value set "
                f"X12278RequestedServiceType: {', '.join(REQUESTED_SERVICE_SYSTEMS)}",
                f"{at}.system",
            )
        found = {"system": system, "code": code}
        display = _text(coding.get("display"), f"{at}.display")
        if display:
            found["display"] = display
        service["coding"].append(found)
    text = _text(raw.get("text"), f"{where}.text")
    if text:
        service["text"] = text
    return service


def _item(raw: Any, where: str, case_note: str | None) -> ItemDecision:
    if not isinstance(raw, dict):
        raise _bad(
            f"{where} is an object: sequence, decision, reason, quantity, service, note", where
        )
    for key in raw:
        if key not in _ITEM_FIELDS:
            raise _bad(
                f"{where} has the fields {', '.join(sorted(_ITEM_FIELDS))}", f"{where}.{key}"
            )
    sequence = raw.get("sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise _bad(
            f"{where}.sequence is the Claim.item.sequence (a positive integer)", f"{where}.sequence"
        )
    decision = raw.get("decision")
    if decision not in ITEM_DECISIONS:
        raise _bad(f"{where}.decision is one of {', '.join(ITEM_DECISIONS)}", f"{where}.decision")
    reason = _reason(raw.get("reason"), f"{where}.reason")
    _denial_reason(decision, reason, f"{where}.reason")
    quantity = None
    if raw.get("quantity") is not None:
        if decision not in ("partial", "modify"):
            raise _bad(
                f"{where}.quantity goes with partial (fewer units, A2) or modify (A6)",
                f"{where}.quantity",
            )
        quantity = _quantity(raw["quantity"], f"{where}.quantity")
    service = None
    if raw.get("service") is not None:
        if decision != "modify":
            raise _bad(
                f"{where}.service: certifying another service is a modification (modify, A6)",
                f"{where}.service",
            )
        service = _service(raw["service"], f"{where}.service")
    if decision == "modify" and quantity is None and service is None:
        raise _bad(
            f"A modification (A6) says what is certified instead: {where}.service and/or "
            f"{where}.quantity",
            f"{where}.service",
        )
    return ItemDecision(
        sequence=sequence,
        decision=decision,
        reason_code=reason[0],
        reason_display=reason[1],
        quantity=quantity,
        service=service,
        note=_text(raw.get("note"), f"{where}.note") or case_note,
    )


def parse_decision(body: Any) -> ReviewDecision:
    """Check the shape of the body (see the module docstring); raise 400 naming the field."""
    if not isinstance(body, dict):
        raise _bad("The body is a JSON object", "$")
    raw_items = body.get("items")
    if raw_items is not None and not isinstance(raw_items, list):
        raise _bad("items is a list of item decisions", "items")
    raw_decision = body.get("decision")
    if raw_decision is None and not raw_items:
        raise _bad("decision is one of approve, partial, deny", "decision")
    decision = next((d for d in CASE_DECISIONS if d == raw_decision), None)
    if raw_decision is not None and decision is None:
        raise _bad(
            "decision is one of approve, partial, deny (modify is decided per item, with "
            "items[].service and/or items[].quantity)",
            "decision",
        )
    reason = _reason(body.get("reason"), "reason")
    _denial_reason(decision, reason, "reason")
    note = _text(body.get("note"), "note")
    items: list[ItemDecision] = []
    listed: dict[int, int] = {}
    for index, raw in enumerate(raw_items or []):
        item = _item(raw, f"items[{index}]", note)
        if item.sequence in listed:
            raise _bad(
                f"Item {item.sequence} is decided twice (items[{listed[item.sequence]}] and "
                f"items[{index}])",
                f"items[{index}].sequence",
            )
        listed[item.sequence] = index
        items.append(item)
    return ReviewDecision(decision, reason[0], reason[1], note, tuple(items))


def _same_unit(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in _UNIT_FIELDS if k in a and k in b)


def _with_unit(quantity: dict[str, Any] | None, requested: Any) -> dict[str, Any] | None:
    """A quantity given by value alone, in the requested item's unit."""
    if quantity is None or not isinstance(requested, dict):
        return quantity
    if any(k in quantity for k in _UNIT_FIELDS):
        return quantity
    return {**quantity, **{k: requested[k] for k in _UNIT_FIELDS if k in requested}}


def _same_service(service: dict[str, Any], requested: Any) -> bool:
    codes = {
        (c.get("system"), c.get("code"))
        for c in (requested or {}).get("coding") or []
        if isinstance(c, dict)
    }
    return any((c["system"], c["code"]) in codes for c in service["coding"])


def _check_partial(item: ItemDecision, requested: Any, where: str) -> None:
    """A partial certification certifies less than requested, in the requested unit."""
    quantity = item.quantity
    if item.decision != "partial" or quantity is None or not isinstance(requested, dict):
        return
    if not _same_unit(quantity, requested):
        raise _bad(
            "A partial certification (A2) counts in the requested unit; another unit is a "
            f"modification (modify): {where}.quantity",
            f"{where}.quantity",
        )
    wanted = requested.get("value")
    if isinstance(wanted, int | float) and quantity["value"] >= wanted:
        raise _bad(
            f"A partial certification (A2) certifies less than the {wanted} requested; to "
            f"certify all of it, approve: {where}.quantity.value",
            f"{where}.quantity.value",
        )


def _check_modification(item: ItemDecision, requested: dict[str, Any], where: str) -> None:
    """A modification certifies another service or another quantity than requested."""
    if item.decision != "modify":
        return
    same_service = item.service is None or _same_service(
        item.service, requested.get("productOrService")
    )
    wanted = requested.get("quantity")
    same_quantity = item.quantity is None or (
        isinstance(wanted, dict)
        and _same_unit(item.quantity, wanted)
        and item.quantity["value"] == wanted.get("value")
    )
    if same_service and same_quantity:
        raise _bad(
            f"A modification (A6) certifies something other than requested: {where}.service "
            f"and/or {where}.quantity must differ from Claim.item {item.sequence}",
            f"{where}.service" if item.service is not None else f"{where}.quantity",
        )


def resolve_items(
    decision: ReviewDecision, claim: dict[str, Any], claim_response: dict[str, Any]
) -> list[ItemDecision]:
    """One decision per pended item of the current ClaimResponse, in item order: the listed
    ones checked against the Claim (see the module docstring), the others the case-level one."""
    actions = {
        item.get("itemSequence"): review_action_code(item)
        for item in claim_response.get("item") or []
    }
    requested_items = {
        item.get("sequence"): item for item in claim.get("item") or [] if isinstance(item, dict)
    }
    listed: dict[int, ItemDecision] = {}
    for index, item in enumerate(decision.items):
        where = f"items[{index}]"
        requested = requested_items.get(item.sequence)
        if requested is None:
            known = ", ".join(str(s) for s in requested_items)
            raise _bad(
                f"The Claim has no item with sequence {item.sequence} (its items: {known})",
                f"{where}.sequence",
            )
        action = actions.get(item.sequence)
        if action != "A4":
            raise _bad(
                f"Item {item.sequence} is not pended (it was answered {action or 'nothing'} at "
                "submission): only pended items take a reviewer decision",
                f"{where}.sequence",
                409,
            )
        checked = replace(item, quantity=_with_unit(item.quantity, requested.get("quantity")))
        if checked.quantity is not None and not ({"unit", "code"} & set(checked.quantity)):
            raise _bad(
                f"A quantity has a unit or a code (PAS prof-2), and item {item.sequence} was "
                f"requested without one: {where}.quantity.unit",
                f"{where}.quantity.unit",
            )
        _check_partial(checked, requested.get("quantity"), where)
        _check_modification(checked, requested, where)
        listed[item.sequence] = checked
    pended = [sequence for sequence, action in actions.items() if action == "A4"]
    unlisted = [sequence for sequence in pended if sequence not in listed]
    if unlisted and decision.decision is None:
        raise _bad(
            "decision (approve, partial or deny) is needed for the pended items not listed in "
            f"items: {', '.join(str(s) for s in unlisted)}",
            "decision",
        )
    resolved = []
    for sequence in pended:
        if sequence in listed:
            resolved.append(listed[sequence])
        elif decision.decision is not None:
            resolved.append(
                ItemDecision(
                    sequence=int(sequence),
                    decision=decision.decision,
                    reason_code=decision.reason_code,
                    reason_display=decision.reason_display,
                    note=decision.note,
                    listed=False,
                )
            )
    return resolved
