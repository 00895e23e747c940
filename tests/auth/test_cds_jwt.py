"""CDS Hooks caller authentication (`app.auth.cds_jwt`) without a server: JWTs shaped like the
ones Inferno's CRD server suite sends (header `alg/typ/kid/jku`, claims `iss/aud/exp/iat/jti`),
verified against JWKS served by a real loopback HTTP server, the `jti` replay table on both
backends, and the `GREENLIGHT_CDS_CLIENTS` / `GREENLIGHT_CDS_ALLOW_UNSIGNED` settings.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from app.auth.cds_jwt import (
    ANONYMOUS_CDS,
    CdsCaller,
    CdsJwtVerifier,
    build_cds_verifier,
    cds_services_url,
    register_cds_clients,
)
from app.auth.client_assertion import ReplayGuard, index_jwks
from app.config import CdsClientConfig, Settings
from app.fhir.outcomes import FhirError
from app.registry import REGISTRY
from app.store.db import Database, create_database
from app.store.migrate import upgrade_database
from app.store.repository import ResourceStore
from tests.auth.smart_client import (
    DROP,
    ClientKey,
    JwksHost,
    hmac_jwt,
    new_ec_key,
    new_rsa_key,
    serve_jwks,
    unsigned_jwt,
)
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory

BASE_URL = "http://payer.test:8080"
SERVICE_URL = f"{BASE_URL}/cds-services/order-sign-crd"
DISCOVERY_URL = f"{BASE_URL}/cds-services"
JWKS_PATH = "/custom/crd_server/jwks.json"
ATTACKER_JWKS_PATH = "/attacker/jwks.json"
MISSING_JWKS_PATH = "/gone/jwks.json"
OTHER_ISSUER = "https://ehr-two.example/cds-client"
DOWN_ISSUER = "https://ehr-down.example/cds-client"

cds_security = pytest.mark.requirement("CRD", "sec-1")

# Inferno's CRD server suite JWKS as it serves it at <inferno>/custom/crd_server/jwks.json: the
# `key_ops: ["verify"]` half of lib/davinci_crd_test_kit/crd_jwks.json (public keys only; the
# signing halves were deliberately not copied into ../shared/fixtures).
INFERNO_CRD_JWKS: dict[str, Any] = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-384",
            "x": "JQKTsV6PT5Szf4QtDA1qrs0EJ1pbimQmM2SKvzOlIAqlph3h1OHmZ2i7MXahIF2C",
            "y": "bRWWQRJBgDa6CTgwofYrHjVGcO-A7WNEnu4oJA5OUJPPPpczgx1g2NsfinK-D2Rw",
            "use": "sig",
            "key_ops": ["verify"],
            "ext": True,
            "kid": "4b49a739d1eb115b3225f4cf9beb6d1b",
            "alg": "ES384",
        },
        {
            "kty": "RSA",
            "alg": "RS384",
            "n": (
                "vjbIzTqiY8K8zApeNng5ekNNIxJfXAue9BjoMrZ9Qy9m7yIA-tf6muEupEXWhq70tC7vIGLqJJ4O8m7yiH8H"
                "2qklX2mCAMg3xG3nbykY2X7JXtW9P8VIdG0sAMt5aZQnUGCgSS3n0qaooGn2LUlTGIR88Qi-4Nrao9_3Ki3U"
                "CiICeCiAE224jGCg0OlQU6qj2gEB3o-DWJFlG_dz1y-Mxo5ivaeM0vWuodjDrp-aiabJcSF_dx26sdC9dZdB"
                "KXFDq0t19I9S9AyGpGDJwzGRtWHY6LsskNHLvo8Zb5AsJ9eRZKpnh30SYBZI9WHtzU85M9WQqdScR69Vyp-6"
                "Uhfbvw"
            ),
            "e": "AQAB",
            "use": "sig",
            "key_ops": ["verify"],
            "ext": True,
            "kid": "b41528b6f37a9500edb8a905a595bdd7",
        },
    ]
}


@dataclass(frozen=True)
class Ehr:
    """A CDS client like Inferno's: issuer `<host>/custom/crd_server`, JWKS at `jwks_url`."""

    host: JwksHost
    iss: str
    jwks_url: str
    ec: ClientKey
    rs: ClientKey
    other: ClientKey  # the key of OTHER_ISSUER (inline JWKS, no URL)
    stranger: ClientKey  # nobody registered this key pair

    def jwt(
        self,
        key: ClientKey | None = None,
        *,
        aud: Any = SERVICE_URL,
        jku: Any = "registered",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT exactly as Inferno's `JwtHelper` builds it (no `sub`), with overrides."""
        key = key or self.ec
        header: dict[str, Any] = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        if jku == "registered":
            header["jku"] = self.jwks_url
        elif jku is not None:
            header["jku"] = jku
        header.update(headers or {})
        payload = self.claims(**{"iss": key.client_id, "aud": aud, **claims})
        return pyjwt.encode(
            payload,
            key.private_key,
            algorithm=key.alg,
            headers={k: v for k, v in header.items() if v is not DROP},
        )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Inferno's claims: iss, aud, exp = now + 300, iat, 64-hex jti; `DROP` removes one."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.iss,
            "aud": SERVICE_URL,
            "exp": now + 300,
            "iat": now,
            "jti": secrets.token_hex(32),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not DROP}


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    attacker = ClientKey("attacker", "attacker-1", "ES384", new_ec_key())
    with serve_jwks() as host:
        iss = host.url("/custom/crd_server")
        ec = ClientKey(iss, "ehr-es384-1", "ES384", new_ec_key())
        rs = ClientKey(iss, "ehr-rs384-1", "RS384", new_rsa_key())
        host.documents[JWKS_PATH] = {"keys": [ec.public_jwk(), rs.public_jwk()]}
        host.documents[ATTACKER_JWKS_PATH] = attacker.with_client(iss).jwks()
        yield Ehr(
            host=host,
            iss=iss,
            jwks_url=host.url(JWKS_PATH),
            ec=ec,
            rs=rs,
            other=ClientKey(OTHER_ISSUER, "ehr-two-1", "ES384", new_ec_key()),
            stranger=ClientKey(iss, ec.kid, "ES384", new_ec_key()),
        )


