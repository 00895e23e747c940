"""A subscriber's notification endpoint: a real HTTP server on loopback that records what it gets.

`status` is what it answers (set 503 to play an endpoint that is down); `received` keeps every
request (path, headers, JSON body) in arrival order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback_http import serve_on_loopback


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def status_parameters(self) -> dict[str, Any]:
        resource: dict[str, Any] = self.body["entry"][0]["resource"]
        return resource

    def parameter(self, name: str) -> Any:
        for parameter in self.status_parameters.get("parameter", []):
            if parameter["name"] == name:
                return parameter
        return None

    @property
    def kind(self) -> str:
        return str(self.parameter("type")["valueCode"])


@dataclass
class Listener:
    url: str
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_kind(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.kind == kind]

    def wait_for(self, predicate: Callable[[Listener], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"the listener did not get what was expected: {self.received}")


@contextmanager
def listen(path: str = "/notification_listener") -> Iterator[Listener]:
    """Serve a listener at `http://127.0.0.1:<port><path>` for the `with` block."""
    state: dict[str, Listener] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            listener = state["listener"]
            status = listener.status
            if status < 300:
                with listener.lock:
                    listener.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw))
                    )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_on_loopback(Handler, "notification-listener") as base_url:
        state["listener"] = Listener(f"{base_url}{path}")
        yield state["listener"]
