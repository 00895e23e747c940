"""A live server per backend for the DTR API tests: the demo payer loaded (its members are the
ones the Inferno DTR inputs name: pat015 / 10A3D58WH456, examplepatient / PFP123450000), auth off
(demo mode, unsigned CDS Hooks calls accepted, so the end-to-end test can call CRD first)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.demo.loader import load_demo_data
from app.store.migrate import upgrade_database
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.support.live_server import LiveServer, run_server

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module", params=BACKENDS)
def dtr_server(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[LiveServer]:
    settings = make_settings(new_database_url(request.param), cds_allow_unsigned=True)
    upgrade_database(settings.database_url)
    asyncio.run(load_demo_data(settings))
    with run_server(settings) as server:
        yield server


@pytest.fixture
def fhir(dtr_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dtr_server.fhir, headers=FHIR_JSON, timeout=60) as client:
        yield client


def post(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return client.post(path, json=body, headers=headers)
