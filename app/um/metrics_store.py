"""Reading the review cases a metrics period needs: those received or decided in it.

A plain range read of `review_cases` (received_us, decided_us), run once a year for the public
report; `app.um.metrics.build_report` does the counting.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from app.store.db import Database
from app.store.tables import review_cases
from app.um.cases import _COLUMNS, ReviewCase, _case
from app.um.metrics import Period


async def cases_in_period(database: Database, period: Period) -> list[ReviewCase]:
    """Every case received or decided in `period` (UTC days, both ends included)."""
    start, end = period.start_us, period.end_us
    received = and_(review_cases.c.received_us >= start, review_cases.c.received_us < end)
    decided = and_(review_cases.c.decided_us >= start, review_cases.c.decided_us < end)
    async with database.reader.connect() as conn:
        rows = (
            await conn.execute(
                select(*_COLUMNS).where(or_(received, decided)).order_by(review_cases.c.case_id)
            )
        ).all()
    return [_case(row) for row in rows]
