"""CRD load: the order-sign hook request, the EHR's signing key, and pools of fresh signed JWTs.

The body is built at run time from the Inferno CRD test kit's own order-sign fixture (its
envelope, Patient, Coverage and user Practitioner), never copied into this repository: the
ServiceRequest orders CPT 72148 (lumbar MRI: prior auth + clinical documentation on the demo Gold
plan), the prefetched Coverage names demo member `10A3D58WH456`, and `fhirServer` /
`fhirAuthorization` are removed so Greenlight never queries an EHR.

Greenlight refuses a replayed `jti`, so every request carries a JWT of its own: the harness signs
a pool of them before each timed run (`write_pool`) and the load generator uses each once. A pool
line holds the values of the request's slots (`Slot`): the JWT (in the `Authorization` header),
the `hookInstance` and, for the cache-miss variant, the ServiceRequest id.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.loadgen import pooled_head

# The shared fixtures sit next to the repository (as for the tests: `tests/conftest.py`).
SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURE = (
    SHARED
    / "fixtures"
    / "inferno"
    / "davinci-crd-test-kit"
    / "extracted"
    / "order_sign_request_bodies.json"
)
SERVICE_ID = "order-sign-crd"
SERVICE_PATH = f"/cds-services/{SERVICE_ID}"
CPT = "http://www.ama-assn.org/go/cpt"
ORDER_CODE = "72148"
MEMBER_ID = "10A3D58WH456"
ISSUER = "http://127.0.0.1/greenlight-bench-ehr"
# Registered as the issuer's JWKS URL so the `jku` header is accepted; never fetched, because the
# same registration carries the keys inline.
JKU = "http://127.0.0.1:9/greenlight-bench-ehr/jwks.json"
JWT_LIFETIME_SECONDS = 300
Algorithm = Literal["ES384", "RS384"]
ALGORITHMS: tuple[Algorithm, ...] = ("ES384", "RS384")

# Placeholders in the body template, replaced per request by the values of a pool line.
HOOK_INSTANCE = "@@HOOK_INSTANCE@@"
ORDER_ID = "@@ORDER_ID@@"


class FixtureError(RuntimeError):
    """The Inferno fixture is missing or not the shape this builder expects."""


def _fixture(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise FixtureError(f"cannot read the Inferno order-sign fixture {path}: {exc}") from exc
    bodies = loaded if isinstance(loaded, list) else [loaded]
    if not all(isinstance(body, dict) for body in bodies):
        raise FixtureError(f"{path}: expected a list of CDS Hooks request bodies")
    return bodies


def order_sign_template(fixture: Path = FIXTURE, *, distinct_orders: bool = False) -> bytes:
    """The order-sign body as JSON with `HOOK_INSTANCE` (and `ORDER_ID`) placeholders.

    Full prefetch: `patient` and `coverage` (from the fixture's ServiceRequest call) and `user`
    (the fixture's Practitioner, NPI 1122334455: not gold-carded). One ServiceRequest for CPT
    72148. Without `distinct_orders` every request orders the same ServiceRequest id, so
    Greenlight's stored assertion for these inputs is reused (CRD resp-36).
    """
    bodies = _fixture(fixture)
    service_call = next(
        (b for b in bodies if _draft_types(b) == ["ServiceRequest"] and "prefetch" in b), None
    )
    user = next(
        (
            b["prefetch"]["user"]
            for b in bodies
            if isinstance(b.get("prefetch"), dict)
            and isinstance(b["prefetch"].get("user"), dict)
            and b["prefetch"]["user"].get("resourceType") == "Practitioner"
        ),
        None,
    )
    if service_call is None or user is None:
        raise FixtureError(f"{fixture}: no ServiceRequest order-sign call and Practitioner user")
    body = copy.deepcopy(service_call)
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    body["hookInstance"] = HOOK_INSTANCE
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {
        "coding": [{"system": CPT, "code": ORDER_CODE, "display": "MRI lumbar spine w/o dye"}]
    }
    if distinct_orders:
        order["id"] = ORDER_ID
    prefetch = body["prefetch"]
    coverage = prefetch["coverage"]["entry"][0]["resource"]
    coverage["subscriberId"] = MEMBER_ID
    body["prefetch"] = {
        "patient": prefetch["patient"],
        "coverage": prefetch["coverage"],
        "user": copy.deepcopy(user),
    }
    body["context"]["userId"] = f"Practitioner/{user['id']}"
    return orjson.dumps(body)


def _draft_types(body: dict[str, Any]) -> list[str]:
    try:
        entries = body["context"]["draftOrders"]["entry"]
        return [entry["resource"]["resourceType"] for entry in entries]
    except (KeyError, TypeError):
        return []


def new_hook_instance() -> str:
    return str(uuid.uuid4())


def new_order_id() -> str:
    """A fresh ServiceRequest id, always 32 characters (so every body has the same length)."""
    return "bench-sr-" + secrets.token_hex(12)[:23]


@dataclass(frozen=True)
class CdsSigner:
    """The bench EHR's key: signs CDS Hooks JWTs as Inferno does (kid, typ JWT, jku, 64-hex jti)."""

    alg: Algorithm
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls, alg: Algorithm) -> CdsSigner:
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if alg == "ES384":
            key = ec.generate_private_key(ec.SECP384R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(alg, key, f"bench-{alg.lower()}-{uuid.uuid4().hex[:8]}")

    def public_jwks(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        text = (
            jwt.algorithms.ECAlgorithm.to_jwk(public)
            if isinstance(public, ec.EllipticCurvePublicKey)
            else jwt.algorithms.RSAAlgorithm.to_jwk(public)
        )
        jwk: dict[str, Any] = json.loads(text)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return {"keys": [jwk]}

    def registration(self) -> str:
        """The GREENLIGHT_CDS_CLIENTS value: this issuer with its JWKS inline (and its jku)."""
        return json.dumps(
            [
                {
                    "iss": ISSUER,
                    "jwks_url": JKU,
                    "jwks": self.public_jwks(),
                    "name": "greenlight bench EHR",
                }
            ]
        )

    def token(self, audience: str, *, now: int | None = None, lifetime: int = 300) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": secrets.token_hex(32),
        }
        header = {"kid": self.kid, "typ": "JWT", "jku": JKU}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=header)


def service_url(base_url: str) -> str:
    """The `aud` every order-sign JWT carries: the exact URL of Greenlight's service."""
    return f"{base_url}{SERVICE_PATH}"


SLOT_VALUES: dict[str, Callable[[], str]] = {
    HOOK_INSTANCE: new_hook_instance,
    ORDER_ID: new_order_id,
}


@dataclass(frozen=True)
class RequestTemplate:
    """An order-sign call with slots: `%b` for the JWT and `%d` for Content-Length in the head,
    `%b` for each of `body_slots` (placeholder names, in the order they appear) in the body."""

    head: bytes
    body: bytes
    body_slots: tuple[str, ...]

    def new_values(self) -> list[str]:
        """Fresh values for the body slots, in order."""
        return [SLOT_VALUES[name]() for name in self.body_slots]

    def fill(self, token: str, values: list[str]) -> tuple[bytes, bytes]:
        """(head, body) of one request, for a smoke test outside the load generator."""
        body = self.body % tuple(value.encode("ascii") for value in values)
        return self.head % (token.encode("ascii"), len(body)), body


def request_template(host: str, port: int, *, distinct_orders: bool) -> RequestTemplate:
    raw = order_sign_template(distinct_orders=distinct_orders).replace(b"%", b"%%")
    found = []
    for placeholder in SLOT_VALUES:
        marker = placeholder.encode("ascii")
        if raw.count(marker) > 1:
            raise FixtureError(f"{placeholder} appears more than once in the body")
        if marker in raw:
            found.append((raw.index(marker), placeholder))
            raw = raw.replace(marker, b"%b")
    head = pooled_head(SERVICE_PATH, host, port, "%b", "application/json")  # the JWT: a slot
    return RequestTemplate(head, raw, tuple(name for _, name in sorted(found)))


def write_pool(
    path: Path,
    signer: CdsSigner,
    audience: str,
    template: RequestTemplate,
    count: int,
    *,
    lifetime: int,
) -> float:
    """Sign `count` fresh JWTs into `path`, one request's slot values per line; the seconds spent.

    Line: `<jwt>\\t<body slot values...>`, tab-separated, in the template's slot order.
    """
    started = time.perf_counter()
    now = int(time.time())
    lines = []
    for _ in range(count):
        values = [signer.token(audience, now=now, lifetime=lifetime), *template.new_values()]
        lines.append("\t".join(values))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return time.perf_counter() - started
