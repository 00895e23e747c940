"""`GET /fhir/metadata`: the CapabilityStatement (no authentication required)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.fhir.capability import capability_statement
from app.fhir.jsonio import fhir_response
from app.fhir.negotiation import negotiate

router = APIRouter(prefix="/fhir")

_STARTED = datetime.now(UTC).isoformat(timespec="seconds")


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    negotiated = negotiate(request)
    svc = services(request)
    statement = capability_statement(svc.settings, svc.registry, _STARTED)
    return fhir_response(statement, pretty=negotiated.pretty)
