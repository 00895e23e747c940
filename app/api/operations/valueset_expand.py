"""`ValueSet/$expand` for the value sets the payer's Questionnaires and CQL use (DTR oper-4,
oper-5): by `url` (optionally `valueSetVersion`) at type level, GET or POST, or at instance level
`/fhir/ValueSet/{id}/$expand`. The expansion is as of today and holds active codes only. A value
set this payer does not publish answers 404 with an OperationOutcome.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.operations.dtr import dtr_services, json_body, today
from app.auth.guard import authorize
from app.dtr.content import DtrContent, expand
from app.fhir.jsonio import fhir_response
from app.fhir.negotiation import negotiate
from app.fhir.outcomes import FhirError
from app.registry import REGISTRY, OperationSpec

REGISTRY.add_operation(
    OperationSpec(
        name="expand",
        resource_types=("ValueSet",),
        definition="http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
        documentation="Expansions (today, active codes only) of the value sets the payer's "
        "Questionnaires and CQL use",
    )
)

router = APIRouter()


def _find(content: DtrContent, url: str | None, version: str | None) -> dict[str, Any]:
    if not url:
        raise FhirError.single(400, "required", "$expand needs the url parameter", "url")
    canonical = f"{url}|{version}" if version and "|" not in url else url
    valueset = content.valueset(canonical)
    if valueset is None:
        raise FhirError.single(
            404, "not-found", f"The value set {canonical} is not published by this payer", "url"
        )
    return valueset


def _post_params(body: Any) -> dict[str, str]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.single(
            400, "invalid", "The body must be a Parameters resource", "Parameters"
        )
    values: dict[str, str] = {}
    for parameter in body.get("parameter") or []:
        name = parameter.get("name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if isinstance(name, str) and isinstance(value, str):
            values[name] = value
    return values


@router.get("/fhir/ValueSet/$expand")
async def expand_get(request: Request) -> Response:
    await authorize(request, "ValueSet", "r")
    negotiated = negotiate(request)
    params = request.query_params
    valueset = _find(
        dtr_services(request).content, params.get("url"), params.get("valueSetVersion")
    )
    return fhir_response(expand(valueset, today()), 200, pretty=negotiated.pretty)


@router.post("/fhir/ValueSet/$expand")
async def expand_post(request: Request) -> Response:
    await authorize(request, "ValueSet", "r")
    negotiated = negotiate(request)
    params = _post_params(await json_body(request))
    valueset = _find(
        dtr_services(request).content, params.get("url"), params.get("valueSetVersion")
    )
    return fhir_response(expand(valueset, today()), 200, pretty=negotiated.pretty)


@router.get("/fhir/ValueSet/{valueset_id}/$expand")
async def expand_instance(request: Request, valueset_id: str) -> Response:
    await authorize(request, "ValueSet", "r")
    negotiated = negotiate(request)
    content = dtr_services(request).content
    found = next((vs for vs in content.valuesets.values() if vs.get("id") == valueset_id), None)
    if found is None:
        raise FhirError.single(
            404, "not-found", f"ValueSet/{valueset_id} is not published by this payer", "ValueSet"
        )
    return fhir_response(expand(found, today()), 200, pretty=negotiated.pretty)
