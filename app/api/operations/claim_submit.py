"""`POST [base]/Claim/$submit`: a PAS request Bundle in, a PAS response Bundle out.

Served at the FHIR base for PAS 2.0.1 and at `/fhir/pas-2.2.1` for PAS 2.2.1 (PAS conf-1). The
body is the Bundle itself (or a Parameters whose `resource` parameter holds it). 200 with the
response Bundle; 4xx with an OperationOutcome naming the element (PAS spec-35). A resubmission
of the same request answers the stored decision. Requires `system/Claim.c`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.auth.guard import authorize
from app.fhir.jsonio import fhir_response
from app.fhir.models import parse_json_body
from app.fhir.negotiation import check_body_media_type, negotiate
from app.pas.codes import BASE_PATHS, PAS_VERSIONS, PasVersion
from app.pas.service import PasService
from app.registry import REGISTRY, OperationSpec

router = APIRouter()

SUBMIT = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"
REGISTRY.add_operation(
    OperationSpec(
        "submit",
        ("Claim",),
        SUBMIT,
        "PAS prior authorization request (PAS 2.0.1 here; PAS 2.2.1 at /fhir/pas-2.2.1)",
    )
)


def operation_body(raw: Any) -> Any:
    """The Bundle posted, unwrapped from a Parameters `resource` parameter when sent that way."""
    if isinstance(raw, dict) and raw.get("resourceType") == "Parameters":
        for parameter in raw.get("parameter") or []:
            if isinstance(parameter, dict) and parameter.get("name") == "resource":
                return parameter.get("resource")
    return raw


def _endpoint(version: PasVersion) -> Callable[[Request], Awaitable[Response]]:
    async def submit(request: Request) -> Response:
        principal = await authorize(request, "Claim", "c")
        negotiated = negotiate(request)
        check_body_media_type(request)
        payload = operation_body(parse_json_body(await request.body()))
        pas: PasService = request.app.state.pas
        submitted = await pas.submit(payload, principal.client_id, version)
        return fhir_response(submitted.bundle, 200, pretty=negotiated.pretty)

    submit.__name__ = f"claim_submit_{version.replace('.', '_')}"
    return submit


for _version in PAS_VERSIONS:
    router.add_api_route(
        f"{BASE_PATHS[_version]}/Claim/$submit", _endpoint(_version), methods=["POST"]
    )
