"""The CMS-0057-F prior authorization metrics report, computed from the review cases of a period.

CMS-0057-F (the Interoperability and Prior Authorization final rule, January 2024; for MA
organizations 42 CFR 422.122(c), for QHP issuers on the FFEs 45 CFR 156.223(b), and the parallel
Medicaid and CHIP provisions) has impacted payers post on their public website, every year by
March 31 for the previous calendar year, aggregated for all items and services (drugs excluded):

    element  what                                                 field of MetricsReport
    (1)      the list of all items and services that require       items (`app.um.pa_items`,
             prior authorization                                   the topics as loaded now)
    (2)      % of standard requests approved                       standard.approved
    (3)      % of standard requests denied                         standard.denied
    (4)      % of standard requests approved after appeal          standard.approved_after_appeal
    (5)      % of requests whose review timeframe was extended     extended_and_approved
             and that were approved
    (6)      % of expedited requests approved                      expedited.approved
    (7)      % of expedited requests denied                        expedited.denied
    (8)      average and median time from submission to            standard.time_to_determination
             determination, standard requests
    (9)      the same, expedited requests                          expedited.time_to_determination

Greenlight has no appeal and no extension workflow yet: (4) and (5) are reported as 0 with
`tracked = False` and the note "not tracked yet", never estimated.

Which cases count (one review case = one PAS request, an update being a new request):

- a **determination** is counted in the period its decision was made (`decided_at` in the period),
  as the rule reports determinations of the calendar year: `approved`, `certified` (approved at
  submission: the rules, a gold card, a CRD assertion) and `partial` count as approved (partial
  ones also counted apart, `approved_in_part`); `denied` (a clinician, any reason) and
  `not-certified` (denied at submission from administrative facts: no such member, coverage not
  active, an excluded benefit) count as denied, each also counted apart;
- a request received in the period with no determination by the period's end (still `pended`,
  or decided after it) is **pending**: counted apart, in no percentage and no time;
- `cancelled` (cancelled by the requester, or superseded by an update while pended),
  `not-required` (no item needed authorization: not a prior authorization request) and drug
  requests (every item that named a coverage topic named a drug topic) are **excluded** and
  counted apart, when decided in the period.

Percentages are of the determinations of that priority in the period, rounded half up to one
decimal (`None`, shown "n/a", when there is none). Times run from `received_at` (submission) to
`decided_at` (determination), so a request certified at submission counts with about 0 hours;
they are in hours, rounded half up to two decimals (`None` when there is no determination).
The period is a range of whole days in UTC, both ends included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.rules.loader import TopicSet
from app.um.cases import ReviewCase
from app.um.pa_items import PaItemList, drug_topics, pa_items

APPROVED = ("approved", "certified", "partial")
DENIED = ("denied", "not-certified")
NOT_TRACKED = "not tracked yet"
APPEAL_NOTE = f"{NOT_TRACKED}: Greenlight has no appeal workflow; reported as 0"
EXTENSION_NOTE = f"{NOT_TRACKED}: Greenlight has no review-timeframe extension; reported as 0"
_HOUR_US = Decimal(3_600_000_000)
_ONE_DECIMAL = Decimal("0.1")
_TWO_DECIMALS = Decimal("0.01")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A period that cannot be reported; `field` names the parameter at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


def _micros(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


@dataclass(frozen=True)
class Period:
    """Whole days in UTC, `start` and `end` included."""

    start: date
    end: date

    @classmethod
    def calendar_year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @property
    def start_us(self) -> int:
        return _micros(self.start)

    @property
    def end_us(self) -> int:
        """The first microsecond after the period."""
        return _micros(self.end + timedelta(days=1))

    def contains(self, epoch_us: int | None) -> bool:
        return epoch_us is not None and self.start_us <= epoch_us < self.end_us

    @property
    def label(self) -> str:
        if self.start == date(self.start.year, 1, 1) and self.end == date(self.start.year, 12, 31):
            return f"calendar year {self.start.year}"
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    def to_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "timezone": "UTC"}


def _date(raw: str, name: str) -> date:
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(name, f"{name} is a date, YYYY-MM-DD") from None


def period_of(year: str | None, start: str | None, end: str | None, today: date) -> Period:
    """The period asked for: a calendar `year`, or `start` to `end` (dates, both included);
    neither: the previous calendar year (the one the rule reports). PeriodError names the
    parameter at fault."""
    if year is not None:
        if start is not None or end is not None:
            raise PeriodError("year", "year, or from and to, not both")
        if not (len(year) == 4 and year.isdigit() and int(year) >= 1970):
            raise PeriodError("year", "year is a calendar year such as 2025")
        return Period.calendar_year(int(year))
    if start is None and end is None:
        return Period.calendar_year(today.year - 1)
    if start is None or end is None:
        missing = "from" if start is None else "to"
        raise PeriodError(missing, "from and to go together (dates, both included)")
    first, last = _date(start, "from"), _date(end, "to")
    if first.year < 1970:
        raise PeriodError("from", "from is a date from 1970-01-01 on")
    if last < first:
        raise PeriodError("to", "to is on or after from")
    return Period(first, last)


def percent(count: int, total: int) -> float | None:
    """count / total as a percentage, half up to one decimal; None when total is 0."""
    if total == 0:
        return None
    value = Decimal(count * 100) / Decimal(total)
    return float(value.quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP))


def _hours(micros: Decimal) -> float:
    return float((micros / _HOUR_US).quantize(_TWO_DECIMALS, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Figure:
    """A count and its percentage of the determinations it is a share of."""

    count: int
    percent: float | None
    tracked: bool = True
    note: str | None = None

    @classmethod
    def of(cls, count: int, total: int) -> Figure:
        return cls(count, percent(count, total))

    @classmethod
    def untracked(cls, note: str) -> Figure:
        return cls(0, 0.0, tracked=False, note=note)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"count": self.count, "percent": self.percent}
        if not self.tracked:
            found["tracked"] = False
            found["note"] = self.note
        return found


@dataclass(frozen=True)
class ElapsedTime:
    """Average and median hours from submission to determination (elements 8 and 9)."""

    average_hours: float | None
    median_hours: float | None

    @classmethod
    def of(cls, elapsed_us: list[int]) -> ElapsedTime:
        if not elapsed_us:
            return cls(None, None)
        ordered = sorted(elapsed_us)
        middle = len(ordered) // 2
        median = (
            Decimal(ordered[middle])
            if len(ordered) % 2
            else Decimal(ordered[middle - 1] + ordered[middle]) / 2
        )
        return cls(_hours(Decimal(sum(ordered)) / len(ordered)), _hours(median))

    def to_json(self) -> dict[str, float | None]:
        return {"average_hours": self.average_hours, "median_hours": self.median_hours}


@dataclass(frozen=True)
class PriorityMetrics:
    """The figures of one priority (standard or expedited) over the period's determinations."""

    priority: str
    determinations: int
    approved: Figure  # element (2) / (6)
    approved_in_part: int
    denied: Figure  # element (3) / (7)
    denied_administrative: int  # not-certified at submission
    denied_on_review: int  # denied by a clinician
    time_to_determination: ElapsedTime  # element (8) / (9)
    approved_after_appeal: Figure | None = None  # element (4), standard only

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "determinations": self.determinations,
            "approved": self.approved.to_json(),
            "approved_in_part": self.approved_in_part,
            "denied": self.denied.to_json(),
            "denied_administrative": self.denied_administrative,
            "denied_on_review": self.denied_on_review,
        }
        if self.approved_after_appeal is not None:
            found["approved_after_appeal"] = self.approved_after_appeal.to_json()
        found["time_to_determination"] = self.time_to_determination.to_json()
        return found


