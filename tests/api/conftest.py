"""A live server per backend shared by a test module (tests create their own resources)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.support.live_server import LiveServer, run_server


@pytest.fixture(scope="module", params=BACKENDS)
def module_server(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[LiveServer]:
    """A live server (auth off) on a fresh database of each backend, for one module."""
    settings = make_settings(new_database_url(request.param))
    with run_server(settings) as server:
        yield server
