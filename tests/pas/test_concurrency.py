"""200 concurrent $submit calls: 200 requests, 200 cases, 200 answers, no duplicates, on each
backend; and a request sent many times at once is stored once (the dedupe key holds under load,
and the losing transactions roll back completely).

The server is its own process (the test's client does not share its CPU), with profile
validation off: that is CPU work that does not touch storage.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.demo.loader import load_demo_data
from app.pas.variants import variant
from app.store.migrate import upgrade_database
from tests.conftest import DatabaseFactory, SettingsFactory
from tests.pas.conftest import kit, review_actions, table_counts
from tests.pas.processes import server_process

CONCURRENT = 200
REPEATS = 20


def _bundles() -> list[dict[str, Any]]:
    approval = kit("2.0.1", "approval_pa_submit_request_payload")
    return [variant("approve-gold-card" if n % 2 else "pend", approval) for n in range(CONCURRENT)]


async def _post_all(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT + REPEATS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(url, content=body, headers={"Content-Type": "application/fhir+json"})
                for body in bodies
            )
        )


def test_200_concurrent_submissions_and_repeats_store_each_request_once(
    backend: str,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
    tmp_path: Path,
) -> None:
    settings = make_settings(new_database_url(backend))
    upgrade_database(settings.database_url)
    asyncio.run(load_demo_data(settings))
    bundles = _bundles()
    assert len({b["identifier"]["value"] for b in bundles}) == CONCURRENT
    repeated = orjson.dumps(bundles[0])
    bodies = [orjson.dumps(b) for b in bundles] + [repeated] * REPEATS
    with server_process(settings.database_url, tmp_path) as (base, _process):
        started = time.monotonic()
        responses = asyncio.run(_post_all(f"{base}/fhir/Claim/$submit", bodies))
        elapsed = time.monotonic() - started
        cases = httpx.get(f"{base}/um/cases", params={"_count": "1000"}).json()
    assert [r.status_code for r in responses] == [200] * len(bodies)
    answers = [r.json() for r in responses]
    claim_responses = [a["entry"][0]["resource"]["id"] for a in answers]
    assert len(set(claim_responses[:CONCURRENT])) == CONCURRENT
    assert set(claim_responses[CONCURRENT:]) == {claim_responses[0]}  # repeats: the stored one
    assert all(review_actions(a) in (["A1"], ["A4"]) for a in answers)
    counts = table_counts(settings.database_url)
    assert counts["pas_requests"] == counts["review_cases"] == CONCURRENT
    assert cases["total"] == CONCURRENT
    assert len({c["claim"] for c in cases["cases"]}) == CONCURRENT
    print(f"[{backend}] {len(bodies)} concurrent $submit in {elapsed:.1f} s")
