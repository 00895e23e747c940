"""`POST /fhir/Questionnaire/$questionnaire-package` (DTR 2.0.1 OperationDefinition
`questionnaire-package`): HTTP in and out; the packaging is `app.dtr.package`.

The input is checked against `dtr-qpackage-input-parameters` as `GREENLIGHT_VALIDATION` says; in
`warn` mode its errors are returned as warnings in the output's `operationOutcome` (best-practice
warnings are only logged). The
operation takes a Coverage resource, so it has no GET form (FHIR: GET only for operations whose
inputs are all primitives): GET answers 405.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.api.operations.dtr import dtr_services, json_body, today
from app.auth.guard import authorize
from app.dtr.package import PackageBuilder, parse_input
from app.fhir.jsonio import fhir_response
from app.fhir.negotiation import negotiate
from app.fhir.outcomes import FhirError, Issue
from app.fhir.validation.policy import DTR_QPACKAGE_INPUT, DTR_V201, check_inbound
from app.registry import REGISTRY, OperationSpec

PATH = "/fhir/Questionnaire/$questionnaire-package"
DEFINITION = "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package"

REGISTRY.add_operation(
    OperationSpec(
        name="questionnaire-package",
        resource_types=("Questionnaire",),
        definition=DEFINITION,
        documentation="DTR Questionnaire packages (Questionnaire, draft response, CQL Libraries, "
        "value sets) for orders, a CRD coverage assertion id, or Questionnaire canonicals",
    )
)

router = APIRouter()


def _as_warning(issue: Issue) -> Issue:
    severity = "warning" if issue.severity in ("error", "fatal") else issue.severity
    return Issue(severity, issue.code, f"Input: {issue.diagnostics}", issue.expression)


@router.post(PATH)
async def questionnaire_package(request: Request) -> Response:
    await authorize(request, "Questionnaire", "r")
    negotiated = negotiate(request)
    body = await json_body(request)
    package_input = parse_input(body)
    svc = services(request)
    findings = check_inbound(body, svc.settings, profile=DTR_QPACKAGE_INPUT, prefer=DTR_V201)
    builder = PackageBuilder(dtr_services(request).package, today())
    builder.issues.extend(_as_warning(i) for i in findings if i.severity in ("error", "fatal"))
    result = await builder.build(package_input)
    return fhir_response(result, 200, pretty=negotiated.pretty)


@router.get(PATH)
async def questionnaire_package_get(request: Request) -> Response:
    await authorize(request, "Questionnaire", "r")
    raise FhirError.single(
        405,
        "not-supported",
        "$questionnaire-package takes a Coverage resource: POST a Parameters resource",
        "$questionnaire-package",
        headers={"Allow": "POST"},
    )
