"""Client authentication at the token endpoint: the SMART Backend Services client assertion.

A client proves who it is with a JWT it signs with its own private key (`private_key_jwt`,
RFC 7523) and the server checks it against the public keys the client registered: an inline
JWKS, or a JWKS URL fetched with httpx and cached by `kid` (refetched when a `kid` is unknown, so
clients can rotate keys). The rules follow SMART App Launch 2.x, "Backend Services":

- header `alg` is RS384 or ES384 (`none`, HMAC and anything else are refused), `kid` names the key;
  a `jku` header, when present, must be the JWKS URL the client registered;
- `iss` == `sub` == a registered `client_id`; `aud` is this server's token endpoint URL;
- `exp` is present, not past, and at most `assertion_max_lifetime_seconds` ahead;
- `jti` is present and never seen before for this client (kept in `used_assertion_ids` until the
  assertion expires; a duplicate primary key on insert is a replay).

Every failure is an `OAuthError("invalid_client")`, answered 401 by the token endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from app.config import ClientConfig
from app.store.db import WriteEngine
from app.store.row_writes import row_write, write_one
from app.store.tables import used_assertion_ids

log = logging.getLogger("greenlight.auth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS384", "ES384")
CLOCK_SKEW_SECONDS = 30
MIN_RSA_BITS = 2048
MAX_JTI_LENGTH = 255
MAX_JWKS_BYTES = 256 * 1024

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class OAuthError(Exception):
    """An RFC 6749 error answer: `{"error": ..., "error_description": ...}` with `status`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def _public_key(jwk: Mapping[str, Any]) -> tuple[str, PublicKey] | None:
    """The algorithm and public key a JWK can verify, or None when it is unusable for us."""
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if isinstance(key_ops, list) and "verify" not in key_ops:
        return None
    kty = jwk.get("kty")
    declared = jwk.get("alg")
    if kty == "RSA" and declared in (None, "RS384"):
        rsa_key = RSAAlgorithm.from_jwk(dict(jwk))
        public = rsa_key.public_key() if isinstance(rsa_key, rsa.RSAPrivateKey) else rsa_key
        if public.key_size < MIN_RSA_BITS:
            return None
        return "RS384", public
    if kty == "EC" and jwk.get("crv") == "P-384" and declared in (None, "ES384"):
        ec_key = ECAlgorithm.from_jwk(dict(jwk))
        if isinstance(ec_key, ec.EllipticCurvePrivateKey):
            return "ES384", ec_key.public_key()
        return "ES384", ec_key
    return None


KeyIndex = dict[tuple[str, str], PublicKey]