@dataclass(frozen=True)
class Excluded:
    """Requests in no percentage and no time (see the module docstring)."""

    pending: int = 0
    cancelled: int = 0
    no_authorization_required: int = 0
    drugs: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "cancelled": self.cancelled,
            "no_authorization_required": self.no_authorization_required,
            "drugs": self.drugs,
        }


@dataclass(frozen=True)
class MetricsReport:
    period: Period
    standard: PriorityMetrics
    expedited: PriorityMetrics
    extended_and_approved: Figure  # element (5)
    excluded: Excluded
    items: PaItemList  # element (1)

    def to_json(self) -> dict[str, Any]:
        return {
            "report": "CMS-0057-F prior authorization metrics",
            "period": self.period.to_json(),
            "standard": self.standard.to_json(),
            "expedited": self.expedited.to_json(),
            "extended_and_approved": self.extended_and_approved.to_json(),
            "excluded": self.excluded.to_json(),
            "items_requiring_prior_authorization": [i.to_json() for i in self.items.services],
            "drugs_requiring_prior_authorization": [i.to_json() for i in self.items.drugs],
        }


@dataclass
class _Tally:
    approved: int = 0
    partial: int = 0
    denied_administrative: int = 0
    denied_on_review: int = 0
    elapsed_us: list[int] = field(default_factory=list)

    def add(self, case: ReviewCase, decided_us: int) -> None:
        if case.status in APPROVED:
            self.approved += 1
            if case.status == "partial":
                self.partial += 1
        elif case.status == "not-certified":
            self.denied_administrative += 1
        else:
            self.denied_on_review += 1
        self.elapsed_us.append(decided_us - case.received_us)

    def metrics(self, priority: str) -> PriorityMetrics:
        total = len(self.elapsed_us)
        denied = self.denied_administrative + self.denied_on_review
        return PriorityMetrics(
            priority=priority,
            determinations=total,
            approved=Figure.of(self.approved, total),
            approved_in_part=self.partial,
            denied=Figure.of(denied, total),
            denied_administrative=self.denied_administrative,
            denied_on_review=self.denied_on_review,
            time_to_determination=ElapsedTime.of(self.elapsed_us),
            approved_after_appeal=Figure.untracked(APPEAL_NOTE) if priority == "standard" else None,
        )


