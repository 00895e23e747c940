"""A real Greenlight server on loopback: uvicorn in a background thread, on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade_database
from tests.support.postgres import free_port


@dataclass(frozen=True)
class LiveServer:
    """A running server: its settings and its base URL (`http://127.0.0.1:<port>`)."""

    settings: Settings
    base_url: str

    @property
    def fhir(self) -> str:
        return f"{self.base_url}/fhir"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


@contextmanager
def run_server(settings: Settings) -> Iterator[LiveServer]:
    """Migrate the settings' database, serve the app on a free loopback port, stop on exit."""
    port = free_port()
    settings = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    upgrade_database(settings.database_url)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"greenlight-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(settings, settings.base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
