"""`POST /fhir/Questionnaire/$next-question` (SDC, as profiled by DTR 2.0.1): HTTP in and out;
the adaptive engine is `app.dtr.adaptive`. The answer is the bare QuestionnaireResponse (what
Inferno's DTR payer suite requires), status 200; an invalid response is a 400 with an
OperationOutcome naming each problem (DTR spec-147).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.operations.dtr import dtr_services, json_body, today
from app.auth.guard import authorize
from app.dtr.adaptive import next_question as next_step
from app.fhir.jsonio import fhir_response
from app.fhir.negotiation import negotiate
from app.registry import REGISTRY, OperationSpec

PATH = "/fhir/Questionnaire/$next-question"

REGISTRY.add_operation(
    OperationSpec(
        name="next-question",
        resource_types=("Questionnaire",),
        definition="http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-next-question",
        documentation="The next questions of an adaptive form (lumbar spine MRI)",
    )
)

router = APIRouter()


@router.post(PATH)
async def next_question(request: Request) -> Response:
    await authorize(request, "Questionnaire", "r")
    negotiated = negotiate(request)
    body = await json_body(request)
    dtr = dtr_services(request)
    response = next_step(body, dtr.flows, dtr.content, today())
    return fhir_response(response, 200, pretty=negotiated.pretty)
