"""Exception handlers, registered once: every error becomes an OperationOutcome.

A FhirError carries its status and outcome. FastAPI's own validation errors become 400s naming
the parameter. Anything else is logged with its traceback and answered with a generic 500 that
never shows exception text.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.fhir.jsonio import fhir_response
from app.fhir.outcomes import FhirError, Issue, operation_outcome

log = logging.getLogger("greenlight.errors")

_HTTP_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
}


async def _fhir_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return fhir_response(exc.outcome, exc.status, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = [
        Issue(
            "error",
            "invalid",
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}",
            (".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0]),),
        )
        for err in exc.errors()
    ]
    return fhir_response(operation_outcome(issues), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "processing")
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}"
    else:
        message = str(exc.detail)
    outcome = operation_outcome([Issue("error", code, message)])
    return fhir_response(outcome, exc.status_code, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
    outcome = operation_outcome(
        [Issue("fatal", "exception", f"Internal server error (incident {incident})")]
    )
    return fhir_response(outcome, 500)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
