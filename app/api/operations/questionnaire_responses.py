"""Completed documentation coming back: `POST /fhir/QuestionnaireResponse` and
`PUT /fhir/QuestionnaireResponse/{id}`.

The same create and update as every other resource type (versioning, `If-Match`, `Prefer`), plus
what DTR needs from the payer side: the response is tagged with the CRD coverage assertion(s) it
carries and keeps the tag naming the prior authorization request its package was asked for
(`app.dtr.responses`), so PAS adjudication and reviewers find it by assertion or by request
(`_tag`), and it is evaluated against its topic's documentation requirement.
`Prefer: return=OperationOutcome` answers with that evaluation (topic, completeness, missing
required items, auto-approval criteria met, links) instead of the resource.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.api.operations.dtr import dtr_services
from app.auth.guard import authorize
from app.dtr.responses import DocumentationEvaluation, tagged
from app.fhir.jsonio import fhir_response
from app.fhir.models import check_resource, parse_json_body
from app.fhir.negotiation import check_body_media_type, negotiate
from app.fhir.outcomes import FhirError, Issue, operation_outcome
from app.fhir.validation.policy import check_inbound
from app.store.repository import parse_if_match
from app.store.stored import StoredResource

router = APIRouter()

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def evaluation_outcome(evaluation: DocumentationEvaluation) -> dict[str, Any]:
    """The evaluation as an OperationOutcome (information when satisfied, else warnings)."""
    issues: list[Issue] = []
    if evaluation.topic_id is None:
        issues.append(
            Issue(
                "warning",
                "not-found",
                f"No coverage topic asks for {evaluation.questionnaire or 'this questionnaire'}",
            )
        )
    else:
        state = "meets" if evaluation.satisfied else "does not yet meet"
        issues.append(
            Issue(
                "information",
                "informational",
                f"The response {state} the documentation requirement of topic "
                f"{evaluation.topic_id}",
            )
        )
    if not evaluation.completed:
        issues.append(Issue("warning", "incomplete", "The response is not completed"))
    issues.extend(
        Issue(
            "warning",
            "required",
            f"Required item {link_id} has no answer",
            (f"QuestionnaireResponse.item.where(linkId = '{link_id}')",),
        )
        for link_id in evaluation.missing
    )
    if evaluation.criteria_met:
        issues.append(
            Issue(
                "information",
                "informational",
                "Auto-approval criteria met: " + ", ".join(evaluation.criteria_met),
            )
        )
    for assertion_id in evaluation.links.assertion_ids:
        issues.append(
            Issue("information", "informational", f"Linked to coverage assertion {assertion_id}")
        )
    for number in evaluation.links.pa_requests:
        issues.append(
            Issue(
                "information",
                "informational",
                f"Linked to prior authorization request {number}",
            )
        )
    return operation_outcome(issues)


async def _body(request: Request) -> dict[str, Any]:
    check_body_media_type(request)
    return check_resource(
        parse_json_body(await request.body()), expected_type="QuestionnaireResponse"
    )


def _answer(
    request: Request, stored: StoredResource, status: int, evaluation: DocumentationEvaluation
) -> Response:
    negotiated = negotiate(request)
    svc = services(request)
    headers = {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated,
        "Location": (
            f"{svc.settings.fhir_base_url}/QuestionnaireResponse/{stored.id}"
            f"/_history/{stored.version_id}"
        ),
    }
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        return fhir_response(evaluation_outcome(evaluation), status, headers)
    assert stored.body is not None
    return fhir_response(stored.body, status, headers, pretty=negotiated.pretty)


@router.post("/fhir/QuestionnaireResponse")
async def create_response(request: Request) -> Response:
    await authorize(request, "QuestionnaireResponse", "c")
    negotiate(request)
    response = await _body(request)
    svc = services(request)
    check_inbound(response, svc.settings)
    evaluation = dtr_services(request).evaluator.evaluate(response)
    async with svc.store.transaction() as tx:
        stored = await tx.create(tagged(response))
    return _answer(request, stored, 201, evaluation)


@router.put("/fhir/QuestionnaireResponse/{response_id}")
async def update_response(request: Request, response_id: str) -> Response:
    await authorize(request, "QuestionnaireResponse", "u")
    negotiate(request)
    if not _ID_RE.match(response_id):
        raise FhirError.single(
            400, "invalid", f"'{response_id}' is not a valid FHIR id", "QuestionnaireResponse.id"
        )
    if_match = parse_if_match(request.headers.get("if-match"))
    response = await _body(request)
    if response.get("id") != response_id:
        raise FhirError.single(
            400,
            "invalid",
            f"The body's id '{response.get('id')}' does not match the URL id '{response_id}'",
            "QuestionnaireResponse.id",
        )
    svc = services(request)
    check_inbound(response, svc.settings)
    evaluation = dtr_services(request).evaluator.evaluate(response)
    async with svc.store.transaction() as tx:
        stored, created = await tx.update(tagged(response), response_id, if_match)
    return _answer(request, stored, 201 if created else 200, evaluation)
