"""Fixtures for the SMART Backend Services tests: client keys, a loopback JWKS host, and a live
server with auth on (per backend, shared by a test module; every assertion has a fresh jti).

Registered clients:
- `reader`: RS384, inline JWKS, `system/Patient.rs`;
- `writer`: ES384, JWKS by URL (loopback host), `system/Patient.cruds system/Coverage.rs`;
- `legacy`: RS384, inline JWKS, SMART v1 `system/*.read`;
- `dtr`: ES384, inline JWKS, registered with the scopes the DTR IG lists beside spec-120, spelt as
  the IG spells them: `system/questionnaire.rs system/valueset.rs system/library.rs`, plus
  `system/claim.c`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.auth.smart_client import ClientKey, JwksHost, new_ec_key, new_rsa_key, serve_jwks
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.support.live_server import LiveServer, run_server

WRITER_JWKS_PATH = "/clients/writer/jwks.json"
# The Backend Services scopes a DTR client needs, as the DTR IG text beside spec-120 spells them.
DTR_IG_SCOPES = ("system/questionnaire.rs", "system/valueset.rs", "system/library.rs")


@dataclass(frozen=True)
class Clients:
    reader: ClientKey
    writer: ClientKey
    legacy: ClientKey
    dtr: ClientKey
    stranger: ClientKey  # a key pair nobody registered


@pytest.fixture(scope="session")
def clients() -> Clients:
    return Clients(
        reader=ClientKey("reader", "reader-rs384-1", "RS384", new_rsa_key()),
        writer=ClientKey("writer", "writer-es384-1", "ES384", new_ec_key()),
        legacy=ClientKey("legacy", "legacy-rs384-1", "RS384", new_rsa_key()),
        dtr=ClientKey("dtr", "dtr-es384-1", "ES384", new_ec_key()),
        stranger=ClientKey("stranger", "stranger-1", "RS384", new_rsa_key()),
    )


@pytest.fixture(scope="session")
def jwks_host(clients: Clients) -> Iterator[JwksHost]:
    with serve_jwks() as host:
        host.documents[WRITER_JWKS_PATH] = clients.writer.jwks()
        yield host


def client_registrations(clients: Clients, jwks_host: JwksHost) -> str:
    return json.dumps(
        [
            {
                "client_id": "reader",
                "name": "Read-only RS384 client (inline JWKS)",
                "scopes": ["system/Patient.rs"],
                "jwks": clients.reader.jwks(),
            },
            {
                "client_id": "writer",
                "scopes": ["system/Patient.cruds", "system/Coverage.rs"],
                "jwks_url": jwks_host.url(WRITER_JWKS_PATH),
            },
            {
                "client_id": "legacy",
                "scopes": ["system/*.read"],
                "jwks": clients.legacy.jwks(),
            },
            {
                "client_id": "dtr",
                "scopes": [*DTR_IG_SCOPES, "system/claim.c"],
                "jwks": clients.dtr.jwks(),
            },
        ]
    )


@pytest.fixture(scope="module", params=BACKENDS)
def auth_server(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    clients: Clients,
    jwks_host: JwksHost,
) -> Iterator[LiveServer]:
    """A live server with SMART auth on (not demo), on a fresh database of each backend."""
    settings = make_settings(
        new_database_url(request.param),
        auth_enabled=True,
        demo=False,
        clients=client_registrations(clients, jwks_host),
    )
    with run_server(settings) as server:
        yield server
