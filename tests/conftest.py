"""Shared fixtures: settings, databases on both backends, and live servers on loopback.

Every storage test runs against SQLite and against a real PostgreSQL started by the session
(`tests.support.postgres`). When the PostgreSQL binaries are missing, those cases skip locally
and fail in CI (CI=true), so CI can never silently test one backend only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from app.config import Settings
from tests.support.live_server import LiveServer, run_server
from tests.support.network_guard import guarded
from tests.support.postgres import PostgresCluster, PostgresUnavailableError

SHARED = Path(__file__).resolve().parents[2] / "shared"
FHIR_PACKAGES = SHARED / "fhir-packages"
INFERNO_FIXTURES = SHARED / "fixtures" / "inferno"

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session", autouse=True)
def no_traffic_off_this_machine() -> Iterator[None]:
    """Name resolution of anything but loopback fails for the whole session."""
    original = socket.getaddrinfo
    socket.getaddrinfo = guarded(original)
    try:
        yield
    finally:
        socket.getaddrinfo = original


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster | None]:
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailableError:
        if os.environ.get("CI"):
            raise
        yield None
        return
    try:
        yield cluster
    finally:
        cluster.stop()


DatabaseFactory = Callable[[str], str]


@pytest.fixture(scope="session")
def new_database_url(
    postgres_cluster: PostgresCluster | None, tmp_path_factory: pytest.TempPathFactory
) -> DatabaseFactory:
    """`new_database_url(backend)`: the URL of a new, empty database on that backend."""

    def factory(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / "greenlight.db"
            return f"sqlite+aiosqlite:///{path}"
        if postgres_cluster is None:
            pytest.skip("PostgreSQL server binaries are not installed on this machine")
        return postgres_cluster.create_database()

    return factory


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over both storage backends."""
    name: str = request.param
    return name


SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def make_settings(tmp_path_factory: pytest.TempPathFactory) -> SettingsFactory:
    """Settings for tests (auth off in demo mode unless overridden); never read from the env."""

    def factory(database_url: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "demo": True,
            "auth_enabled": False,
            "ig_packages": FHIR_PACKAGES,
            "data_dir": tmp_path_factory.mktemp("data"),
            "token_secret": "test-secret-not-for-production-0123456789",
            "gc_freeze": False,  # many apps in one process: frozen objects would never be freed
        }
        values.update(overrides)
        return Settings.model_validate(values)

    return factory


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def start_server(make_settings: SettingsFactory) -> Iterator[ServerFactory]:
    """`start_server(database_url, **settings)`: a live server, stopped after the test."""
    with ExitStack() as stack:

        def factory(database_url: str, **overrides: object) -> LiveServer:
            return stack.enter_context(run_server(make_settings(database_url, **overrides)))

        yield factory


@pytest.fixture
def server(
    backend: str, new_database_url: DatabaseFactory, start_server: ServerFactory
) -> LiveServer:
    """A live server with auth off, on a fresh database of each backend."""
    return start_server(new_database_url(backend))
