"""Coverage assertions: stored CRD answers, found again by id (DTR `context`, PAS) or by the
fingerprint of their inputs (a repeated hook for unchanged orders reuses its answer, CRD resp-36).

An assertion is never changed once stored, so each process keeps the ones it saved or read
recently (`RECENT_ASSERTIONS`, least recently used dropped first) and answers a repeated hook
from memory while the assertion is unexpired; a miss reads the database, where another worker's
assertions are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select

from app.lru import Lru
from app.rules.engine import Decision
from app.rules.serialization import decision_from_json, decision_to_json
from app.store.db import Database
from app.store.row_writes import row_write, run_write, run_write_many
from app.store.tables import coverage_assertions, coverage_decisions


@dataclass(frozen=True)
class OrderDecision:
    """The decision for one order of an assertion, with the inputs that produced it."""

    order_ref: str
    decision: Decision
    inputs: dict[str, Any]


@dataclass(frozen=True)
class CoverageAssertion:
    assertion_id: str
    created_us: int
    expires_us: int
    fingerprint: str
    hook: str
    decisions: tuple[OrderDecision, ...]
    patient_id: str | None = None
    member_coverage_id: str | None = None
    client_coverage_ref: str | None = None
    caller: str | None = None

    def decision_for(self, order_ref: str) -> Decision | None:
        return next((d.decision for d in self.decisions if d.order_ref == order_ref), None)


RECENT_ASSERTIONS = 4096

_ASSERTION_COLUMNS = (
    coverage_assertions.c.assertion_id,
    coverage_assertions.c.created_us,
    coverage_assertions.c.expires_us,
    coverage_assertions.c.fingerprint,
    coverage_assertions.c.hook,
    coverage_assertions.c.patient_id,
    coverage_assertions.c.member_coverage_id,
    coverage_assertions.c.client_coverage_ref,
    coverage_assertions.c.caller,
)


#: the assertion's columns, named as `CoverageAssertion`'s fields
_ASSERTION_KEYS = tuple(str(c.key) for c in _ASSERTION_COLUMNS)
_INSERT_ASSERTION = row_write(insert(coverage_assertions), _ASSERTION_KEYS)
_INSERT_DECISION = row_write(
    insert(coverage_decisions), ("assertion_id", "order_ref", "topic_id", "decision", "inputs")
)

_ASSERTION_SQL_COLUMNS = ", ".join(_ASSERTION_KEYS)
_ASSERTION_BY_ID_SQL = (
    f"SELECT {_ASSERTION_SQL_COLUMNS} FROM coverage_assertions WHERE assertion_id = ?"  # noqa: S608
)
_REUSABLE_SQL = (
    f"SELECT {_ASSERTION_SQL_COLUMNS} FROM coverage_assertions "  # noqa: S608
    "WHERE fingerprint = ? AND expires_us > ? ORDER BY created_us DESC LIMIT 1"
)
_DECISIONS_SQL = (
    "SELECT order_ref, decision, inputs FROM coverage_decisions WHERE assertion_id = ? "
    "ORDER BY order_ref"
)


class AssertionStore:
    """Saves and finds coverage assertions (on SQLite, reads go through the standard library
    reader, as resource reads do: these lookups are on the CRD hot path)."""

    def __init__(self, database: Database, *, recent: int = RECENT_ASSERTIONS) -> None:
        self.database = database
        self._recent: Lru[str, CoverageAssertion] = Lru(recent)  # by fingerprint

    def _remember(self, assertion: CoverageAssertion) -> CoverageAssertion:
        recent = self._recent
        held = recent.get(assertion.fingerprint)
        if held is None or held.created_us <= assertion.created_us:
            recent.put(assertion.fingerprint, assertion)
        return assertion

    def _recalled(self, fingerprint: str, now_us: int) -> CoverageAssertion | None:
        held = self._recent.get(fingerprint)
        if held is None or held.expires_us <= now_us:
            return None
        return held

    async def save(self, assertion: CoverageAssertion) -> None:
        """Store the assertion and its decisions in one transaction."""
        async with self.database.writer.begin() as conn:
            await run_write(
                conn, _INSERT_ASSERTION, {key: getattr(assertion, key) for key in _ASSERTION_KEYS}
            )
            decisions = [
                {
                    "assertion_id": assertion.assertion_id,
                    "order_ref": item.order_ref,
                    "topic_id": item.decision.topic_id,
                    "decision": orjson.dumps(decision_to_json(item.decision)).decode(),
                    "inputs": orjson.dumps(item.inputs).decode(),
                }
                for item in assertion.decisions
            ]
            if decisions:
                await run_write_many(conn, _INSERT_DECISION, decisions)
        self._remember(assertion)

    async def get(self, assertion_id: str) -> CoverageAssertion | None:
        point = self.database.point_reader
        if point is not None:
            rows = point.rows(_ASSERTION_BY_ID_SQL, (assertion_id,))
            return (
                self._from_rows(rows[0], point.rows(_DECISIONS_SQL, (assertion_id,)))
                if rows
                else None
            )
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(*_ASSERTION_COLUMNS).where(
                        coverage_assertions.c.assertion_id == assertion_id
                    )
                )
            ).first()
            if row is None:
                return None
            return await self._with_decisions(conn, row)

    async def find_reusable(self, fingerprint: str, now_us: int) -> CoverageAssertion | None:
        """The newest unexpired assertion made from exactly the same inputs, if any (one this
        process holds is as good: it is unexpired and was made from the same inputs)."""
        held = self._recalled(fingerprint, now_us)
        if held is not None:
            return held
        found = await self._newest(fingerprint, now_us)
        return None if found is None else self._remember(found)

    async def _newest(self, fingerprint: str, now_us: int) -> CoverageAssertion | None:
        point = self.database.point_reader
        if point is not None:
            rows = point.rows(_REUSABLE_SQL, (fingerprint, now_us))
            if not rows:
                return None
            return self._from_rows(rows[0], point.rows(_DECISIONS_SQL, (rows[0][0],)))
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(*_ASSERTION_COLUMNS)
                    .where(
                        coverage_assertions.c.fingerprint == fingerprint,
                        coverage_assertions.c.expires_us > now_us,
                    )
                    .order_by(coverage_assertions.c.created_us.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            return await self._with_decisions(conn, row)

    @staticmethod
    def _from_rows(row: Sequence[Any], decisions: Sequence[Sequence[Any]]) -> CoverageAssertion:
        """An assertion from its row (columns in `_ASSERTION_KEYS` order) and its decisions'
        (order_ref, decision, inputs) rows, as either reader returns them."""
        return CoverageAssertion(
            **dict(zip(_ASSERTION_KEYS, row, strict=True)),
            decisions=tuple(
                OrderDecision(ref, decision_from_json(orjson.loads(d)), orjson.loads(i))
                for ref, d, i in decisions
            ),
        )

    async def _with_decisions(self, conn: Any, row: Any) -> CoverageAssertion:
        decisions = (
            await conn.execute(
                select(
                    coverage_decisions.c.order_ref,
                    coverage_decisions.c.decision,
                    coverage_decisions.c.inputs,
                )
                .where(coverage_decisions.c.assertion_id == row.assertion_id)
                .order_by(coverage_decisions.c.order_ref)
            )
        ).all()
        return self._from_rows(row, decisions)
