"""No notification is lost: a server killed (SIGKILL) while it retries one delivers it after a
restart, once. The servers are real processes (`uvicorn --factory app.main:create_app`) on the
same database, on each backend; the subscriber is a real listener on loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select

from app.demo.loader import load_demo_data
from app.pas.variants import variant
from app.store.db import create_database
from app.store.migrate import upgrade_database
from app.store.tables import pas_outbox
from tests.conftest import DatabaseFactory, SettingsFactory
from tests.pas.conftest import kit, review_actions, subscription
from tests.pas.listener import listen
from tests.pas.processes import server_process


def _event_rows(database_url: str) -> list[tuple[str, int]]:
    async def read() -> list[tuple[str, int]]:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.reader.connect() as conn:
                rows = (
                    await conn.execute(
                        select(pas_outbox.c.status, pas_outbox.c.attempts).where(
                            pas_outbox.c.kind == "event-notification"
                        )
                    )
                ).all()
                return [(str(r.status), int(r.attempts)) for r in rows]
        finally:
            await database.dispose()

    return asyncio.run(read())


def _post(base: str, path: str, body: object) -> httpx.Response:
    return httpx.post(
        f"{base}{path}",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )


def test_a_notification_survives_a_killed_server_and_arrives_once(
    backend: str,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    tmp_path: Path,
) -> None:
    settings = make_settings(new_database_url(backend))
    upgrade_database(settings.database_url)
    asyncio.run(load_demo_data(settings))
    with listen() as listener:
        with server_process(settings.database_url, tmp_path) as (base, process):
            created = _post(base, "/fhir/Subscription", subscription("2.0.1", listener.url))
            assert created.status_code == 201
            listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
            listener.status = 503  # the subscriber goes down
            pended = _post(
                base,
                "/fhir/Claim/$submit",
                variant("pend", kit("2.0.1", "approval_pa_submit_request_payload")),
            ).json()
            assert review_actions(pended) == ["A4"]
            claim_id = pended["entry"][0]["resource"]["request"]["reference"].rsplit("/", 1)[1]
            case = httpx.get(f"{base}/um/cases", params={"claim": claim_id}).json()["cases"][0]
            decided = httpx.post(
                f"{base}/um/cases/{case['id']}/decision", json={"decision": "approve"}
            )
            assert decided.status_code == 200
            deadline = time.monotonic() + 10
            while not any(attempts >= 2 for _, attempts in _event_rows(settings.database_url)):
                assert time.monotonic() < deadline, "the notification was never retried"
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGKILL)  # mid-retry
            process.wait(timeout=10)
        assert listener.of_kind("event-notification") == []
        assert [status for status, _ in _event_rows(settings.database_url)] == ["pending"]
        listener.status = 200  # the subscriber is back
        restarted = time.monotonic()
        with server_process(settings.database_url, tmp_path):
            listener.wait_for(lambda seen: len(seen.of_kind("event-notification")) == 1, 20)
            delivered_after = time.monotonic() - restarted
            time.sleep(1.0)  # nothing more comes
            assert len(listener.of_kind("event-notification")) == 1
        assert [status for status, _ in _event_rows(settings.database_url)] == ["delivered"]
    print(f"[{backend}] notification delivered {delivered_after:.2f} s after the restart began")
    event = listener.of_kind("event-notification")[0]
    assert event.parameter("type")["valueCode"] == "event-notification"
    assert event.headers["Authorization"] == "Bearer notify-me"
