"""A reviewer's decision on a pended case: the new ClaimResponse version, its AuditEvent and its
notification.

The body (`app.um.contract`) decides the whole case (`decision`: approve, partial, deny) and/or
each pended item (`items`: approve A1, partial A2, modify A6 with `addItem`, deny A3); items not
listed take the case-level decision. `app.pas.review` writes the answer.

One transaction locks the case, checks the item decisions against the case's Claim and current
ClaimResponse, writes the next ClaimResponse version, closes the case (`approved`, `partial` or
`denied`, from all its items), stores an AuditEvent of the decision (who, when, which case,
Claim and ClaimResponse version, the decision per item; `app.pas.audit`) and queues one event
notification for every subscription that hears about the request (the outbox delivers it after
the commit, at least once). Any refusal (4xx) rolls all of it back: nothing is written. A case
that is not pended answers 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.fhir.outcomes import FhirError
from app.pas.audit import decision_audit_event
from app.pas.bundle import RequestBundle
from app.pas.review import apply_decision, case_status
from app.pas.service import PasService
from app.store.repository import ResourceWriter
from app.um.cases import OPEN, CaseStore, ReviewCase, locked_case, record_decision
from app.um.contract import parse_decision, resolve_items


@dataclass(frozen=True)
class Decided:
    case: ReviewCase
    notifications: int
    claim_response: str  # ClaimResponse/<id>/_history/<version>
    audit_event: str  # AuditEvent/<id>

    def answer(self) -> dict[str, Any]:
        """The JSON answer of `POST /um/cases/{id}/decision`."""
        return {
            "case": self.case.detail(),
            "notifications": self.notifications,
            "claimResponse": self.claim_response,
            "auditEvent": self.audit_event,
        }


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
    claim = RequestBundle.stored(stored.bundle).claim.resource
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
        resolved = resolve_items(decision, claim, current.json())
        answer = apply_decision(
            current.json(),
            claim,
            resolved,
            str(case.trace.get("authorizationNumber") or case.case_id),
            int(case.trace.get("validDays") or 90),
            decided,
            stored.pas_version,
        )
        updated, _ = await writer.update(answer, case.claim_response_id)
        status = case_status(answer)
        record = decision.record(resolved)
        await record_decision(
            conn, case_id, status, int(decided.timestamp() * 1_000_000), reviewer, record
        )
        audit = await writer.create(
            decision_audit_event(
                reviewer=reviewer,
                case_id=case_id,
                case_status=status,
                claim_id=case.claim_id,
                claim_response=answer,
                version_id=updated.version_id,
                decisions=resolved,
                record=record,
                decided=decided,
            )
        )
        queued = await pas.notify_change(conn, stored, updated.json())
    if queued:
        pas.wake()
    closed = await cases.get(case_id)
    assert closed is not None
    return Decided(
        closed,
        queued,
        f"ClaimResponse/{updated.id}/_history/{updated.version_id}",
        f"AuditEvent/{audit.id}",
    )
