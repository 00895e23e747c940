"""Start-up data is frozen out of the cyclic GC's full passes when `gc_freeze` is on (the
default), and left alone when it is off (app/long_lived.py). Run in a child process: freezing
the test process itself would keep every later test's garbage cycles alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.store.migrate import upgrade_database
from tests.conftest import DatabaseFactory, SettingsFactory

CHILD = """
import asyncio, gc, json, sys
from app.config import Settings
from app.main import create_app

settings = Settings.model_validate(json.loads(sys.argv[1]))
app = create_app(settings)

async def main() -> None:
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        print(before, gc.get_freeze_count())

asyncio.run(main())
"""


@pytest.mark.parametrize("freeze", [True, False])
def test_start_up_freezes_long_lived_objects_only_when_asked(
    freeze: bool, new_database_url: DatabaseFactory, make_settings: SettingsFactory
) -> None:
    settings = make_settings(new_database_url("sqlite"), gc_freeze=freeze)
    upgrade_database(settings.database_url)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, settings.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    before, after = (int(n) for n in result.stdout.split()[-2:])
    assert before == 0
    if freeze:
        assert after > 100_000  # topics, DTR content, routes: ~150,000 objects
    else:
        assert after == 0