def is_drug_request(case: ReviewCase, drugs: frozenset[str]) -> bool:
    """Every item of the case that named a coverage topic named a drug topic (at least one)."""
    named = {
        str(item["topic"])
        for item in case.trace.get("items") or []
        if isinstance(item, dict) and item.get("topic")
    }
    return bool(named) and named <= drugs


def build_report(cases: Iterable[ReviewCase], topics: TopicSet, period: Period) -> MetricsReport:
    """The report of `period` from the review cases (any superset of those received or decided
    in it) and the loaded topics; the counting rules are in the module docstring."""
    drugs = drug_topics(topics)
    tallies = {"standard": _Tally(), "expedited": _Tally()}
    pending = cancelled = not_required = drug_requests = 0
    for case in cases:
        decided = case.decided_us
        undecided_at_end = decided is None or decided >= period.end_us
        if period.contains(case.received_us) and undecided_at_end:
            if is_drug_request(case, drugs):
                drug_requests += 1
            else:
                pending += 1
            continue
        if decided is None or not period.contains(decided):
            continue
        if case.status == "cancelled":
            cancelled += 1
        elif case.status == "not-required":
            not_required += 1
        elif case.status not in (*APPROVED, *DENIED):
            continue  # not a determination (a pended case never has decided_at)
        elif is_drug_request(case, drugs):
            drug_requests += 1
        else:
            tallies["expedited" if case.priority == "expedited" else "standard"].add(case, decided)
    standard = tallies["standard"].metrics("standard")
    expedited = tallies["expedited"].metrics("expedited")
    return MetricsReport(
        period=period,
        standard=standard,
        expedited=expedited,
        extended_and_approved=Figure.untracked(EXTENSION_NOTE),
        excluded=Excluded(pending, cancelled, not_required, drug_requests),
        items=pa_items(topics),
    )
