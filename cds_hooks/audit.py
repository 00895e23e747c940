"""The audit record of a hook call: an AuditEvent naming the caller, the patient, the orders, the
coverage and the answers with their coverage-assertion-id (so a decision can be traced later),
and the call itself: its hook, hookInstance and the response exactly as sent (CRD found-37: logs
of every hook invocation and its response, kept for disputes).
"""

from __future__ import annotations

from typing import Any

from app.auth.cds_jwt import CdsCaller
from app.fhir.audit import (
    audit_event,
    bytes_detail,
    client_agent,
    coding,
    object_entity,
    person_entity,
)
from app.store.assertions import CoverageAssertion
from cds_hooks.membership import Membership
from cds_hooks.request import HookRequest
from cds_hooks.service import HookService

HOOK_SYSTEM = "https://greenlight.example.org/fhir/CodeSystem/cds-hook"
HOOK_INSTANCE_SYSTEM = "urn:ietf:rfc:3986"  # the hookInstance UUID as urn:uuid:<uuid>


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
    response: bytes,
) -> dict[str, Any]:
    """The AuditEvent (R4) recording one hook call and what was answered (`response`: the
    response body, byte for byte)."""
    call = object_entity(
        {
            "identifier": {
                "system": HOOK_INSTANCE_SYSTEM,
                "value": f"urn:uuid:{request.hook_instance.lower()}",
            }
        },
        details=[("hook", service.hook), ("hookInstance", request.hook_instance)],
    )
    call["detail"].append(bytes_detail("response", response))
    entities: list[dict[str, Any]] = [person_entity(f"Patient/{request.patient_id}"), call]
    entities.extend({"what": {"reference": f"{o['resourceType']}/{o['id']}"}} for o in orders)
    entities.extend(_answer_entity(membership, assertion) for membership, assertion in answers)
    return audit_event(
        subtype=[coding(HOOK_SYSTEM, service.hook)],
        action="E",
        agents=[client_agent(None, caller.issuer or "unsigned caller")],
        site="Greenlight CRD",
        observer=f"cds-services/{service.id}",
        entities=entities,
    )
