"""A live PAS server per backend with the demo payer loaded, fixture loaders and helpers.

The outbox runs fast here (polling every 0.1 s, retries after 0.2 s) so notification tests
finish quickly; everything else is the server as configured by default (auth off, demo mode).
"""

from __future__ import annotations

import asyncio
import copy
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from app.demo.loader import load_demo_data
from app.pas.codes import BASE_PATHS
from app.store.db import create_database
from app.store.migrate import upgrade_database
from app.store.tables import metadata
from tests.auth.smart_client import ClientKey, new_rsa_key
from tests.conftest import (
    BACKENDS,
    FHIR_PACKAGES,
    INFERNO_FIXTURES,
    DatabaseFactory,
    SettingsFactory,
)
from tests.support.live_server import LiveServer, run_server

PAS_KIT = INFERNO_FIXTURES / "davinci-pas-test-kit"
EXTRACTED = PAS_KIT / "extracted"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
RESPONSE_BUNDLE = PAS + "profile-pas-response-bundle"
INQUIRY_RESPONSE_BUNDLE = PAS + "profile-pas-inquiry-response-bundle"
IG = {"2.0.1": "hl7.fhir.us.davinci-pas#2.0.1", "2.2.1": "hl7.fhir.us.davinci-pas#2.2.1"}
KIT_DIR = {"2.0.1": "v201", "2.2.1": "v221"}
X12_306 = "https://codesystem.x12.org/005010/306"

FAST_OUTBOX: dict[str, object] = {
    "pas_outbox_poll_seconds": 0.1,
    "pas_notify_backoff_seconds": 0.2,
    "pas_outbox_lease_seconds": 2.0,
}


@lru_cache(maxsize=64)
def _kit_file(version: str, name: str) -> bytes:
    return (EXTRACTED / KIT_DIR[version] / f"{name}.json").read_bytes()


def kit(version: str, name: str) -> Any:
    """An Inferno PAS kit input (`approval_pa_submit_request_payload`, ...), a fresh copy."""
    return orjson.loads(_kit_file(version, name))


def kit_file(path: str) -> dict[str, Any]:
    """Another file of the kit, by its path under the kit folder."""
    loaded: dict[str, Any] = orjson.loads((PAS_KIT / path).read_bytes())
    return loaded


def kit_bundle(version: str, name: str) -> dict[str, Any]:
    """A kit input that is one Bundle (some inputs are lists of one)."""
    loaded = kit(version, name)
    bundle: dict[str, Any] = loaded[0] if isinstance(loaded, list) else loaded
    return bundle


@lru_cache(maxsize=64)
def _ig_file(version: str, name: str) -> bytes:
    package = "davinci_pas_2.0.1.tgz" if version == "2.0.1" else "davinci_pas_2.2.1.tgz"
    with tarfile.open(FHIR_PACKAGES / package) as archive:
        handle = archive.extractfile(f"package/example/{name}.json")
        assert handle is not None
        return handle.read()


def ig_example(version: str, name: str) -> dict[str, Any]:
    """An example of the PAS package (`Bundle-ReferralAuthorizationBundleExample`, ...)."""
    loaded: dict[str, Any] = orjson.loads(_ig_file(version, name))
    return loaded


def review_actions(bundle: dict[str, Any]) -> list[str]:
    """The X12 306 codes of the ClaimResponse's items, in item order."""
    claim_response = bundle["entry"][0]["resource"]
    found = []
    for item in claim_response.get("item", []):
        for adjudication in item.get("adjudication", []):
            for action in adjudication.get("extension", []):
                for part in action.get("extension", []):
                    for coding in part.get("valueCodeableConcept", {}).get("coding", []):
                        if coding.get("system") == X12_306:
                            found.append(str(coding["code"]))
    return found


def table_counts(database_url: str) -> dict[str, int]:
    """Rows in every table (resources and PAS/UM tables), read on a connection of our own."""

    async def count() -> dict[str, int]:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.reader.connect() as conn:
                return {
                    table.name: (
                        await conn.execute(select(func.count()).select_from(table))
                    ).scalar_one()
                    for table in metadata.sorted_tables
                }
        finally:
            await database.dispose()

    return asyncio.run(count())


