"""The audit record of a hook call: an AuditEvent naming the caller, the patient, the orders, the
coverage and the answers with their coverage-assertion-id (so a decision can be traced later).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.auth.cds_jwt import CdsCaller
from app.store.assertions import CoverageAssertion
from cds_hooks.membership import Membership
from cds_hooks.request import HookRequest
from cds_hooks.service import HookService

HOOK_SYSTEM = "https://greenlight.example.org/fhir/CodeSystem/cds-hook"


def _answer_entity(membership: Membership, assertion: CoverageAssertion) -> dict[str, Any]:
    answers = "; ".join(
        f"{d.order_ref}={d.decision.covered}/{d.decision.pa_needed or '-'}"
        for d in assertion.decisions
    )
    return {
        "what": {"reference": membership.client_reference},
        "detail": [
            {"type": "coverage-assertion-id", "valueString": assertion.assertion_id},
            {"type": "answers", "valueString": answers},
        ],
    }


def hook_audit_event(
    service: HookService,
    request: HookRequest,
    caller: CdsCaller,
    orders: list[dict[str, Any]],
    answers: list[tuple[Membership, CoverageAssertion]],
) -> dict[str, Any]:
    """The AuditEvent (R4) recording one hook call and what was answered."""
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{request.patient_id}"},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
                "display": "Person",
            },
        }
    ]
    entities.extend({"what": {"reference": f"{o['resourceType']}/{o['id']}"}} for o in orders)
    entities.extend(_answer_entity(membership, assertion) for membership, assertion in answers)
    return {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": HOOK_SYSTEM, "code": service.hook}],
        "action": "E",
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": "0",
        "agent": [{"who": {"display": caller.issuer or "unsigned caller"}, "requestor": True}],
        "source": {"site": "Greenlight CRD", "observer": {"display": f"cds-services/{service.id}"}},
        "entity": entities,
    }
