"""SQL conditions of search criteria that do not depend on the table searched."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from app.store.search import DateCriterion


def date_condition(column: ColumnElement[Any], criterion: DateCriterion) -> ColumnElement[bool]:
    """`column` (epoch microseconds) against a `_lastUpdated` criterion's range and prefix."""
    low, high = criterion.low_us, criterion.high_us
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(column >= low, column < high),
        "ne": or_(column < low, column >= high),
        "gt": column >= high,
        "sa": column >= high,
        "lt": column < low,
        "eb": column < low,
        "ge": column >= low,
        "le": column < high,
    }
    return conditions[criterion.prefix]
