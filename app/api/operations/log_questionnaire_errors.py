"""`POST /fhir/Questionnaire/$log-questionnaire-errors` (DTR 2.0.1 OperationDefinition
`log-questionnaire-errors`, DTR oper-1): a DTR client reports problems it met with a
Questionnaire or its CQL. Each report is kept as an AuditEvent (the Questionnaire canonical and
the OperationOutcome, whose issues are also logged) for the payer's content authors; the client
gets an OperationOutcome saying what was recorded.

Accepted parameter names: the profile's `questionnaire` and `operationOutcome`, and the
OperationDefinition's `Questionnaire` and `OperationOutcome`.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.api.operations.dtr import json_body
from app.auth.guard import authorize
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


def _audit_event(canonicals: list[str], outcomes: list[dict[str, Any]], who: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [
            {
                "system": "https://greenlight.example.org/fhir/CodeSystem/dtr-operation",
                "code": "log-questionnaire-errors",
            }
        ],
        "action": "C",
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": "0",
        "agent": [{"who": {"display": who}, "requestor": True}],
        "source": {"site": "Greenlight DTR", "observer": {"display": "$log-questionnaire-errors"}},
        "entity": [
            {
                "what": {"display": canonical},
                "detail": [
                    {
                        "type": "OperationOutcome",
                        "valueBase64Binary": base64.b64encode(orjson.dumps(outcome)).decode(),
                    }
                    for outcome in outcomes
                ],
            }
            for canonical in canonicals
        ],
    }


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
    who = "anonymous caller" if principal.anonymous else principal.client_id
    async with services(request).store.transaction() as tx:
        stored = await tx.create(_audit_event(canonicals, outcomes, who))
    message = f"Recorded {count} issue(s) for {', '.join(canonicals)} as AuditEvent/{stored.id}"
    return fhir_response(
        operation_outcome([Issue("information", "informational", message)]),
        200,
        pretty=negotiated.pretty,
    )
