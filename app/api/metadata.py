"""`GET /fhir/metadata`: the CapabilityStatement (no authentication required).

The statement depends only on settings and the registry, fixed for the process, so its JSON is
built once per form (compact or pretty) and served as bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.fhir.capability import capability_statement
from app.fhir.jsonio import FhirResponse, dumps, strip_nulls
from app.fhir.negotiation import negotiate

router = APIRouter(prefix="/fhir")

_STARTED = datetime.now(UTC).isoformat(timespec="seconds")


def _statement_bytes(request: Request, pretty: bool) -> bytes:
    cache: dict[bool, bytes] | None = getattr(request.app.state, "capability_bytes", None)
    if cache is None:
        cache = {}
        request.app.state.capability_bytes = cache
    if pretty not in cache:
        svc = services(request)
        statement = capability_statement(svc.settings, svc.registry, _STARTED)
        cache[pretty] = dumps(strip_nulls(statement), pretty=pretty)
    return cache[pretty]


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    negotiated = negotiate(request)
    return FhirResponse(content=_statement_bytes(request, negotiated.pretty))
