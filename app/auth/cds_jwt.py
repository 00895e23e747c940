"""CDS Hooks caller authentication: the JWT a CDS Client (EHR) signs on every service call.

CDS Hooks 2.0 "Trusting CDS Clients" (and CRD 2.0.1, which requires it): the client sends
`Authorization: Bearer <JWT>` signed with its own key; the service checks it against the JWKS of
the trusted issuer. The rules enforced here:

- header `alg` is RS384 or ES384 (`none`, HMAC and anything else are refused before any key is
  looked up); `kid` is required; `typ`, when present, is `JWT`;
- `iss` is a registered CDS client (`GREENLIGHT_CDS_CLIENTS`: issuer -> JWKS URL); a `jku`
  header, when present, must be exactly the JWKS URL registered for that issuer (an unregistered
  `jku` is never fetched); without `jku` the registered JWKS is used. Keys are cached by `kid`
  (`RemoteJwks`: refetched on an unknown `kid`, rate limited);
- `aud` is the exact URL of the service called (`{base_url}/cds-services/{id}`, or the discovery
  URL), compared after dropping one trailing slash on each side;
- `exp`, `iat` and `jti` are required; 60 s of clock skew on `exp`/`iat`/`nbf`; `exp` at most
  `max_lifetime_seconds` ahead (it bounds how long a `jti` is remembered);
- `jti` is never accepted twice from the same issuer (the `used_assertion_ids` table, keyed by
  `cds:<iss>`).

`sub` (the client_id, optional in CDS Hooks 2.0) and `tenant` are reported in the `CdsCaller`.
Every failure is `FhirError(401, login)` with `WWW-Authenticate: Bearer` (CDS Hooks and CRD want an
OperationOutcome on errors). Calls without an `Authorization` header are accepted only when
`GREENLIGHT_CDS_ALLOW_UNSIGNED` is set (demo mode only), with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from app.auth.client_assertion import (
    ALLOWED_ALGORITHMS,
    MAX_JTI_LENGTH,
    KeySource,
    OAuthError,
    PublicKey,
    ReplayGuard,
    key_source,
)
from app.auth.compact_jws import (
    ClaimError,
    CompactJws,
    MalformedJwsError,
    check_time_claims,
    parse_compact_jws,
    signature_verifies,
)
from app.config import CdsClientConfig, Settings
from app.fhir.outcomes import FhirError
from app.store.repository import ResourceStore

log = logging.getLogger("greenlight.auth.cds")

CLOCK_SKEW_SECONDS = 60
DEFAULT_MAX_LIFETIME_SECONDS = 3600
REPLAY_SCOPE_PREFIX = "cds:"
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
_MAX_REPLAY_CLIENT_ID = 255  # used_assertion_ids.client_id is VARCHAR(255)


@dataclass(frozen=True)
class CdsCaller:
    """Who called a CDS service: the verified JWT's issuer, client id and tenant.

    `authenticated` is False only for an unsigned call accepted in demo mode (`ANONYMOUS_CDS`).
    """

    authenticated: bool
    issuer: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    name: str | None = None
    jti: str | None = None


ANONYMOUS_CDS = CdsCaller(authenticated=False)


@dataclass(frozen=True)
class CdsClient:
    """A trusted CDS client and where its verification keys come from."""

    config: CdsClientConfig
    keys: KeySource

    async def key(self, kid: str, alg: str) -> PublicKey | None:
        return await self.keys.key(kid, alg)


def register_cds_clients(
    configs: Iterable[CdsClientConfig], *, min_refresh_seconds: float = 5.0
) -> dict[str, CdsClient]:
    """Index the trusted CDS clients by issuer; unusable inline keys are a startup error."""
    registered: dict[str, CdsClient] = {}
    for config in configs:
        if config.iss in registered:
            raise RuntimeError(f"cds_clients: issuer {config.iss!r} is registered twice")
        registered[config.iss] = CdsClient(
            config,
            key_source(
                config.jwks,
                config.jwks_url,
                label=f"cds_clients[{config.iss}]",
                min_refresh_seconds=min_refresh_seconds,
            ),
        )
    return registered


def _same_url(left: str, right: str) -> bool:
    return left.removesuffix("/") == right.removesuffix("/")


def _replay_scope(issuer: str) -> str:
    """The `used_assertion_ids.client_id` for an issuer: `cds:<iss>`, hashed when too long."""
    scope = REPLAY_SCOPE_PREFIX + issuer
    if len(scope) <= _MAX_REPLAY_CLIENT_ID:
        return scope
    return REPLAY_SCOPE_PREFIX + "sha256:" + hashlib.sha256(issuer.encode()).hexdigest()


class CdsJwtVerifier:
    """Verifies the `Authorization` header of CDS Hooks calls (see the module docstring)."""

    def __init__(
        self,
        clients: Mapping[str, CdsClient],
        replay_guard: ReplayGuard,
        *,
        allow_unsigned: bool = False,
        realm: str | None = None,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
    ) -> None:
        self.clients = clients
        self.replay_guard = replay_guard
        self.allow_unsigned = allow_unsigned
        self.realm = realm
        self.max_lifetime_seconds = max_lifetime_seconds
        self._warned_unsigned = False

    async def verify(
        self, authorization_header: str | None, service_url: str, *, optional: bool = False
    ) -> CdsCaller:
        """The caller of `service_url`, or raise `FhirError(401)`.

        Without an `Authorization` header the call is anonymous when `optional` (discovery) or
        when unsigned calls are allowed; a header that is sent is always verified.
        """
        if authorization_header is None or not authorization_header.strip():
            if optional:
                return ANONYMOUS_CDS
            if self.allow_unsigned:
                self._note_unsigned(service_url)
                return ANONYMOUS_CDS
            raise self._unauthorized("CDS Hooks calls require Authorization: Bearer <JWT>", None)
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            raise self._unauthorized("Only a Bearer JWT is accepted on CDS Hooks calls", None)
        if not token:
            raise self._unauthorized("The Bearer JWT is empty")
        return await self._verify_jwt(token, service_url)

    async def _verify_jwt(self, token: str, service_url: str) -> CdsCaller:
        try:
            jws = parse_compact_jws(token)
        except MalformedJwsError as exc:
            raise self._unauthorized(f"The Bearer token is not a JWT: {exc}") from exc
        header, unverified = jws.header, jws.claims
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise self._unauthorized(
                f"JWT alg {alg!r} is not accepted; use one of " + ", ".join(ALLOWED_ALGORITHMS)
            )
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise self._unauthorized(f"JWT typ {typ!r} is not accepted; use JWT")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise self._unauthorized("The JWT has no iss (the CDS client)")
        client = self.clients.get(issuer)
        if client is None:
            raise self._unauthorized(f"CDS client {issuer!r} is not registered")
        jku = header.get("jku")
        if jku is not None and jku != client.config.jwks_url:
            raise self._unauthorized("The JWT jku is not the JWKS URL registered for its issuer")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise self._unauthorized("The JWT header has no kid")
        try:
            key = await client.key(kid, alg)
        except OAuthError as exc:
            raise self._unauthorized(f"The JWKS of {issuer!r} could not be fetched") from exc
        if key is None:
            raise self._unauthorized(f"No {alg} key with kid {kid!r} is registered for {issuer!r}")
        claims = self._verified_claims(jws, key, alg, service_url)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise self._unauthorized(f"The JWT jti must be a string of 1-{MAX_JTI_LENGTH} chars")
        expires_at = int(claims["exp"])
        if not await self.replay_guard.first_use(
            _replay_scope(issuer), jti, expires_at + CLOCK_SKEW_SECONDS
        ):
            raise self._unauthorized("The JWT jti was already used (replay)")
        sub = claims.get("sub")
        tenant = claims.get("tenant")
        return CdsCaller(
            authenticated=True,
            issuer=issuer,
            client_id=sub if isinstance(sub, str) and sub else issuer,
            tenant=tenant if isinstance(tenant, str) and tenant else None,
            name=client.config.name,
            jti=jti,
        )

    def _verified_claims(
        self, jws: CompactJws, key: PublicKey, alg: str, service_url: str
    ) -> dict[str, Any]:
        if not signature_verifies(jws, key, alg):
            raise self._unauthorized("The JWT signature does not verify")
        claims = jws.claims
        for name in REQUIRED_CLAIMS:
            if claims.get(name) is None:
                raise self._unauthorized(f"The JWT lacks the {name} claim")
        try:
            check_time_claims(claims, time.time(), CLOCK_SKEW_SECONDS)
        except ClaimError as exc:
            if exc.kind == "expired":
                raise self._unauthorized("The JWT has expired") from exc
            if exc.kind == "immature":
                raise self._unauthorized(f"The JWT is not valid yet (iat or nbf): {exc}") from exc
            raise self._unauthorized(f"The JWT is invalid: {exc}") from exc
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not any(
            isinstance(item, str) and _same_url(item, service_url) for item in audiences
        ):
            raise self._unauthorized(f"The JWT aud must be the service URL {service_url}")
        exp = claims["exp"]
        if exp - time.time() > self.max_lifetime_seconds + CLOCK_SKEW_SECONDS:
            raise self._unauthorized(
                f"The JWT exp is more than {self.max_lifetime_seconds} s in the future"
            )
        return claims

    def _note_unsigned(self, service_url: str) -> None:
        if not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning(
                "accepting CDS Hooks calls WITHOUT a JWT (GREENLIGHT_CDS_ALLOW_UNSIGNED, demo "
                "mode): never do this in production"
            )
        log.debug("unsigned CDS Hooks call to %s accepted", service_url)

    def _unauthorized(self, diagnostics: str, error: str | None = "invalid_token") -> FhirError:
        challenge = "Bearer"
        params: list[str] = []
        if self.realm:
            params.append(f'realm="{self.realm}"')
        if error:
            params.append(f'error="{error}"')
        if params:
            challenge += " " + ", ".join(params)
        return FhirError.single(401, "login", diagnostics, headers={"WWW-Authenticate": challenge})


def cds_services_url(settings: Settings, service_id: str | None = None) -> str:
    """The discovery URL, or a service's URL: the `aud` its callers' JWTs must carry."""
    base = f"{settings.base_url}/cds-services"
    return base if service_id is None else f"{base}/{service_id}"


def build_cds_verifier(settings: Settings, store: ResourceStore) -> CdsJwtVerifier:
    """The verifier for the configured CDS clients; the replay table is on the store's writer."""
    if settings.cds_allow_unsigned and not settings.demo:
        raise RuntimeError("GREENLIGHT_CDS_ALLOW_UNSIGNED is only allowed with GREENLIGHT_DEMO")
    try:
        configs = settings.registered_cds_clients()
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"GREENLIGHT_CDS_CLIENTS cannot be read: {exc}") from exc
    clients = register_cds_clients(configs)
    if settings.cds_allow_unsigned:
        log.warning(
            "!!! CDS Hooks calls without a JWT are accepted (GREENLIGHT_CDS_ALLOW_UNSIGNED, demo)"
        )
    elif not clients:
        log.warning(
            "no CDS Hooks clients are registered (GREENLIGHT_CDS_CLIENTS): every hook call "
            "will be refused with 401"
        )
    return CdsJwtVerifier(
        clients,
        ReplayGuard(store.database.writer),
        allow_unsigned=settings.cds_allow_unsigned,
        realm=cds_services_url(settings),
    )


class OpenCdsAccess:
    """CDS Hooks with authentication off (demo mode only, like `/fhir`): every call is accepted.

    Inferno always sends a JWT, signed by keys whose location depends on where Inferno runs; in
    the demo it is not verified. The issuer is kept (unverified) for the audit trail only.
    """

    async def verify(
        self, authorization_header: str | None, service_url: str, *, optional: bool = False
    ) -> CdsCaller:
        scheme, _, token = (authorization_header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return ANONYMOUS_CDS
        try:
            claims = jwt.decode(token.strip(), options={"verify_signature": False})
        except jwt.PyJWTError:
            return ANONYMOUS_CDS
        issuer = claims.get("iss")
        return CdsCaller(authenticated=False, issuer=f"unverified:{issuer}" if issuer else None)