@pytest.fixture(scope="module", params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, new_database_url: DatabaseFactory) -> str:
    url = new_database_url(request.param)
    upgrade_database(url)  # runs its own event loop: not from an async fixture
    return url


@pytest.fixture(scope="module")
async def database(migrated_url: str) -> AsyncIterator[Database]:
    database = create_database(migrated_url)
    try:
        yield database
    finally:
        await database.dispose()


def _clients(ehr: Ehr) -> list[CdsClientConfig]:
    return [
        CdsClientConfig(iss=ehr.iss, jwks_url=ehr.jwks_url, name="Inferno-like EHR"),
        CdsClientConfig(iss=OTHER_ISSUER, jwks=ehr.other.jwks()),
        CdsClientConfig(iss=DOWN_ISSUER, jwks_url=ehr.host.url(MISSING_JWKS_PATH)),
    ]


@pytest.fixture(scope="module")
def verifier(ehr: Ehr, database: Database) -> CdsJwtVerifier:
    return CdsJwtVerifier(register_cds_clients(_clients(ehr)), ReplayGuard(database.writer))


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def refused(
    verifier: CdsJwtVerifier,
    header: str | None,
    url: str = SERVICE_URL,
    *,
    optional: bool = False,
) -> str:
    """Assert a 401 OperationOutcome (code `login`, `WWW-Authenticate: Bearer`); its text."""
    with pytest.raises(FhirError) as caught:
        await verifier.verify(header, url, optional=optional)
    error = caught.value
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Bearer")
    outcome = error.outcome
    assert outcome["resourceType"] == "OperationOutcome"
    assert [(i["severity"], i["code"]) for i in outcome["issue"]] == [("error", "login")]
    diagnostics: str = outcome["issue"][0]["diagnostics"]
    return diagnostics


# --- accepted calls -----------------------------------------------------------------------------


@cds_security
@pytest.mark.parametrize("alg", ["ES384", "RS384"])
async def test_inferno_shaped_jwt_with_jku_is_accepted(
    ehr: Ehr, verifier: CdsJwtVerifier, alg: str
) -> None:
    key = ehr.ec if alg == "ES384" else ehr.rs
    token = ehr.jwt(key)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": alg, "typ": "JWT", "kid": key.kid, "jku": ehr.jwks_url}
    payload = pyjwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "exp", "iat", "jti"}
    assert len(payload["jti"]) == 64

    caller = await verifier.verify(bearer(token), SERVICE_URL)
    assert caller == CdsCaller(
        authenticated=True,
        issuer=ehr.iss,
        client_id=ehr.iss,
        tenant=None,
        name="Inferno-like EHR",
        jti=payload["jti"],
    )


