"""SMART Backend Services authentication for `/fhir`: bearer tokens issued by `/auth/token`.

`SmartBackendAuth` is the `Authenticator` that `create_app` installs when auth is on (the
default). It reads `Authorization: Bearer <token>`, verifies the token as one this server issued
(`app.auth.tokens`) and answers 401 with `WWW-Authenticate: Bearer` (RFC 6750) and an
OperationOutcome when the token is missing, malformed, forged or expired. Scope checks per type
and interaction are `app.auth.guard.authorize`'s job.

It also owns the token endpoint's machinery (`token_service`), built from the same settings:
the registered clients, the access-token secret and the replay table. A registration listing a
scope this server never grants (a granular `?query` scope, a `user/` scope, an unknown type) is a
startup error, so every registered scope means what it says.
"""

from __future__ import annotations

import logging

from starlette.requests import Request

from app.auth.client_assertion import ClientAssertionVerifier, ReplayGuard, register_clients
from app.auth.principal import Principal
from app.auth.scopes import check_registered_scopes
from app.auth.tokens import AccessTokens, InvalidAccessTokenError, TokenService
from app.config import Settings
from app.fhir.outcomes import FhirError
from app.store.repository import ResourceStore

log = logging.getLogger("greenlight.auth")


def token_endpoint_url(settings: Settings) -> str:
    """The token endpoint URL, which is also the `aud` every client assertion must carry."""
    return f"{settings.base_url}/auth/token"


def build_token_service(settings: Settings, store: ResourceStore) -> TokenService:
    """The token endpoint's verifier and issuer, from the registered clients and the secret."""
    configs = settings.registered_clients()
    for config in configs:
        check_registered_scopes(config.client_id, config.scopes)
    clients = register_clients(configs)
    if not clients:
        log.warning("no SMART Backend Services clients are registered (GREENLIGHT_CLIENTS)")
    tokens = AccessTokens(
        settings.resolved_token_secret(),
        issuer=settings.base_url,
        audience=settings.fhir_base_url,
        lifetime_seconds=settings.token_lifetime_seconds,
    )
    verifier = ClientAssertionVerifier(
        clients,
        token_endpoint_url(settings),
        ReplayGuard(store.database.writer),
        max_lifetime_seconds=settings.assertion_max_lifetime_seconds,
    )
    return TokenService(verifier, tokens)


class SmartBackendAuth:
    """Authenticates `/fhir` callers by the bearer tokens this server issued."""

    def __init__(self, settings: Settings, store: ResourceStore) -> None:
        self.token_service = build_token_service(settings, store)
        self.tokens = self.token_service.tokens
        self._realm = settings.fhir_base_url

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise self._unauthorized("An access token is required (Authorization: Bearer)", None)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            raise self._unauthorized("Only Bearer access tokens are accepted", None)
        if not token:
            raise self._unauthorized("The Bearer access token is empty", "invalid_token")
        try:
            return self.tokens.principal(token)
        except InvalidAccessTokenError as exc:
            raise self._unauthorized(str(exc), "invalid_token") from exc

    def _unauthorized(self, diagnostics: str, error: str | None) -> FhirError:
        challenge = f'Bearer realm="{self._realm}"'
        if error:
            challenge += f', error="{error}"'
        return FhirError.single(401, "login", diagnostics, headers={"WWW-Authenticate": challenge})
