"""A standard-library HTTP server on a free loopback port, in a daemon thread, for the length of
a `with` block: the stand-ins for what lies outside Greenlight (an EHR, a JWKS host, a
subscriber's notification endpoint) answer real HTTP on localhost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_on_loopback(handler: type[BaseHTTPRequestHandler], name: str) -> Iterator[str]:
    """Serve `handler` until the block ends; yields the base URL (`http://127.0.0.1:<port>`).
    Requests still being handled when it ends are left to their daemon threads."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
