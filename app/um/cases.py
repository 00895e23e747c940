"""Review cases: one per PAS request, with its priority, due time, status and rule trace.

Statuses: `pended` (waiting for a clinician), `approved` / `partial` / `denied` (a reviewer
decided), `certified` (every item certified or not needing authorization at submission),
`not-certified` (an administrative denial at submission), `not-required` (no item needs
authorization), `cancelled` (the requester cancelled the request or was superseded by an update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update

from app.store.db import Database, SqlConnection
from app.store.stored import format_instant
from app.store.tables import review_cases

OPEN = "pended"
STATUSES = (
    "pended",
    "approved",
    "partial",
    "denied",
    "certified",
    "not-certified",
    "not-required",
    "cancelled",
)


@dataclass(frozen=True)
class ReviewCase:
    case_id: str
    request_id: str
    claim_id: str
    claim_response_id: str
    status: str
    priority: str
    received_us: int
    due_us: int
    trace: dict[str, Any]
    decided_us: int | None = None
    decided_by: str | None = None
    decision: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The list form of the reviewer API."""
        return {
            "id": self.case_id,
            "claim": f"Claim/{self.claim_id}",
            "claimResponse": f"ClaimResponse/{self.claim_response_id}",
            "status": self.status,
            "priority": self.priority,
            "received_at": format_instant(self.received_us),
            "due_at": format_instant(self.due_us),
        }

    def detail(self) -> dict[str, Any]:
        found = self.summary()
        found["decided_at"] = format_instant(self.decided_us) if self.decided_us else None
        found["decided_by"] = self.decided_by
        found["decision"] = self.decision
        found["trace"] = self.trace
        return found


_COLUMNS = (
    review_cases.c.case_id,
    review_cases.c.request_id,
    review_cases.c.claim_id,
    review_cases.c.claim_response_id,
    review_cases.c.status,
    review_cases.c.priority,
    review_cases.c.received_us,
    review_cases.c.due_us,
    review_cases.c.trace,
    review_cases.c.decided_us,
    review_cases.c.decided_by,
    review_cases.c.decision,
)


def _case(row: Any) -> ReviewCase:
    return ReviewCase(
        case_id=row.case_id,
        request_id=row.request_id,
        claim_id=row.claim_id,
        claim_response_id=row.claim_response_id,
        status=row.status,
        priority=row.priority,
        received_us=row.received_us,
        due_us=row.due_us,
        trace=orjson.loads(row.trace),
        decided_us=row.decided_us,
        decided_by=row.decided_by,
        decision=orjson.loads(row.decision) if row.decision else None,
    )


async def insert_case(conn: SqlConnection, case: ReviewCase) -> None:
    """Store a new case inside the caller's transaction."""
    await conn.execute(
        insert(review_cases).values(
            case_id=case.case_id,
            request_id=case.request_id,
            claim_id=case.claim_id,
            claim_response_id=case.claim_response_id,
            status=case.status,
            priority=case.priority,
            received_us=case.received_us,
            due_us=case.due_us,
            trace=orjson.dumps(case.trace).decode(),
            decided_us=case.decided_us,
            decided_by=case.decided_by,
            decision=orjson.dumps(case.decision).decode() if case.decision else None,
        )
    )


async def locked_case(conn: SqlConnection, case_id: str) -> ReviewCase | None:
    """The case, locked for the caller's transaction (PostgreSQL row lock)."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(review_cases.c.case_id == case_id).with_for_update()
        )
    ).first()
    return None if row is None else _case(row)


async def record_decision(
    conn: SqlConnection,
    case_id: str,
    status: str,
    decided_us: int,
    decided_by: str | None,
    decision: dict[str, Any] | None,
) -> None:
    await conn.execute(
        update(review_cases)
        .where(review_cases.c.case_id == case_id)
        .values(
            status=status,
            decided_us=decided_us,
            decided_by=decided_by,
            decision=orjson.dumps(decision).decode() if decision else None,
        )
    )


class CaseStore:
    """Reads of review cases."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, case_id: str) -> ReviewCase | None:
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(select(*_COLUMNS).where(review_cases.c.case_id == case_id))
            ).first()
        return None if row is None else _case(row)

    async def by_request(self, request_id: str) -> ReviewCase | None:
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(select(*_COLUMNS).where(review_cases.c.request_id == request_id))
            ).first()
        return None if row is None else _case(row)

    async def list(
        self,
        *,
        status: str | None = None,
        claim_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[ReviewCase]]:
        """Cases, earliest due first (the reviewer's work queue); and the total count."""
        conditions = []
        if status:
            conditions.append(review_cases.c.status == status)
        if claim_id:
            conditions.append(review_cases.c.claim_id == claim_id)
        async with self.database.reader.connect() as conn:
            total = (
                await conn.execute(
                    select(func.count()).select_from(review_cases).where(*conditions)
                )
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(*_COLUMNS)
                    .where(*conditions)
                    .order_by(review_cases.c.due_us, review_cases.c.case_id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return int(total), [_case(r) for r in rows]
