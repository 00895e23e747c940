"""Greenlight servers as real processes (`uvicorn --factory app.main:create_app`), for tests
that kill a server (SIGKILL) or load one without sharing the test's own CPU and GIL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import FHIR_PACKAGES
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def server_process(
    database_url: str, data_dir: Path, **settings: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server on a free port, started on `database_url` (already migrated); `settings` are
    extra `GREENLIGHT_*` values (`validation="warn"`). Yields its base URL and the process."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GREENLIGHT_DATABASE_URL": database_url,
        "GREENLIGHT_DEMO": "true",
        "GREENLIGHT_AUTH_ENABLED": "false",
        "GREENLIGHT_BASE_URL": base,
        "GREENLIGHT_IG_PACKAGES": str(FHIR_PACKAGES),
        "GREENLIGHT_DATA_DIR": str(data_dir),
        "GREENLIGHT_VALIDATION": "off",
        "GREENLIGHT_PAS_OUTBOX_POLL_SECONDS": "0.1",
        "GREENLIGHT_PAS_NOTIFY_BACKOFF_SECONDS": "0.2",
        "GREENLIGHT_PAS_OUTBOX_LEASE_SECONDS": "1",
        **{f"GREENLIGHT_{key.upper()}": value for key, value in settings.items()},
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/fhir/metadata", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the server process exited"
            assert time.monotonic() < deadline, "the server process did not start"
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
