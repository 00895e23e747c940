"""`POST [base]/Claim/$inquire`: the current answer for earlier prior authorization requests.

PAS 2.0.1 (at the FHIR base) answers an Inquiry Response Bundle; PAS 2.2.1 (at
`/fhir/pas-2.2.1`) answers Parameters with one `return` Bundle per request found. Any client
holding `system/ClaimResponse.r` may ask, and finds only requests that match on both a member id
and a provider identifier (PAS spec-52/53).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.operations.claim_submit import operation_body
from app.auth.guard import authorize
from app.fhir.jsonio import fhir_response
from app.fhir.models import parse_json_body
from app.fhir.negotiation import check_body_media_type, negotiate
from app.pas.codes import BASE_PATHS, PAS_VERSIONS, PasVersion
from app.pas.inquiry import inquire
from app.pas.service import PasService
from app.registry import REGISTRY, OperationSpec

router = APIRouter()

INQUIRE = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry"
REGISTRY.add_operation(
    OperationSpec(
        "inquire",
        ("Claim",),
        INQUIRE,
        "PAS prior authorization inquiry (PAS 2.0.1 here; PAS 2.2.1 at /fhir/pas-2.2.1)",
    )
)


def _endpoint(version: PasVersion) -> Callable[[Request], Awaitable[Response]]:
    async def claim_inquire(request: Request) -> Response:
        await authorize(request, "ClaimResponse", "r")
        negotiated = negotiate(request)
        check_body_media_type(request)
        payload = operation_body(parse_json_body(await request.body()))
        pas: PasService = request.app.state.pas
        answer = await inquire(pas, payload, version)
        return fhir_response(answer, 200, pretty=negotiated.pretty)

    claim_inquire.__name__ = f"claim_inquire_{version.replace('.', '_')}"
    return claim_inquire


for _version in PAS_VERSIONS:
    router.add_api_route(
        f"{BASE_PATHS[_version]}/Claim/$inquire", _endpoint(_version), methods=["POST"]
    )
