"""SMART discovery and the token endpoint (SMART App Launch 2.x, Backend Services).

- `GET /.well-known/smart-configuration` and `GET /fhir/.well-known/smart-configuration`: the
  public discovery document (no token needed).
- `POST /auth/token`: `grant_type=client_credentials` with a `private_key_jwt` client assertion,
  answered per RFC 6749 section 5: JSON, `Cache-Control: no-store`, errors as
  `{"error", "error_description"}` (invalid_client 401; invalid_request, unsupported_grant_type,
  invalid_scope 400). These answers are OAuth JSON, never OperationOutcomes.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.auth.client_assertion import ALLOWED_ALGORITHMS, OAuthError
from app.auth.scopes import REVIEWER_SCOPE
from app.auth.smart import SmartBackendAuth, build_token_service, token_endpoint_url
from app.auth.tokens import TokenService
from app.config import Settings
from app.registry import Registry

log = logging.getLogger("greenlight.auth")

router = APIRouter()

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"
_MAX_FORM_FIELDS = 32


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def smart_configuration(settings: Settings, registry: Registry) -> dict[str, Any]:
    """The SMART configuration document for this server."""
    scopes = ["system/*.cruds", "system/*.rs", "system/*.cud"]
    for resource_type in registry.resources:
        scopes += [f"system/{resource_type}.rs", f"system/{resource_type}.cud"]
    scopes.append(REVIEWER_SCOPE)
    return {
        "token_endpoint": token_endpoint_url(settings),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALLOWED_ALGORITHMS),
        "scopes_supported": scopes,
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        "code_challenge_methods_supported": [],
    }


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")
async def well_known(request: Request) -> Response:
    svc = services(request)
    return _json(smart_configuration(svc.settings, svc.registry))


def _token_service(request: Request) -> TokenService:
    authenticator = request.app.state.authenticator
    if isinstance(authenticator, SmartBackendAuth):
        return authenticator.token_service
    # Auth is off (demo): still issue tokens, so clients written for auth work unchanged.
    existing: TokenService | None = getattr(request.app.state, "smart_token_service", None)
    if existing is None:
        svc = services(request)
        existing = build_token_service(svc.settings, svc.store)
        request.app.state.smart_token_service = existing
    return existing


async def _form(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != _FORM:
        raise OAuthError("invalid_request", f"the token request must be {_FORM}")
    try:
        text = (await request.body()).decode("utf-8")
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=_MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the token request body is not a valid form") from exc


@router.post("/auth/token")
async def token(request: Request) -> Response:
    try:
        form = await _form(request)
        issued = await _token_service(request).exchange(form)
    except OAuthError as exc:
        log.warning("token request refused: %s", exc)
        return _json(exc.to_json(), exc.status, _NO_STORE)
    return _json(issued.to_json(), 200, _NO_STORE)
