"""Decision deadlines (CMS-0057-F): 72 hours for expedited requests, 7 calendar days otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

Priority = Literal["expedited", "standard"]

EXPEDITED_HOURS = 72
STANDARD_DAYS = 7


def due_time(received: datetime, priority: Priority) -> datetime:
    """When the decision on a request received at `received` is due."""
    if priority == "expedited":
        return received + timedelta(hours=EXPEDITED_HOURS)
    return received + timedelta(days=STANDARD_DAYS)
