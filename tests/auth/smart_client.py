"""A test-side SMART Backend Services client: keys, signed client assertions, token requests,
a loopback JWKS host, and checks of the error bodies (OAuth JSON and OperationOutcome).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.auth.client_assertion import ASSERTION_TYPE
from tests.support.live_server import LiveServer
from tests.support.loopback_http import serve_on_loopback

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_DROP = object()


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@dataclass(frozen=True)
class ClientKey:
    """A client's signing key: signs assertions as `client_id` with `alg` under `kid`."""

    client_id: str
    kid: str
    alg: str
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def with_client(self, client_id: str) -> ClientKey:
        return ClientKey(client_id, self.kid, self.alg, self.private_key)

    def claims(self, aud: str, *, lifetime: int = 240, **overrides: Any) -> dict[str, Any]:
        """SMART assertion claims; an override of `DROP` removes that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud,
            "exp": now + lifetime,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not _DROP}

    def assertion(
        self,
        aud: str,
        *,
        lifetime: int = 240,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        header = {"kid": self.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(
            self.claims(aud, lifetime=lifetime, **overrides),
            self.private_key,
            algorithm=self.alg,
            headers=header,
        )


DROP: Any = _DROP


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT with an empty signature (as `alg: none` tokens are)."""
    return _signing_input(header, claims) + "."


def hmac_jwt(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed with HMAC under `header["alg"]` (HS256/HS384/HS512) with any secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signing_input = _signing_input(header, claims)
    mac = hmac.new(secret, signing_input.encode(), digest[header["alg"]]).digest()
    return f"{signing_input}.{_b64(mac)}"


def token_url(server: LiveServer) -> str:
    return f"{server.base_url}/auth/token"


def request_token(server: LiveServer, assertion: str, scope: str, **extra: str) -> httpx.Response:
    """POST a client_credentials token request (form-encoded) to the live server."""
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
    return httpx.post(token_url(server), data=form, timeout=30)


def access_token(server: LiveServer, key: ClientKey, scope: str) -> str:
    response = request_token(server, key.assertion(token_url(server)), scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    """Assert an RFC 6749 error answer; returns its error_description."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    description: str = body["error_description"]
    assert description
    return description


def operation_outcome(response: httpx.Response, status: int, code: str) -> str:
    """Assert an OperationOutcome answer with one error issue of `code`; returns diagnostics."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert [issue["severity"] for issue in body["issue"]] == ["error"], body
    assert body["issue"][0]["code"] == code, body
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


@dataclass
class JwksHost:
    """A real HTTP server on loopback that serves JWKS documents (`documents[path]`)."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@contextmanager
def serve_jwks() -> Iterator[JwksHost]:
    host = JwksHost()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.requests.append(self.path)
            document = host.documents.get(self.path)
            body = json.dumps(document).encode() if document is not None else b"{}"
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_on_loopback(Handler, "jwks-host") as base_url:
        host.base_url = base_url
        yield host
