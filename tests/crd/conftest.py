"""A live CRD server per backend: demo payer loaded, one trusted CDS client (EC P-384 key served
from a loopback JWKS host), and a signer making JWTs shaped like Inferno's (kid, jku, 64-hex jti).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from pytest_httpx import HTTPXMock

from app.config import Settings
from app.demo.loader import load_demo_data
from app.store.migrate import upgrade_database
from tests.auth.smart_client import ClientKey, JwksHost, new_ec_key, serve_jwks
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.support.live_server import LiveServer, run_server
from tests.support.mock_ehr import INFERNO_EHR_HOST, answer

JWKS_PATH = "/custom/crd_server/jwks.json"
DTR_APP_URL = "https://dtr.greenlight.example.org/launch"


@dataclass(frozen=True)
class CrdServer:
    server: LiveServer
    issuer: str
    jwks_url: str
    key: ClientKey

    def jwt(self, service_id: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": f"{self.server.base_url}/cds-services/{service_id}",
            "exp": now + 300,
            "iat": now,
            "jti": secrets.token_hex(32),
        }
        claims.update(overrides)
        header = {"kid": self.key.kid, "typ": "JWT", "jku": self.jwks_url}
        return jwt.encode(claims, self.key.private_key, algorithm=self.key.alg, headers=header)

    def call(self, service_id: str, body: dict[str, Any], **jwt_claims: Any) -> httpx.Response:
        token = self.jwt(service_id, **jwt_claims)
        with httpx.Client(base_url=self.server.base_url, timeout=30) as client:
            return client.post(
                f"/cds-services/{service_id}",
                json=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )


@dataclass(frozen=True)
class CrdPayer:
    """The demo payer's settings (database migrated and loaded), trusting the Inferno-like EHR's
    key: `serve()` runs a server on them (again after a stop: same database)."""

    settings: Settings
    issuer: str
    jwks_url: str
    key: ClientKey

    @contextmanager
    def serve(self) -> Iterator[CrdServer]:
        with run_server(self.settings) as server:
            yield CrdServer(server, self.issuer, self.jwks_url, self.key)


def crd_payer(
    jwks_host: JwksHost, make_settings: SettingsFactory, database_url: str, **overrides: Any
) -> CrdPayer:
    """A new ES384 key for the EHR (its JWKS served by `jwks_host`) and the demo payer trusting
    it (`GREENLIGHT_CDS_CLIENTS`, auth on) on the new database at `database_url`."""
    key = ClientKey("inferno-crd", "crd-test-key", "ES384", new_ec_key())
    jwks_host.documents[JWKS_PATH] = key.jwks()
    issuer, jwks_url = jwks_host.url("/custom/crd_server"), jwks_host.url(JWKS_PATH)
    settings = make_settings(
        database_url, cds_clients=json.dumps({issuer: jwks_url}), auth_enabled=True, **overrides
    )
    upgrade_database(settings.database_url)
    asyncio.run(load_demo_data(settings))
    return CrdPayer(settings, issuer, jwks_url, key)


@pytest.fixture(scope="module")
def jwks_host() -> Iterator[JwksHost]:
    with serve_jwks() as host:
        yield host


@pytest.fixture(scope="module", params=BACKENDS)
def crd(
    request: pytest.FixtureRequest,
    jwks_host: JwksHost,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[CrdServer]:
    payer = crd_payer(
        jwks_host, make_settings, new_database_url(request.param), dtr_app_url=DTR_APP_URL
    )
    with payer.serve() as crd:
        yield crd


@pytest.fixture
def inferno_ehr(httpx_mock: HTTPXMock) -> HTTPXMock:
    """The EHR the Inferno fixtures name (`fhirServer`), answered from the kit's EHR data."""
    httpx_mock.add_callback(answer, is_optional=True, is_reusable=True)
    return httpx_mock


ONLY_THE_EHR_IS_MOCKED = pytest.mark.httpx_mock(
    should_mock=lambda r: r.url.host == INFERNO_EHR_HOST
)
"""Mark for tests using `inferno_ehr`: loopback traffic (the server under test) stays real."""