@cds_security
async def test_without_jku_the_registered_jwks_is_used(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    caller = await verifier.verify(bearer(ehr.jwt(ehr.rs, jku=None)), SERVICE_URL)
    assert caller.issuer == ehr.iss


async def test_sub_and_tenant_are_reported(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    token = ehr.jwt(sub="ehr-client-42", tenant="hospital-a")
    caller = await verifier.verify(bearer(token), SERVICE_URL)
    assert (caller.client_id, caller.tenant) == ("ehr-client-42", "hospital-a")


async def test_inline_jwks_client_is_accepted(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    caller = await verifier.verify(bearer(ehr.jwt(ehr.other, jku=None)), SERVICE_URL)
    assert caller.issuer == OTHER_ISSUER
    assert caller.name is None


async def test_aud_compared_after_one_trailing_slash(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    await verifier.verify(bearer(ehr.jwt(aud=SERVICE_URL + "/")), SERVICE_URL)
    await verifier.verify(bearer(ehr.jwt()), SERVICE_URL + "/")
    await verifier.verify(bearer(ehr.jwt(aud=["https://other.example", SERVICE_URL])), SERVICE_URL)


async def test_keys_are_cached_by_kid(ehr: Ehr, database: Database) -> None:
    verifier = CdsJwtVerifier(register_cds_clients(_clients(ehr)), ReplayGuard(database.writer))
    before = ehr.host.requests.count(JWKS_PATH)
    for key in (ehr.ec, ehr.rs, ehr.ec, ehr.rs):
        await verifier.verify(bearer(ehr.jwt(key)), SERVICE_URL)
    assert ehr.host.requests.count(JWKS_PATH) == before + 1


@cds_security
async def test_discovery_works_with_and_without_a_jwt(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    assert await verifier.verify(None, DISCOVERY_URL, optional=True) is ANONYMOUS_CDS
    caller = await verifier.verify(bearer(ehr.jwt(aud=DISCOVERY_URL)), DISCOVERY_URL, optional=True)
    assert caller.authenticated
    description = await refused(verifier, bearer(ehr.jwt()), DISCOVERY_URL, optional=True)
    assert "aud" in description, "a JWT sent to discovery is still verified"


# --- refused calls ------------------------------------------------------------------------------


@cds_security
async def test_no_authorization_header_is_refused(verifier: CdsJwtVerifier) -> None:
    assert "Authorization" in await refused(verifier, None)
    assert "Authorization" in await refused(verifier, "   ")
    assert "Bearer" in await refused(verifier, "Basic dXNlcjpwYXNz")
    assert "empty" in await refused(verifier, "Bearer ")
    assert "not a JWT" in await refused(verifier, "Bearer not-a-jwt")


@cds_security
async def test_wrong_aud_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    other_service = f"{BASE_URL}/cds-services/order-select-crd"
    assert "aud" in await refused(verifier, bearer(ehr.jwt(aud=other_service)))
    assert "aud" in await refused(verifier, bearer(ehr.jwt(aud=DISCOVERY_URL)))
    assert "aud" in await refused(verifier, bearer(ehr.jwt(aud=SERVICE_URL + "//")))
    assert "aud" in await refused(verifier, bearer(ehr.jwt(aud=DROP)))


@cds_security
async def test_expired_jwt_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    now = int(time.time())
    token = ehr.jwt(exp=now - 120, iat=now - 420)
    assert "expired" in await refused(verifier, bearer(token))
    # within the 60 s clock-skew leeway it is still accepted
    await verifier.verify(bearer(ehr.jwt(exp=now - 30, iat=now - 330)), SERVICE_URL)


async def test_exp_and_iat_are_required(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    assert "exp" in await refused(verifier, bearer(ehr.jwt(exp=DROP)))
    assert "iat" in await refused(verifier, bearer(ehr.jwt(iat=DROP)))


async def test_exp_far_in_the_future_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    description = await refused(verifier, bearer(ehr.jwt(exp=int(time.time()) + 86_400)))
    assert "in the future" in description


@cds_security
async def test_iat_in_the_future_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    now = int(time.time())
    token = ehr.jwt(iat=now + 600, exp=now + 900)
    assert "not valid yet" in await refused(verifier, bearer(token))
    assert "not valid yet" in await refused(verifier, bearer(ehr.jwt(nbf=now + 600)))
    await verifier.verify(bearer(ehr.jwt(iat=now + 30)), SERVICE_URL)  # clock skew


@cds_security
async def test_replayed_jti_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    token = ehr.jwt()
    await verifier.verify(bearer(token), SERVICE_URL)
    assert "replay" in await refused(verifier, bearer(token))
    jti = secrets.token_hex(32)
    await verifier.verify(bearer(ehr.jwt(ehr.rs, jti=jti)), SERVICE_URL)
    assert "replay" in await refused(verifier, bearer(ehr.jwt(ehr.ec, jti=jti))), "per issuer"


async def test_replay_is_scoped_per_issuer(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    jti = secrets.token_hex(32)
    await verifier.verify(bearer(ehr.jwt(jti=jti)), SERVICE_URL)
    caller = await verifier.verify(bearer(ehr.jwt(ehr.other, jku=None, jti=jti)), SERVICE_URL)
    assert caller.issuer == OTHER_ISSUER


@cds_security
async def test_missing_or_bad_jti_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    assert "jti" in await refused(verifier, bearer(ehr.jwt(jti=DROP)))
    assert "jti" in await refused(verifier, bearer(ehr.jwt(jti="x" * 256)))
    assert "jti" in await refused(verifier, bearer(ehr.jwt(jti="")))


@cds_security
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused_before_any_key_lookup(
    ehr: Ehr, verifier: CdsJwtVerifier, alg: str
) -> None:
    requests = len(ehr.host.requests)
    token = unsigned_jwt({"alg": alg, "typ": "JWT", "kid": "x", "jku": ehr.jwks_url}, ehr.claims())
    assert "alg" in await refused(verifier, bearer(token))
    assert len(ehr.host.requests) == requests


@cds_security
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_signed_with_the_public_key_is_refused(
    ehr: Ehr, verifier: CdsJwtVerifier, alg: str
) -> None:
    """Algorithm confusion: an HMAC keyed with the client's public key PEM must never verify."""
    public_pem = ehr.rs.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    requests = len(ehr.host.requests)
    header = {"alg": alg, "typ": "JWT", "kid": ehr.rs.kid, "jku": ehr.jwks_url}
    token = hmac_jwt(header, ehr.claims(), public_pem)
    assert "alg" in await refused(verifier, bearer(token))
    assert len(ehr.host.requests) == requests


@cds_security
@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS384", "EdDSA"])
async def test_other_asymmetric_algorithms_are_refused(
    ehr: Ehr, verifier: CdsJwtVerifier, alg: str
) -> None:
    token = unsigned_jwt({"alg": alg, "typ": "JWT", "kid": ehr.rs.kid}, ehr.claims()) + "c2ln"
    assert "alg" in await refused(verifier, bearer(token))


async def test_typ_other_than_jwt_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    assert "typ" in await refused(verifier, bearer(ehr.jwt(headers={"typ": "at+jwt"})))


@cds_security
async def test_unknown_issuer_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    requests = len(ehr.host.requests)
    token = ehr.jwt(iss="https://unknown-ehr.example/cds")
    assert "not registered" in await refused(verifier, bearer(token))
    assert "iss" in await refused(verifier, bearer(ehr.jwt(iss=DROP)))
    assert len(ehr.host.requests) == requests


@cds_security
async def test_jku_not_registered_for_the_issuer_is_refused_and_never_fetched(
    ehr: Ehr, verifier: CdsJwtVerifier
) -> None:
    attacker_jku = ehr.host.url(ATTACKER_JWKS_PATH)
    lookalikes = [
        attacker_jku,
        ehr.jwks_url + "/",
        ehr.jwks_url + "?x=1",
        ehr.jwks_url.replace("127.0.0.1", "localhost"),
    ]
    for jku in lookalikes:
        assert "jku" in await refused(verifier, bearer(ehr.jwt(jku=jku)))
    # an issuer registered with inline keys only has no jku at all
    assert "jku" in await refused(verifier, bearer(ehr.jwt(ehr.other, jku=ehr.jwks_url)))
    assert ATTACKER_JWKS_PATH not in ehr.host.requests


@cds_security
async def test_unknown_kid_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    assert "kid" in await refused(verifier, bearer(ehr.jwt(headers={"kid": "rotated-away"})))
    assert "kid" in await refused(verifier, bearer(ehr.jwt(headers={"kid": DROP})))
    # the kid exists, but for the other algorithm: the key type must match alg
    assert "kid" in await refused(verifier, bearer(ehr.jwt(headers={"kid": ehr.rs.kid})))


@cds_security
async def test_bad_signature_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    forged = ehr.jwt(ehr.stranger)  # same iss, kid and jku; another private key
    assert "signature" in await refused(verifier, bearer(forged))
    head, payload, signature = ehr.jwt().split(".")
    tampered_claims = ehr.claims(sub="someone-else")
    tampered = unsigned_jwt({"alg": "ES384"}, tampered_claims).split(".")[1]
    assert "signature" in await refused(verifier, bearer(f"{head}.{tampered}.{signature}"))
    assert payload != tampered


async def test_junk_base64_in_the_signature_is_not_a_jwt(
    ehr: Ehr, verifier: CdsJwtVerifier
) -> None:
    head, payload, signature = ehr.jwt().split(".")
    assert len(signature) % 4 == 0, "an ES384 signature (96 bytes) is 128 characters"
    for junk in ("!!!!", signature[:-4] + "!!!!", signature + "A", signature + "==="):
        description = await refused(verifier, bearer(f"{head}.{payload}.{junk}"))
        assert "not a JWT" in description, junk
        assert "signature" in description, junk  # the segment is named


async def test_unreachable_jwks_is_refused(ehr: Ehr, verifier: CdsJwtVerifier) -> None:
    token = ehr.jwt(ehr.ec.with_client(DOWN_ISSUER), jku=None)
    assert "could not be fetched" in await refused(verifier, bearer(token))


# --- unsigned calls (demo only) -----------------------------------------------------------------


@cds_security
async def test_unsigned_calls_when_allowed(
    ehr: Ehr, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = CdsJwtVerifier(
        register_cds_clients(_clients(ehr)), ReplayGuard(database.writer), allow_unsigned=True
    )
    with caplog.at_level(logging.DEBUG, logger="greenlight.auth.cds"):
        assert await verifier.verify(None, SERVICE_URL) is ANONYMOUS_CDS
        assert await verifier.verify(None, SERVICE_URL) is ANONYMOUS_CDS
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "WITHOUT a JWT" in warnings[0].getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 2
    # a JWT that is sent is still verified
    assert "aud" in await refused(verifier, bearer(ehr.jwt(aud=DISCOVERY_URL)))
    assert (await verifier.verify(bearer(ehr.jwt()), SERVICE_URL)).authenticated


# --- Inferno's own JWKS -------------------------------------------------------------------------


def test_inferno_crd_jwks_keys_are_usable() -> None:
    keys = index_jwks(INFERNO_CRD_JWKS, "inferno crd_jwks.json")
    assert set(keys) == {
        ("4b49a739d1eb115b3225f4cf9beb6d1b", "ES384"),
        ("b41528b6f37a9500edb8a905a595bdd7", "RS384"),
    }


async def test_inferno_jwks_served_by_url_is_fetched_and_indexed(
    ehr: Ehr, database: Database
) -> None:
    ehr.host.documents["/inferno/custom/crd_server/jwks.json"] = INFERNO_CRD_JWKS
    iss = ehr.host.url("/inferno/custom/crd_server")
    config = CdsClientConfig(iss=iss, jwks_url=ehr.host.url("/inferno/custom/crd_server/jwks.json"))
    client = register_cds_clients([config])[iss]
    assert await client.key("4b49a739d1eb115b3225f4cf9beb6d1b", "ES384") is not None
    assert await client.key("b41528b6f37a9500edb8a905a595bdd7", "RS384") is not None


# --- settings and the factory -------------------------------------------------------------------


def _settings(make_settings: SettingsFactory, **values: object) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", base_url=BASE_URL, **values)


def test_cds_clients_mapping_form(make_settings: SettingsFactory) -> None:
    mapping = {
        "https://inferno.example/custom/crd_server": (
            "https://inferno.example/custom/crd_server/jwks.json"
        ),
        "https://ehr.example": {"jwks_url": "https://ehr.example/jwks", "name": "EHR"},
    }
    clients = _settings(make_settings, cds_clients=json.dumps(mapping)).registered_cds_clients()
    assert [(c.iss, c.jwks_url, c.name) for c in clients] == [
        (
            "https://inferno.example/custom/crd_server",
            "https://inferno.example/custom/crd_server/jwks.json",
            None,
        ),
        ("https://ehr.example", "https://ehr.example/jwks", "EHR"),
    ]


def test_cds_clients_list_form_and_file_path(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    listed = [
        {"iss": "https://a.example", "jwks_url": "https://a.example/jwks", "name": "A"},
        {"iss": "https://b.example", "jwks": INFERNO_CRD_JWKS},
    ]
    inline = _settings(make_settings, cds_clients=json.dumps(listed)).registered_cds_clients()
    path = tmp_path / "cds-clients.json"
    path.write_text(json.dumps(listed), encoding="utf-8")
    from_file = _settings(make_settings, cds_clients=f" {path} ").registered_cds_clients()
    assert inline == from_file
    assert [(c.iss, c.jwks_url, c.name) for c in inline] == [
        ("https://a.example", "https://a.example/jwks", "A"),
        ("https://b.example", None, None),
    ]
    assert inline[1].jwks == INFERNO_CRD_JWKS
    assert _settings(make_settings).registered_cds_clients() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"iss": "https://a.example"}]', "jwks_url"),
        ('{"https://a.example": {"name": "no keys"}}', "jwks_url"),
        ('[{"jwks_url": "https://a.example/jwks"}]', "iss"),
        (
            '[{"iss": "https://a.example", "jwks_url": "u"}, {"iss": "https://a.example", '
            '"jwks_url": "v"}]',
            "twice",
        ),
        ("[1, 2", "Expecting"),
    ],
)
def test_cds_clients_errors(make_settings: SettingsFactory, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(make_settings, cds_clients=value).registered_cds_clients()


def test_cds_allow_unsigned_only_in_demo(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _settings(make_settings, demo=True, cds_allow_unsigned=True).cds_allow_unsigned
    with pytest.raises(ValidationError, match="only allowed with GREENLIGHT_DEMO"):
        _settings(make_settings, demo=False, cds_allow_unsigned=True)
    monkeypatch.setenv("GREENLIGHT_CDS_ALLOW_UNSIGNED", "true")
    monkeypatch.setenv("GREENLIGHT_DEMO", "false")
    with pytest.raises(ValidationError, match="only allowed with GREENLIGHT_DEMO"):
        Settings()
    monkeypatch.setenv("GREENLIGHT_DEMO", "true")
    assert Settings().cds_allow_unsigned


async def test_build_cds_verifier_from_settings(
    ehr: Ehr, database: Database, make_settings: SettingsFactory
) -> None:
    settings = _settings(make_settings, demo=False, cds_clients=json.dumps({ehr.iss: ehr.jwks_url}))
    verifier = build_cds_verifier(settings, ResourceStore(database, REGISTRY))
    url = cds_services_url(settings, "order-sign-crd")
    assert url == SERVICE_URL
    assert cds_services_url(settings) == DISCOVERY_URL
    caller = await verifier.verify(bearer(ehr.jwt(ehr.rs)), url)
    assert caller.issuer == ehr.iss
    description = await refused(verifier, None)
    assert "Authorization" in description
    with pytest.raises(FhirError) as caught:
        await verifier.verify(bearer(ehr.jwt(aud=DISCOVERY_URL)), url)
    assert caught.value.headers["WWW-Authenticate"] == (
        f'Bearer realm="{DISCOVERY_URL}", error="invalid_token"'
    )


async def test_build_cds_verifier_refusals(
    database: Database, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    store = ResourceStore(database, REGISTRY)
    unchecked = _settings(make_settings).model_copy(
        update={"demo": False, "cds_allow_unsigned": True}
    )
    with pytest.raises(RuntimeError, match="only allowed with GREENLIGHT_DEMO"):
        build_cds_verifier(unchecked, store)
    missing = _settings(make_settings, cds_clients=str(tmp_path / "missing.json"))
    with pytest.raises(RuntimeError, match="GREENLIGHT_CDS_CLIENTS cannot be read"):
        build_cds_verifier(missing, store)
    no_usable_key = json.dumps([{"iss": "https://a.example", "jwks": {"keys": []}}])
    with pytest.raises(RuntimeError, match="no RS384"):
        build_cds_verifier(_settings(make_settings, cds_clients=no_usable_key), store)
