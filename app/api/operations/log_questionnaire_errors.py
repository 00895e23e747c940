"""`POST /fhir/Questionnaire/$log-questionnaire-errors` (DTR 2.0.1 OperationDefinition
`log-questionnaire-errors`, DTR oper-1): a DTR client reports problems it met with a
Questionnaire or its CQL. Each report is kept as an AuditEvent (the Questionnaire canonical and
the OperationOutcome, whose issues are also logged) for the payer's content authors; the client
gets an OperationOutcome saying what was recorded.

Accepted parameter names: the profile's `questionnaire` and `operationOutcome`, and the
OperationDefinition's `Questionnaire` and `OperationOutcome`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.api.operations.dtr import json_body
from app.auth.guard import authorize
from app.fhir.audit import audit_event, client_agent, coding, json_detail
from app.fhir.jsonio import fhir_response
from app.fhir.models import check_resource
from app.fhir.negotiation import negotiate
from app.fhir.outcomes import FhirError, Issue, operation_outcome
from app.registry import REGISTRY, OperationSpec

log = logging.getLogger("greenlight.dtr")

PATH = "/fhir/Questionnaire/$log-questionnaire-errors"

REGISTRY.add_operation(
    OperationSpec(
        name="log-questionnaire-errors",
        resource_types=("Questionnaire",),
        definition="http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/log-questionnaire-errors",
        documentation="Record the errors a DTR client met with a Questionnaire or its CQL",
    )
)

router = APIRouter()


def _reports(body: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.single(
            400, "invalid", "The body must be a Parameters resource", "Parameters"
        )
    canonicals: list[str] = []
    outcomes: list[dict[str, Any]] = []
    for index, parameter in enumerate(body.get("parameter") or []):
        name = str(parameter.get("name") or "").lower()
        where = f"Parameters.parameter[{index}]"
        if name == "questionnaire":
            value = parameter.get("valueCanonical") or parameter.get("valueUri")
            if not isinstance(value, str) or not value:
                raise FhirError.single(
                    400, "invalid", "questionnaire must be a canonical", f"{where}.valueCanonical"
                )
            canonicals.append(value)
        elif name in ("operationoutcome", "outcome"):
            resource = parameter.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
                raise FhirError.single(
                    400,
                    "invalid",
                    "operationOutcome must hold an OperationOutcome",
                    f"{where}.resource",
                )
            outcomes.append(check_resource(resource, path_prefix=f"{where}.resource"))
    if not canonicals or not outcomes:
        raise FhirError.single(
            400,
            "required",
            "Give the Questionnaire canonical and the OperationOutcome describing the errors",
            "Parameters.parameter",
        )
    return canonicals, outcomes


DTR_OPERATION = "https://greenlight.example.org/fhir/CodeSystem/dtr-operation"


def _audit_event(
    canonicals: list[str], outcomes: list[dict[str, Any]], client_id: str | None
) -> dict[str, Any]:
    """The report as an AuditEvent: one entity per Questionnaire, each OperationOutcome a detail."""
    return audit_event(
        subtype=[coding(DTR_OPERATION, "log-questionnaire-errors")],
        action="C",
        agents=[client_agent(client_id, None if client_id else "anonymous caller")],
        site="Greenlight DTR",
        observer="$log-questionnaire-errors",
        entities=[
            {
                "what": {"display": canonical},
                "detail": [json_detail("OperationOutcome", outcome) for outcome in outcomes],
            }
            for canonical in canonicals
        ],
    )


@router.post(PATH)
async def log_questionnaire_errors(request: Request) -> Response:
    principal = await authorize(request, "Questionnaire", "r")
    negotiated = negotiate(request)
    canonicals, outcomes = _reports(await json_body(request))
    count = sum(len(o.get("issue") or []) for o in outcomes)
    for canonical in canonicals:
        for outcome in outcomes:
            for issue in outcome.get("issue") or []:
                log.warning(
                    "DTR client reported for %s: %s %s %s",
                    canonical,
                    issue.get("severity"),
                    issue.get("code"),
                    issue.get("diagnostics") or (issue.get("details") or {}).get("text") or "",
                )
    client_id = None if principal.anonymous else principal.client_id
    async with services(request).store.transaction() as tx:
        stored = await tx.create(_audit_event(canonicals, outcomes, client_id))
    message = f"Recorded {count} issue(s) for {', '.join(canonicals)} as AuditEvent/{stored.id}"
    return fhir_response(
        operation_outcome([Issue("information", "informational", message)]),
        200,
        pretty=negotiated.pretty,
    )
