"""Greenlight servers as real processes (`uvicorn --factory app.main:create_app`), for tests
that kill a server (SIGKILL) or load one without sharing the test's own CPU and GIL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import FHIR_PACKAGES
from tests.support.postgres import free_port
from tests.support.processes import serving_process

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
    command = [
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
    ]
    with serving_process(command, cwd=ROOT, env=env, ready_url=f"{base}/fhir/metadata") as process:
        yield base, process
