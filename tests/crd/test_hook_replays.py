"""Replayed CDS Hooks JWTs under concurrency and across workers (`app.auth.cds_jwt`): the jti is
recorded, in the database, before any of the call's work. A jti another worker recorded, or a
second concurrent call with the same JWT, is refused with 401 and writes nothing: no AuditEvent,
no coverage assertion. Real HTTP on loopback, both backends, read back from the payer's database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from app.auth.cds_jwt import REPLAY_SCOPE_PREFIX
from app.store.db import Database
from app.store.tables import coverage_assertions, used_assertion_ids
from tests.crd.conftest import CrdServer
from tests.crd.hook_requests import order_sign
from tests.support.databases import on_database
from tests.support.db_rows import row_counts

SERVICE = "order-sign-crd"
SILVER_MEMBER = "10A3D58WH456"
LUMBAR_MRI = "72148"


def _new_order_call() -> dict[str, Any]:
    """An order-sign call for an order never seen before: its answer needs a new assertion."""
    body = order_sign(SILVER_MEMBER, LUMBAR_MRI)
    body["context"]["draftOrders"]["entry"][0]["resource"]["id"] = f"sr-{uuid.uuid4()}"
    return body


def _assertion_count(database_url: str) -> int:
    async def count(database: Database) -> int:
        async with database.reader.connect() as conn:
            query = select(func.count()).select_from(coverage_assertions)
            return int((await conn.execute(query)).scalar_one())

    return on_database(database_url, count)


def _record_elsewhere(database_url: str, issuer: str, jti: str) -> None:
    """What another worker does when it accepts a call: the jti is recorded as used."""

    async def record(database: Database) -> None:
        async with database.writer.begin() as conn:
            await conn.execute(
                insert(used_assertion_ids).values(
                    client_id=REPLAY_SCOPE_PREFIX + issuer,
                    jti=jti,
                    expires_at=int(time.time()) + 600,
                )
            )

    on_database(database_url, record)


@pytest.mark.requirement("CRD", "sec-1")
def test_a_jti_recorded_by_another_worker_is_refused_and_nothing_is_written(
    crd: CrdServer,
) -> None:
    url = crd.server.settings.database_url
    jti = uuid.uuid4().hex
    _record_elsewhere(url, crd.issuer, jti)
    before, assertions_before = row_counts(url), _assertion_count(url)
    token = crd.jwt(SERVICE, jti=jti)
    with httpx.Client(base_url=crd.server.base_url, timeout=30) as client:
        response = client.post(
            f"/cds-services/{SERVICE}",
            json=_new_order_call(),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 401, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "replay" in outcome["issue"][0]["diagnostics"]
    assert row_counts(url) == before, "no AuditEvent, no index rows"
    assert _assertion_count(url) == assertions_before, "no coverage assertion"


@pytest.mark.requirement("CRD", "sec-1")
def test_concurrent_calls_with_one_jwt_are_answered_once(crd: CrdServer) -> None:
    url = crd.server.settings.database_url
    token = crd.jwt(SERVICE)
    body = _new_order_call()
    before, assertions_before = row_counts(url), _assertion_count(url)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=crd.server.base_url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/cds-services/{SERVICE}",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    for _ in range(6)
                )
            )

    statuses = sorted(response.status_code for response in asyncio.run(send_all()))
    assert statuses == [200, 401, 401, 401, 401, 401]
    after = row_counts(url)
    assert after["audit_events"] == before["audit_events"] + 1, "one AuditEvent"
    assert after["resources"] == before["resources"]
    assert _assertion_count(url) == assertions_before + 1
    # the accepted call's assertion was committed with it: a later call for the order reuses it
    again = crd.call(SERVICE, body)
    assert again.status_code == 200
    assert _assertion_count(url) == assertions_before + 1, "the stored assertion is reused"
