"""CDS Hooks endpoints: `GET /cds-services` (discovery) and `POST /cds-services/{id}`.

Callers authenticate with a signed JWT whose `aud` is the exact service URL (CDS Hooks 2.0,
`app.auth.cds_jwt`). Errors answer an OperationOutcome (CRD hook-9/10).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.auth.cds_jwt import CdsJwtVerifier, OpenCdsAccess, cds_services_url
from app.fhir.outcomes import FhirError
from cds_hooks.hooks import SERVICES, SERVICES_BY_ID
from cds_hooks.request import parse_hook_request
from cds_hooks.respond import CrdResponder

router = APIRouter()
#: `POST` here calls a service; `create_app` routes it to `call_service` on the app itself
SERVICE_PATH = "/cds-services/{service_id}"


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/cds-services")
async def discovery(request: Request) -> Response:
    verifier: CdsJwtVerifier | OpenCdsAccess = request.app.state.cds_verifier
    settings = services(request).settings
    await verifier.verify(
        request.headers.get("authorization"), cds_services_url(settings), optional=True
    )
    return _json({"services": [service.discovery_entry() for service in SERVICES]})


async def call_service(request: Request) -> Response:
    """`POST /cds-services/{service_id}`: a plain Starlette route (it takes nothing FastAPI would
    inject or validate, so FastAPI's per-call dependency solving is skipped on the CRD hot path)."""
    service_id: str = request.path_params["service_id"]
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise FhirError.single(404, "not-found", f"No CDS service '{service_id}'", "service_id")
    verifier: CdsJwtVerifier | OpenCdsAccess = request.app.state.cds_verifier
    settings = services(request).settings
    caller = await verifier.verify(
        request.headers.get("authorization"), cds_services_url(settings, service_id)
    )
    responder: CrdResponder = request.app.state.crd
    # The parsed request is passed on, not kept: `record` waits holding the answer only.
    answer = await responder.answer(
        service, parse_hook_request(await request.body(), service.hook), caller
    )
    return Response(await responder.record(answer), media_type="application/json")