@dataclass(frozen=True)
class PasServer:
    """A live server with the demo payer, and PAS calls against it."""

    server: LiveServer
    backend: str

    @property
    def database_url(self) -> str:
        return self.server.settings.database_url

    def client(self) -> httpx.Client:
        return self.server.client()

    def url(self, version: str, path: str) -> str:
        return f"{self.server.base_url}{BASE_PATHS[version]}/{path}"

    def submit(self, bundle: dict[str, Any], version: str = "2.0.1") -> httpx.Response:
        with self.client() as client:
            return client.post(
                self.url(version, "Claim/$submit"),
                content=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json"},
            )

    def inquire(self, bundle: dict[str, Any], version: str = "2.0.1") -> httpx.Response:
        with self.client() as client:
            return client.post(
                self.url(version, "Claim/$inquire"),
                content=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json"},
            )

    def subscribe(self, subscription: dict[str, Any], version: str = "2.0.1") -> httpx.Response:
        with self.client() as client:
            return client.post(
                self.url(version, "Subscription"),
                content=orjson.dumps(subscription),
                headers={"Content-Type": "application/fhir+json"},
            )

    def cases(self, **params: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get("/um/cases", params=params)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def case_of(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The review case of a $submit response (found by its stored Claim)."""
        claim_response = bundle["entry"][0]["resource"]
        claim_id = claim_response["request"]["reference"].rsplit("/", 1)[1]
        cases = self.cases(claim=f"Claim/{claim_id}")["cases"]
        assert len(cases) == 1, cases
        case: dict[str, Any] = cases[0]
        return case

    def decide(self, case_id: str, body: dict[str, Any]) -> httpx.Response:
        with self.client() as client:
            return client.post(f"/um/cases/{case_id}/decision", json=body)


def subscription(version: str, endpoint: str, bearer: str = "notify-me") -> dict[str, Any]:
    """The kit's Subscription, pointed at `endpoint` as Inferno rewrites it (PAS-S2)."""
    resource = kit(version, "subscription_resource")
    resource["channel"]["endpoint"] = endpoint
    resource["channel"]["payload"] = "application/fhir+json"
    resource["channel"]["header"] = [f"Authorization: Bearer {bearer}"]
    return copy.deepcopy(resource)


def start_pas_server(
    backend: str,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    **overrides: object,
) -> Iterator[PasServer]:
    settings = make_settings(new_database_url(backend), **{**FAST_OUTBOX, **overrides})
    upgrade_database(settings.database_url)
    asyncio.run(load_demo_data(settings))
    with run_server(settings) as server:
        yield PasServer(server, backend)


def client_keys(*names: str) -> dict[str, ClientKey]:
    """An RS384 signing key per client name (kid `<name>-1`)."""
    return {name: ClientKey(name, f"{name}-1", "RS384", new_rsa_key()) for name in names}


def start_secured_pas_server(
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    keys: dict[str, ClientKey],
    scopes: dict[str, list[str]],
    backend: str = "sqlite",
    **overrides: object,
) -> Iterator[PasServer]:
    """A live PAS server with authentication on, each client registered with its scopes and its
    key's JWKS (`overrides`: more settings, e.g. `um_reviewers`)."""
    clients = [
        {"client_id": name, "scopes": granted, "jwks": keys[name].jwks()}
        for name, granted in scopes.items()
    ]
    yield from start_pas_server(
        backend,
        new_database_url,
        make_settings,
        auth_enabled=True,
        demo=False,
        clients=json.dumps(clients),
        **overrides,
    )


def secured_pas_fixtures(
    scopes: dict[str, list[str]], **overrides: object
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A module's `keys` (an RSA key per client of `scopes`) and `secured` (a live PAS server on
    SQLite with authentication on, each client registered with its scopes; `overrides`: more
    settings) fixtures: `keys, secured = secured_pas_fixtures({...})`."""

    @pytest.fixture(scope="module")
    def keys() -> dict[str, ClientKey]:
        return client_keys(*scopes)

    @pytest.fixture(scope="module")
    def secured(
        keys: dict[str, ClientKey],
        new_database_url: DatabaseFactory,
        make_settings: SettingsFactory,
    ) -> Iterator[PasServer]:
        yield from start_secured_pas_server(
            new_database_url, make_settings, keys, scopes, "sqlite", **overrides
        )

    return keys, secured


@pytest.fixture(scope="module", params=BACKENDS)
def pas(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[PasServer]:
    """A live PAS server (auth off, demo payer) per backend, shared by a test module."""
    yield from start_pas_server(request.param, new_database_url, make_settings)
