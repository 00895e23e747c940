"""An EHR FHIR server on loopback whose reads can be made to fail: a real HTTP server (in a
thread) answering `Type/id` reads from the resources a test gives it, and, for the resource types
a test names, an HTTP error or no answer at all (it holds the request open for a while).

CRD services query the EHR (`fhirServer`) for whatever was not prefetched; this server lets tests
see what they answer when the EHR fails them (CRD resp-43, found-32).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback_http import serve_on_loopback


@dataclass(frozen=True)
class Fault:
    """How the EHR fails reads of one resource type: an HTTP status, or silence for `hang`
    seconds (then it closes the connection without an answer)."""

    status: int = 503
    hang: float = 0.0


@dataclass
class FaultyEhr:
    base_url: str = ""
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Type/id" -> resource
    faults: dict[str, Fault] = field(default_factory=dict)  # resource type -> its fault
    requests: list[str] = field(default_factory=list)  # paths asked, in order
    released: threading.Event = field(default_factory=threading.Event)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


@contextmanager
def faulty_ehr() -> Iterator[FaultyEhr]:
    """Serve a `FaultyEhr` on a free loopback port for the duration of the block."""
    ehr = FaultyEhr()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].removeprefix("/fhir").strip("/")
            ehr.requests.append(path)
            fault = ehr.faults.get(path.split("/", 1)[0])
            if fault is not None and fault.hang:
                ehr.released.wait(fault.hang)
                self.close_connection = True
                return
            if fault is not None:
                _reply(self, fault.status, _outcome("transient", "the EHR is unavailable"))
            elif path in ehr.resources:
                _reply(self, 200, ehr.resources[path])
            else:
                _reply(self, 404, _outcome("not-found", path))

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_on_loopback(Handler, "faulty-ehr") as base_url:
        ehr.base_url = f"{base_url}/fhir"
        try:
            yield ehr
        finally:
            ehr.released.set()  # requests held open end now
