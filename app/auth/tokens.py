"""The access tokens this server issues, and the token endpoint's client_credentials exchange.

Access tokens are short JWTs (RFC 9068 style, header `typ: at+jwt`) signed HS256 with the
server's `token_secret`: `iss` = base URL, `sub` = `client_id` = the client, `aud` = the FHIR base
URL, `scope`, `exp`, `iat`, `jti`. Only this server signs and reads them, so a symmetric key is
enough and checking one costs microseconds; verified tokens are also cached by their exact text
until they expire, so the `/fhir` hot path rarely re-runs the HMAC.

Granting follows SMART App Launch 2.x (`app.auth.scopes` reads every scope): the granted scope is
the requested scopes that the client's registered scopes cover (`system/*.rs` covers
`system/Patient.rs`; v1 `.read/.write/.*` are understood), with the resource type in FHIR's
spelling (`system/questionnaire.rs` is granted as `system/Questionnaire.rs`, DTR spec-120); other
requested scopes are dropped, and when none is left the answer is `invalid_scope` listing each
and why. A request naming any granular scope (`system/Observation.rs?category=laboratory`) is
refused as a whole with `invalid_scope` naming it: this server cannot enforce the restriction
such a scope expresses, and granting it would hand out more than was asked for.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from app.auth.client_assertion import (
    ASSERTION_TYPE,
    ClientAssertionVerifier,
    OAuthError,
    invalid_client,
)
from app.auth.principal import Principal
from app.auth.scopes import grant_scopes

log = logging.getLogger("greenlight.auth")

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a JWT typ, not a secret)
MIN_SECRET_BYTES = 32
GRANT_TYPE = "client_credentials"


class InvalidAccessTokenError(Exception):
    """The bearer token is not one this server issued, or no longer valid."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


class AccessTokens:
    """Issues and verifies this server's HS256 access tokens."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        lifetime_seconds: int,
        cache_size: int = 4096,
    ) -> None:
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise RuntimeError(
                f"GREENLIGHT_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes long"
            )
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds
        self.cache_size = cache_size
        self._verified: dict[str, tuple[Principal, int]] = {}

    def issue(self, client_id: str, scopes: Sequence[str]) -> IssuedToken:
        now = int(time.time())
        scope = " ".join(scopes)
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "client_id": client_id,
            "aud": self.audience,
            "scope": scope,
            "iat": now,
            "exp": now + self.lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(
            claims, self._secret, algorithm="HS256", headers={"typ": ACCESS_TOKEN_TYPE}
        )
        return IssuedToken(token, self.lifetime_seconds, scope)

    def principal(self, token: str) -> Principal:
        """The caller a token stands for; raises InvalidAccessTokenError."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires_at = cached
            if time.time() < expires_at:
                return principal
            del self._verified[token]
            raise InvalidAccessTokenError("the access token has expired")
        principal, expires_at = self._decode(token)
        if len(self._verified) >= self.cache_size:
            now = time.time()
            for key in [k for k, (_, exp) in self._verified.items() if exp <= now]:
                del self._verified[key]
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
        self._verified[token] = (principal, expires_at)
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        try:
            decoded = jwt.decode_complete(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "scope"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidAccessTokenError("the access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidAccessTokenError(f"the access token is not valid: {exc}") from exc
        if decoded["header"].get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidAccessTokenError("the token is not an access token issued by this server")
        claims: dict[str, Any] = decoded["payload"]
        subject, scope = claims["sub"], claims["scope"]
        if not isinstance(subject, str) or not isinstance(scope, str):
            raise InvalidAccessTokenError("the access token has malformed sub or scope claims")
        return Principal(subject, frozenset(scope.split())), int(claims["exp"])


class TokenService:
    """`POST /auth/token`: client_credentials with a private_key_jwt client assertion."""

    def __init__(self, verifier: ClientAssertionVerifier, tokens: AccessTokens) -> None:
        self.verifier = verifier
        self.tokens = tokens

    async def exchange(self, form: Sequence[tuple[str, str]]) -> IssuedToken:
        """An access token for the client that signed the assertion, or raise OAuthError."""
        params: dict[str, str] = {}
        for name, value in form:
            if name in params:
                raise OAuthError("invalid_request", f"parameter {name} is repeated")
            params[name] = value
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != GRANT_TYPE:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type must be {GRANT_TYPE}, not {grant_type}"
            )
        requested = params.get("scope", "").strip()
        if not requested:
            raise OAuthError("invalid_request", "scope is required")
        assertion_type = params.get("client_assertion_type")
        assertion = params.get("client_assertion")
        if not assertion_type or not assertion:
            raise invalid_client("client_assertion_type and client_assertion are required")
        if assertion_type != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type {assertion_type} is not supported")
        verified = await self.verifier.verify(assertion, params.get("client_id"))
        client = verified.client
        grant = grant_scopes(requested, client.scopes)
        if grant.granular:
            raise OAuthError(
                "invalid_scope",
                "granular scopes (with a ?query) are not supported by this server: "
                + " ".join(grant.granular)
                + "; ask for the scope without its query",
            )
        granted = grant.granted
        if not granted:
            raise OAuthError(
                "invalid_scope",
                "none of the requested scopes is allowed for this client: " + grant.refusals(),
            )
        log.info("issued an access token to %s for %s", client.client_id, " ".join(granted))
        return self.tokens.issue(client.client_id, granted)
