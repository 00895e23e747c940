"""A reviewer's decision on a pended case: the new ClaimResponse version and its notification.

`{"decision": "approve" | "partial" | "deny", "reason": {"code", "display"}, "note"}`:
approve certifies every pended item (A1), partial certifies them in part (A2), deny does not
certify them (A3). A denial needs a specific reason: an X12 HCR03 (code list 886) code, shown on
the items' reviewAction as `reasonCode`, and its display text, shown as a process note.

One transaction locks the case, writes the next ClaimResponse version, closes the case and queues
an event notification for every subscription that hears about the request (the outbox delivers
it after the commit, at least once). A case that is not pended answers 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.fhir.outcomes import FhirError, Issue
from app.pas.response import ReviewDecision, apply_decision
from app.pas.service import PasService
from app.store.repository import ResourceWriter, now_us
from app.um.cases import OPEN, CaseStore, ReviewCase, locked_case, record_decision

STATUS = {"approve": "approved", "partial": "partial", "deny": "denied"}


def _bad(message: str, expression: str) -> FhirError:
    return FhirError(400, Issue("error", "invalid", message, (expression,)))


def parse_decision(body: Any) -> ReviewDecision:
    """Check the JSON body of `POST /um/cases/{id}/decision`; raise 400 naming the field."""
    if not isinstance(body, dict):
        raise _bad("The body is a JSON object", "$")
    decision = body.get("decision")
    if decision not in STATUS:
        raise _bad("decision is one of approve, partial, deny", "decision")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, dict):
        raise _bad("reason is an object with code and display", "reason")
    code = str((reason or {}).get("code") or "").strip() or None
    display = str((reason or {}).get("display") or "").strip() or None
    if decision == "deny" and (code is None or display is None):
        raise _bad(
            "A denial needs a specific reason: reason.code (X12 HCR03) and reason.display",
            "reason",
        )
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise _bad("note is a string", "note")
    return ReviewDecision(decision, code, display, note.strip() if note else None)


@dataclass(frozen=True)
class Decided:
    case: ReviewCase
    notifications: int


async def decide_case(pas: PasService, case_id: str, body: Any, reviewer: str) -> Decided:
    """Record a reviewer's decision on a pended case (see the module docstring)."""
    decision = parse_decision(body)
    cases = CaseStore(pas.database)
    found = await cases.get(case_id)
    if found is None:
        raise FhirError.single(404, "not-found", f"No review case {case_id}", "id")
    stored = await pas.request(found.request_id)
    if stored is None:  # pragma: no cover - written together
        raise FhirError.single(404, "not-found", f"No request for case {case_id}", "id")
    decided = datetime.now(UTC)
    async with pas.write() as conn:
        case = await locked_case(conn, case_id)
        if case is None:  # pragma: no cover - checked above
            raise FhirError.single(404, "not-found", f"No review case {case_id}", "id")
        if case.status != OPEN:
            raise FhirError.single(
                409,
                "conflict",
                f"Case {case_id} is {case.status}: only pended cases take a decision",
                "status",
            )
        writer = ResourceWriter(conn, pas.store.registry)
        current = await writer.current("ClaimResponse", case.claim_response_id)
        if current is None or current.body is None:  # pragma: no cover - written together
            raise FhirError.single(409, "conflict", "The case has no ClaimResponse")
        authorization = str(case.trace.get("authorizationNumber") or case.case_id)
        answer = apply_decision(
            current.json(),
            decision,
            authorization,
            int(case.trace.get("validDays") or 90),
            decided,
            stored.pas_version,
        )
        await writer.update(answer, case.claim_response_id)
        await record_decision(
            conn,
            case_id,
            STATUS[decision.decision],
            now_us(),
            reviewer,
            {
                "decision": decision.decision,
                "reason": {"code": decision.reason_code, "display": decision.reason_display}
                if decision.reason_code or decision.reason_display
                else None,
                "note": decision.note,
            },
        )
        queued = await pas.notify_change(conn, stored, answer)
    if queued:
        pas.wake()
    updated = await cases.get(case_id)
    assert updated is not None
    return Decided(updated, queued)
