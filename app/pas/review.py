"""A reviewer's decision on the pended items of a request, written as the next ClaimResponse.

Each decided item (a pended, A4, `ClaimResponse.item`) gets the X12 306 review action of its
decision in `adjudication.extension(reviewAction)`:

- approve: A1 certified in total, the item as requested;
- partial: A2 certified - partial, e.g. fewer units (the certified quantity);
- modify: A6 modified: the requested details stay on the item and what is certified goes in
  `addItem` (PAS spec-36/37);
- deny: A3 not certified, with the X12 HCR03 reason (`reasonCode`, code list 886) and its text.

Certified items (A1, A2, A6) carry the authorization number (`reviewAction.number`), the issue
date and period of the authorization, and `itemAuthorizedDetail` with the service and quantity
certified. A not-certified item keeps its reference number. Reasons and notes become
`processNote`s the item points at (`noteNumber`); the pended reasons of a decided item are
dropped with their notes.

A6 (PAS spec-37): one `addItem` per modified item, `itemSequence` = the requested item's
`sequence`, `productOrService` and `quantity` as certified, the requested `serviced[x]` and place
of service, and `adjudication` (category `submitted`). PAS 2.2.1 defines the reviewAction,
itemPreAuthIssueDate/Period, itemTraceNumber and administrationReferenceNumber extensions on
`addItem` too, so a 2.2.1 addItem also carries them (A6 with the authorization number: the same
service line, HCR, as the item). In PAS 2.0.1 those extensions are defined on
`ClaimResponse.item` only: the 2.0.1 addItem carries the certified service and quantity, the
requested dates and place, and the item's `itemAuthorizedDetail` says the same for 2.0.1 clients.

A decided ClaimResponse says a person reviewed it (`claimResponseReviewer`, wasHumanReviewedFlag)
on PAS 2.2.1; PAS 2.0.1 defines no such extension, so it is not written there.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from app.pas.adjudicate import extension
from app.pas.codes import (
    ADJUDICATION,
    EXT_ADMIN_REFERENCE_NUMBER,
    EXT_CLAIM_RESPONSE_REVIEWER,
    EXT_ITEM_AUTHORIZED_DETAIL,
    EXT_ITEM_PREAUTH_ISSUE_DATE,
    EXT_ITEM_PREAUTH_PERIOD,
    EXT_ITEM_TRACE_NUMBER,
    EXT_REVIEW_ACTION,
    X12_886,
    PasVersion,
    ReviewAction,
)
from app.pas.response import (
    CERTIFIED,
    Notes,
    authorized_detail,
    concept,
    disposition,
    outcome_of,
    period,
    review_action,
    review_action_code,
)

ItemDecisionName = Literal["approve", "partial", "modify", "deny"]
ITEM_DECISIONS: tuple[ItemDecisionName, ...] = ("approve", "partial", "modify", "deny")
ACTIONS: dict[str, ReviewAction] = {"approve": "A1", "partial": "A2", "modify": "A6", "deny": "A3"}
_SERVICED = ("servicedDate", "servicedPeriod", "locationCodeableConcept")
_DATED = (EXT_ITEM_PREAUTH_ISSUE_DATE, EXT_ITEM_PREAUTH_PERIOD, EXT_ITEM_AUTHORIZED_DETAIL)


@dataclass(frozen=True)
class ItemDecision:
    """The reviewer's decision on one pended item (`Claim.item.sequence`)."""

    sequence: int
    decision: ItemDecisionName
    reason_code: str | None = None
    reason_display: str | None = None
    quantity: dict[str, Any] | None = None  # certified quantity (partial, modify)
    service: dict[str, Any] | None = None  # certified service (modify)
    note: str | None = None
    listed: bool = True  # False: the case-level decision, for an item the reviewer did not list

    @property
    def action(self) -> ReviewAction:
        return ACTIONS[self.decision]

    def record(self) -> dict[str, Any]:
        """The JSON form kept on the review case and in the AuditEvent."""
        found: dict[str, Any] = {
            "sequence": self.sequence,
            "decision": self.decision,
            "action": self.action,
            "listed": self.listed,
        }
        if self.reason_code or self.reason_display:
            found["reason"] = {"code": self.reason_code, "display": self.reason_display}
        for name in ("quantity", "service", "note"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found

    def summary(self) -> str:
        """One line for people: `A2 partial; quantity 3 visit; reason 0U Medical necessity`."""
        parts = [f"{self.action} {self.decision}"]
        if self.service is not None:
            codes = [f"{c.get('system')}|{c.get('code')}" for c in self.service.get("coding") or []]
            parts.append(f"service {', '.join(codes)}")
        if self.quantity is not None:
            unit = self.quantity.get("unit") or self.quantity.get("code") or ""
            parts.append(f"quantity {self.quantity.get('value')} {unit}".rstrip())
        if self.reason_code or self.reason_display:
            reason = " ".join(r for r in (self.reason_code, self.reason_display) if r)
            parts.append(f"reason {reason}")
        return "; ".join(parts)


def _texts(decided: ItemDecision) -> list[str]:
    texts = [decided.note] if decided.note else []
    if decided.reason_display or decided.reason_code:
        texts.append(f"Reason: {decided.reason_display or decided.reason_code}")
    return texts


def _item_number(item: dict[str, Any]) -> str | None:
    """The number (authorization or reference) the item's reviewAction carries."""
    for adjudication in item.get("adjudication") or []:
        action = extension(adjudication, EXT_REVIEW_ACTION)
        for part in (action or {}).get("extension") or []:
            if part.get("url") == "number":
                return str(part.get("valueString"))
    return None


def _dates(today: date, valid_days: int) -> list[dict[str, Any]]:
    return [
        {"url": EXT_ITEM_PREAUTH_ISSUE_DATE, "valueDate": today.isoformat()},
        {"url": EXT_ITEM_PREAUTH_PERIOD, "valuePeriod": period(today, valid_days)},
    ]


def _added_item(
    item: dict[str, Any],
    requested: dict[str, Any],
    decided: ItemDecision,
    number: str,
    today: date,
    valid_days: int,
    version: PasVersion,
    note_numbers: list[int],
) -> dict[str, Any]:
    """The `addItem` carrying what a modification (A6) certifies (PAS spec-37)."""
    adjudication: dict[str, Any] = {"category": concept(ADJUDICATION, "submitted")}
    added: dict[str, Any] = {}
    if version != "2.0.1":  # these extensions are defined on addItem from PAS 2.1 on
        extensions = [
            copy.deepcopy(found)
            for found in (
                extension(requested, EXT_ITEM_TRACE_NUMBER),
                extension(item, EXT_ADMIN_REFERENCE_NUMBER),
            )
            if found is not None
        ]
        added["extension"] = extensions + _dates(today, valid_days)
        adjudication["extension"] = [review_action("A6", number)]
    added["itemSequence"] = [decided.sequence]
    added["productOrService"] = copy.deepcopy(decided.service or requested.get("productOrService"))
    for name in _SERVICED:
        if name in requested:
            added[name] = copy.deepcopy(requested[name])
    quantity = decided.quantity or requested.get("quantity")
    if isinstance(quantity, dict):
        added["quantity"] = copy.deepcopy(quantity)
    if note_numbers:
        added["noteNumber"] = note_numbers
    added["adjudication"] = [adjudication]
    return added


def apply_decision(
    claim_response: dict[str, Any],
    claim: dict[str, Any],
    decisions: Sequence[ItemDecision],
    authorization_number: str,
    valid_days: int,
    decided: datetime,
    version: PasVersion,
) -> dict[str, Any]:
    """The next ClaimResponse version: each decided item answered (see the module docstring).

    `claim` is the request's Claim (the requested service, quantity and dates of each item);
    `decisions` holds one entry per decided item, already checked (`app.um.contract`).
    """
    answer = copy.deepcopy(claim_response)
    today = decided.date()
    notes = Notes()
    notes.notes = list(answer.get("processNote") or [])
    by_sequence = {d.sequence: d for d in decisions}
    requested_items = {
        item.get("sequence"): item for item in claim.get("item") or [] if isinstance(item, dict)
    }
    added = [
        a
        for a in answer.get("addItem") or []
        if not set(a.get("itemSequence") or []) & set(by_sequence)
    ]
    for item in answer.get("item") or []:
        chosen = by_sequence.get(item.get("itemSequence"))
        if chosen is None:
            continue
        requested = requested_items.get(chosen.sequence) or {}
        action = chosen.action
        certified = action in CERTIFIED
        number = authorization_number if certified else _item_number(item)
        reasons = (
            [concept(X12_886, chosen.reason_code, chosen.reason_display)]
            if chosen.reason_code
            else []
        )
        item["adjudication"] = [
            {
                "extension": [review_action(action, number, reasons)],
                "category": concept(ADJUDICATION, "submitted"),
            }
        ]
        extensions = [e for e in item.get("extension") or [] if e.get("url") not in _DATED]
        if certified:
            extensions += _dates(today, valid_days)
            extensions.append(
                authorized_detail(
                    chosen.service or requested.get("productOrService") or {},
                    chosen.quantity or requested.get("quantity"),
                )
            )
        item["extension"] = extensions
        numbers = [notes.number(text) for text in _texts(chosen)]
        item.pop("noteNumber", None)  # the pended reasons no longer apply
        if numbers:
            item["noteNumber"] = numbers
        if action == "A6":
            added.append(
                _added_item(
                    item, requested, chosen, number or "", today, valid_days, version, numbers
                )
            )
    actions = [review_action_code(i) or "" for i in answer.get("item") or []]
    answer["outcome"] = outcome_of(actions, bool(answer.get("error")), version)
    answer["disposition"] = disposition(actions)
    answer["created"] = decided.isoformat(timespec="seconds")
    if added:
        answer["addItem"] = added
    else:
        answer.pop("addItem", None)
    # the notes still pointed at (a decided item's pended reasons are dropped with it)
    referenced = {
        number
        for line in [*(answer.get("item") or []), *added]
        for number in line.get("noteNumber") or []
    }
    kept = [note for note in notes.notes if note.get("number") in referenced]
    if kept:
        answer["processNote"] = kept
    else:
        answer.pop("processNote", None)
    if any(a in CERTIFIED for a in actions):
        answer["preAuthRef"] = authorization_number
        answer.setdefault("preAuthPeriod", period(today, valid_days))
    if version != "2.0.1":  # claimResponseReviewer is defined from PAS 2.1 on (PAS conf-15)
        answer["extension"] = [
            e for e in answer.get("extension") or [] if e.get("url") != EXT_CLAIM_RESPONSE_REVIEWER
        ] + [
            {
                "url": EXT_CLAIM_RESPONSE_REVIEWER,
                "extension": [{"url": "wasHumanReviewedFlag", "valueBoolean": True}],
            }
        ]
    return answer


def case_status(claim_response: dict[str, Any]) -> str:
    """The review case's status once decided, from all its items (`app.um.cases`): `approved`
    when every item that needed authorization is certified in total, `denied` when none is
    certified, else `partial` (some not certified, certified in part, or as modified)."""
    actions = {review_action_code(i) for i in claim_response.get("item") or []} - {"NA", "C"}
    if actions and actions <= {"A1"}:
        return "approved"
    if not actions & CERTIFIED:
        return "denied"
    return "partial"
