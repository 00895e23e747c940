"""The AuditEvents of PAS work: each accepted `$submit` and each reviewer decision.

Each is stored through the repository in the transaction of the work it records (the request,
its case and ClaimResponse; or the decision, the new ClaimResponse version and the case), so an
event exists exactly when that work was committed (HRex sec-19: log who did what, to which
request; PAS metric-2: what each PAS call decided, and when).

- `$submit`: action `E`, subtype `operation` + `Claim-submit`; agent: the submitting client;
  entities: the patient (as the ClaimResponse names it), the stored Claim, the ClaimResponse
  version written with each item's X12 306 code (`item <sequence>` details), the request Bundle
  (by `Bundle.identifier`) and the review case (by its reference number) with its status.
- a reviewer decision: action `U`, subtype `update` + `um-decision`; agent: the reviewer's
  client; entities: the patient, the Claim, the new ClaimResponse version (`_history/<n>`) with
  the decision per item (`item <sequence>` = `A3 deny; reason 0U ...`), and the case with its
  new status, the note and the whole decision as JSON (`decision`, base64).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.auth.principal import ANONYMOUS
from app.fhir.audit import (
    DOMAIN_RESOURCE,
    JOB,
    RESTFUL_INTERACTION,
    audit_event,
    client_agent,
    coding,
    json_detail,
    object_entity,
    person_entity,
)
from app.pas.adjudicate import ItemResult
from app.pas.response import REFERENCE_SYSTEM
from app.pas.review import ItemDecision

PAS_EVENT_SYSTEM = "https://greenlight.example.org/fhir/CodeSystem/pas-event"


def caller_agent(client_id: str) -> dict[str, Any]:
    """The requesting client; the anonymous caller of demo mode (auth off) is named as such."""
    if client_id == ANONYMOUS.client_id:
        return client_agent(None, "anonymous caller (authentication off)")
    return client_agent(client_id)


def _patient(claim_response: dict[str, Any]) -> list[dict[str, Any]]:
    reference = (claim_response.get("patient") or {}).get("reference")
    return [person_entity(str(reference))] if reference else []


def _case(case_id: str, details: Sequence[tuple[str, str]]) -> dict[str, Any]:
    entity = object_entity(
        {"identifier": {"system": REFERENCE_SYSTEM, "value": case_id}},
        details,
        role=JOB,
    )
    entity["name"] = f"review case {case_id}"
    return entity


def submit_audit_event(
    *,
    submitter: str,
    claim_id: str,
    claim_response: dict[str, Any],
    version_id: int,
    items: Sequence[ItemResult],
    bundle_identifier: dict[str, Any] | None,
    case_id: str,
    case_status: str,
    pas_version: str,
    received: datetime,
) -> dict[str, Any]:
    """The AuditEvent of one accepted `$submit` (see the module docstring)."""
    item_details = [(f"item {r.sequence}", "; ".join([r.action, *r.reasons])) for r in items]
    entities = [
        *_patient(claim_response),
        object_entity({"reference": f"Claim/{claim_id}"}, role=DOMAIN_RESOURCE),
        object_entity(
            {"reference": f"ClaimResponse/{claim_response['id']}/_history/{version_id}"},
            [("outcome", str(claim_response.get("outcome"))), *item_details],
            role=DOMAIN_RESOURCE,
        ),
    ]
    if bundle_identifier:
        entities.append(
            object_entity(
                {"identifier": bundle_identifier, "display": "PAS request Bundle"},
                [("pas-version", pas_version)],
            )
        )
    entities.append(_case(case_id, [("status", case_status)]))
    return audit_event(
        subtype=[
            coding(RESTFUL_INTERACTION, "operation", "operation"),
            coding(PAS_EVENT_SYSTEM, "Claim-submit", "PAS Claim/$submit"),
        ],
        action="E",
        agents=[caller_agent(submitter)],
        site="Greenlight PAS",
        observer=f"PAS {pas_version} Claim/$submit",
        entities=entities,
        recorded=received,
    )


def decision_audit_event(
    *,
    reviewer: str,
    case_id: str,
    case_status: str,
    claim_id: str,
    claim_response: dict[str, Any],
    version_id: int,
    decisions: Sequence[ItemDecision],
    record: dict[str, Any],
    decided: datetime,
) -> dict[str, Any]:
    """The AuditEvent of one reviewer decision (see the module docstring)."""
    case_details = [("status", case_status)]
    if record.get("note"):
        case_details.append(("note", str(record["note"])))
    case = _case(case_id, case_details)
    case["detail"].append(json_detail("decision", record))
    return audit_event(
        subtype=[
            coding(RESTFUL_INTERACTION, "update", "update"),
            coding(PAS_EVENT_SYSTEM, "um-decision", "Utilization review decision"),
        ],
        action="U",
        agents=[caller_agent(reviewer)],
        site="Greenlight UM",
        observer=f"POST /um/cases/{case_id}/decision",
        entities=[
            *_patient(claim_response),
            object_entity({"reference": f"Claim/{claim_id}"}, role=DOMAIN_RESOURCE),
            object_entity(
                {"reference": f"ClaimResponse/{claim_response['id']}/_history/{version_id}"},
                [(f"item {d.sequence}", d.summary()) for d in decisions],
                role=DOMAIN_RESOURCE,
            ),
            case,
        ],
        recorded=decided,
    )