def index_jwks(jwks: Mapping[str, Any], source: str) -> KeyIndex:
    """`{(kid, alg): public key}` for the keys of a JWKS we can verify RS384/ES384 with."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError(f"{source}: a JWKS must be an object with a `keys` array")
    index: KeyIndex = {}
    for position, jwk in enumerate(keys):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            log.warning("%s: keys[%d] has no kid and cannot be selected; ignored", source, position)
            continue
        try:
            usable = _public_key(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.warning(
                "%s: keys[%d] (kid %s) is not a valid JWK: %s", source, position, jwk["kid"], exc
            )
            continue
        if usable is not None:
            alg, key = usable
            index[(jwk["kid"], alg)] = key
    return index


class RemoteJwks:
    """A client's JWKS URL: fetched with httpx, cached, refetched when stale or on unknown `kid`.

    A refetch for an unknown `kid` happens at most once per `min_refresh_seconds`, so a caller
    cannot make the server hammer the client's key host.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout_seconds = timeout_seconds
        self._keys: KeyIndex | None = None
        self._fetched_at = 0.0
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str, alg: str) -> PublicKey | None:
        """The key for (`kid`, `alg`); raises `invalid_client` when no JWKS could be fetched."""
        now = time.monotonic()
        if self._keys is None or now - self._fetched_at > self.ttl_seconds:
            await self._refresh(force=False)
        found = self._keys.get((kid, alg)) if self._keys is not None else None
        if found is None:
            await self._refresh(force=True)
            found = self._keys.get((kid, alg)) if self._keys is not None else None
        if self._keys is None:
            raise invalid_client("the client's JWKS URL could not be fetched")
        return found

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self.min_refresh_seconds:
                return  # fetched (or tried) just now, possibly by a concurrent request
            if not force and self._keys is not None and now - self._fetched_at <= self.ttl_seconds:
                return
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS %s could not be fetched: %s", self.url, exc)
                return  # keep serving the keys we had, if any
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> KeyIndex:
        async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as http:
            response = await http.get(self.url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS is too large")
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("the JWKS is not a JSON object")
        return index_jwks(document, self.url)


_RECORD_JTI = row_write(insert(used_assertion_ids), ("client_id", "jti", "expires_at"))


class ReplayGuard:
    """Remembers each (client, jti) until its assertion expires; a second use is a replay."""

    def __init__(self, engine: WriteEngine, *, purge_every_seconds: float = 60.0) -> None:
        self.engine = engine
        self.purge_every_seconds = purge_every_seconds
        self._purged_at = float("-inf")

    async def first_use(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record the jti; False when it was already recorded (a replay)."""
        if time.monotonic() - self._purged_at > self.purge_every_seconds:
            # claimed before the first await: the calls arriving meanwhile do not purge too
            self._purged_at = time.monotonic()
            await self._purge_expired()
        try:
            await write_one(
                self.engine,
                _RECORD_JTI,
                {"client_id": client_id, "jti": jti, "expires_at": expires_at},
            )
        except IntegrityError:
            return False
        return True

    async def _purge_expired(self) -> None:
        """Forget the jtis whose assertions have expired (they can no longer be replayed)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(used_assertion_ids).where(used_assertion_ids.c.expires_at < int(time.time()))
            )


@dataclass(frozen=True)
class KeySource:
    """Where a client's verification keys come from: an inline JWKS, else its JWKS URL."""

    inline_keys: KeyIndex | None
    remote: RemoteJwks | None

    async def key(self, kid: str, alg: str) -> PublicKey | None:
        if self.inline_keys is not None:
            return self.inline_keys.get((kid, alg))
        assert self.remote is not None
        return await self.remote.key(kid, alg)


def key_source(
    jwks: Mapping[str, Any] | None,
    jwks_url: str | None,
    *,
    label: str,
    min_refresh_seconds: float,
) -> KeySource:
    """Inline keys when a JWKS is given (it must hold a usable key), else the JWKS URL."""
    if jwks is not None:
        try:
            inline = index_jwks(jwks, f"{label}.jwks")
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc
        if not inline:
            raise RuntimeError(
                f"{label} has no RS384 (RSA >= 2048) or ES384 (P-384) key with a kid in its JWKS"
            )
        return KeySource(inline, None)
    if jwks_url is None:
        raise RuntimeError(f"{label} needs `jwks` or `jwks_url`")
    return KeySource(None, RemoteJwks(jwks_url, min_refresh_seconds=min_refresh_seconds))


@dataclass(frozen=True)
class RegisteredClient:
    """A SMART Backend Services client and its key source."""

    config: ClientConfig
    keys: KeySource

    async def key(self, kid: str, alg: str) -> PublicKey | None:
        return await self.keys.key(kid, alg)


def register_clients(
    clients: Iterable[ClientConfig], *, min_refresh_seconds: float = 5.0
) -> dict[str, RegisteredClient]:
    """Index the configured clients by id; a client without usable keys is a startup error."""
    registered: dict[str, RegisteredClient] = {}
    for client in clients:
        if client.client_id in registered:
            raise RuntimeError(f"clients: client_id {client.client_id!r} is registered twice")
        if (client.jwks is None) == (client.jwks_url is None):
            raise RuntimeError(
                f"clients: {client.client_id!r} needs exactly one of `jwks` and `jwks_url`"
            )
        registered[client.client_id] = RegisteredClient(
            client,
            key_source(
                client.jwks,
                client.jwks_url,
                label=f"clients[{client.client_id}]",
                min_refresh_seconds=min_refresh_seconds,
            ),
        )
    return registered


@dataclass(frozen=True)
class VerifiedAssertion:
    """A client assertion that passed every check (its jti is now recorded)."""

    client: ClientConfig
    jti: str
    expires_at: int


class ClientAssertionVerifier:
    """Checks `client_assertion` JWTs for the token endpoint at `token_endpoint`."""

    def __init__(
        self,
        clients: Mapping[str, RegisteredClient],
        token_endpoint: str,
        replay_guard: ReplayGuard,
        *,
        max_lifetime_seconds: int = 300,
    ) -> None:
        self.clients = clients
        self.token_endpoint = token_endpoint
        self.replay_guard = replay_guard
        self.max_lifetime_seconds = max_lifetime_seconds

    async def verify(self, assertion: str, client_id: str | None = None) -> VerifiedAssertion:
        """The verified assertion, or raise `OAuthError("invalid_client")` saying why."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise invalid_client(f"client_assertion is not a JWT: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise invalid_client(
                f"client_assertion alg {alg!r} is not accepted; use one of "
                + ", ".join(ALLOWED_ALGORITHMS)
            )
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise invalid_client("client_assertion has no iss (the client_id)")
        if client_id is not None and client_id != issuer:
            raise invalid_client("client_id does not match the client_assertion iss")
        client = self.clients.get(issuer)
        if client is None:
            raise invalid_client(f"client {issuer!r} is not registered")
        jku = header.get("jku")
        if jku is not None and jku != client.config.jwks_url:
            raise invalid_client(
                "client_assertion jku is not the JWKS URL registered for the client"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_client("client_assertion header has no kid")
        key = await client.key(kid, alg)
        if key is None:
            raise invalid_client(f"no {alg} key with kid {kid!r} is registered for the client")
        claims = self._verified_claims(assertion, key, alg, issuer)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise invalid_client(
                f"client_assertion jti must be a string of 1-{MAX_JTI_LENGTH} chars"
            )
        expires_at = int(claims["exp"])
        if not await self.replay_guard.first_use(issuer, jti, expires_at + CLOCK_SKEW_SECONDS):
            raise invalid_client("client_assertion jti was already used (replay)")
        return VerifiedAssertion(client.config, jti, expires_at)

    def _verified_claims(
        self, assertion: str, key: PublicKey, alg: str, client_id: str
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=self.token_endpoint,
                issuer=client_id,
                subject=client_id,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "jti"], "strict_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise invalid_client("client_assertion has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise invalid_client(f"client_assertion aud must be {self.token_endpoint}") from exc
        except jwt.InvalidSignatureError as exc:
            raise invalid_client("client_assertion signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise invalid_client(f"client_assertion lacks the {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise invalid_client(f"client_assertion is invalid: {exc}") from exc
        exp = claims["exp"]
        if not isinstance(exp, int | float):
            raise invalid_client("client_assertion exp must be a number")
        if exp - time.time() > self.max_lifetime_seconds + CLOCK_SKEW_SECONDS:
            raise invalid_client(
                f"client_assertion exp is more than {self.max_lifetime_seconds} s in the future"
            )
        return claims
