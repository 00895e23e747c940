"""The CMS-0057-F metrics as a pure function of review cases and topics (`app.um.metrics`), the
element (1) list (`app.um.pa_items`) and the public page (`app.um.metrics_markdown`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.rules.loader import TopicSet, compile_topic, load_topics
from app.um.cases import ReviewCase
from app.um.metrics import Period, PeriodError, build_report, percent, period_of
from app.um.metrics_markdown import render_markdown
from app.um.pa_items import pa_items

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires"
YEAR = Period.calendar_year(2025)
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _us(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1_000_000)


def _topic(topic_id: str, **fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": topic_id,
        "title": topic_id.replace("-", " ").title(),
        "codes": [{"system": CPT, "values": ["70000"]}],
        "answer": {"covered": "covered", "pa-needed": "auth-needed"},
    }
    raw.update(fields)
    return raw


def _topics(*raws: dict[str, Any]) -> TopicSet:
    topics = TopicSet()
    for raw in raws:
        topics.add(compile_topic(raw, Path(f"{raw['id']}/topic.yaml")))
    return topics


SERVICE_AND_DRUG = _topics(
    _topic("knee-mri"),
    _topic("infliximab", codes=[{"system": RXNORM, "values": ["310994"]}]),
)
_counter = iter(range(10**6))


def _case(
    status: str,
    received: str,
    decided: str | None = None,
    *,
    priority: str = "standard",
    topics: tuple[str, ...] = ("knee-mri",),
    after: timedelta | None = None,
) -> ReviewCase:
    """A case received at `received`, decided at `decided` (or `after` its receipt)."""
    received_us = _us(received)
    decided_us = _us(decided) if decided else None
    if after is not None:
        decided_us = received_us + int(after / timedelta(microseconds=1))
    return ReviewCase(
        case_id=f"case-{next(_counter)}",
        request_id="request",
        claim_id="claim",
        claim_response_id="claim-response",
        status=status,
        priority=priority,
        received_us=received_us,
        due_us=received_us,
        trace={"items": [{"sequence": i + 1, "topic": t} for i, t in enumerate(topics)]},
        decided_us=decided_us,
        decided_by=None if decided_us is None else "reviewer",
    )


def test_an_empty_year_has_no_percentages_and_no_times_rather_than_a_division_by_zero() -> None:
    report = build_report([], SERVICE_AND_DRUG, YEAR)
    for metrics in (report.standard, report.expedited):
        assert metrics.determinations == 0
        assert metrics.approved.percent is None and metrics.denied.percent is None
        assert metrics.time_to_determination.average_hours is None
        assert metrics.time_to_determination.median_hours is None
    # the untracked elements stay 0 with their note, whatever the year holds
    assert report.standard.approved_after_appeal is not None
    assert report.standard.approved_after_appeal.percent == 0.0
    assert report.standard.approved_after_appeal.note is not None
    assert report.standard.approved_after_appeal.note.startswith("not tracked yet")
    assert report.extended_and_approved.to_json()["tracked"] is False
    page = render_markdown(report, "Test Plan")
    assert "| Approved (2), (6) | n/a | n/a |" in page
    assert "| Average time from request to decision (8), (9) | n/a | n/a |" in page
    assert report.to_json()["standard"]["approved"] == {"count": 0, "percent": None}


def test_which_cases_count_in_the_year() -> None:
    cases = [
        # determinations of 2025: approved (certified, partial included) and denied
        _case("approved", "2025-03-01T00:00:00", after=timedelta(hours=10)),
        _case("certified", "2025-03-02T00:00:00", "2025-03-02T00:00:00"),
        _case("partial", "2025-03-03T00:00:00", after=timedelta(hours=20)),
        _case("denied", "2025-03-04T00:00:00", after=timedelta(hours=30)),
        _case("not-certified", "2025-03-05T00:00:00", "2025-03-05T00:00:00"),
        # received in 2024, decided in 2025: a determination of 2025
        _case("approved", "2024-12-30T00:00:00", "2025-01-02T00:00:00"),
        # excluded and counted apart
        _case("cancelled", "2025-04-01T00:00:00", "2025-04-02T00:00:00"),
        _case("not-required", "2025-04-03T00:00:00", "2025-04-03T00:00:00"),
        _case("approved", "2025-04-04T00:00:00", after=timedelta(hours=1), topics=("infliximab",)),
        _case("pended", "2025-04-05T00:00:00", topics=("infliximab",)),
        # pending at the end of the year: undecided, or decided in 2026
        _case("pended", "2025-11-30T00:00:00"),
        _case("denied", "2025-12-31T23:00:00", "2026-01-01T01:00:00"),
        # outside 2025: decided in 2024, decided in 2026 after a 2024 receipt, pended since 2024
        _case("approved", "2024-06-01T00:00:00", "2024-06-02T00:00:00"),
        _case("approved", "2024-12-31T00:00:00", "2026-01-05T00:00:00"),
        _case("pended", "2024-12-31T23:59:59"),
        # a request for a service and a drug is a request for a service
        _case(
            "approved", "2025-05-01T00:00:00", after=timedelta(0), topics=("knee-mri", "infliximab")
        ),
        # an expedited one
        _case("approved", "2025-06-01T00:00:00", after=timedelta(hours=5), priority="expedited"),
    ]
    report = build_report(cases, SERVICE_AND_DRUG, YEAR)
    standard = report.standard
    assert standard.determinations == 7
    assert (standard.approved.count, standard.approved.percent) == (5, 71.4)
    assert standard.approved_in_part == 1
    assert (standard.denied.count, standard.denied.percent) == (2, 28.6)
    assert (standard.denied_administrative, standard.denied_on_review) == (1, 1)
    # hours: 10, 0, 20, 30, 0, 72, 0 -> mean 132 / 7 = 18.857..., median 10
    assert standard.time_to_determination.average_hours == 18.86
    assert standard.time_to_determination.median_hours == 10.0
    expedited = report.expedited
    assert (expedited.determinations, expedited.approved.percent, expedited.denied.percent) == (
        1,
        100.0,
        0.0,
    )
    assert expedited.time_to_determination.median_hours == 5.0
    assert expedited.approved_after_appeal is None  # element (4) is about standard requests
    assert report.excluded.to_json() == {
        "pending": 2,
        "cancelled": 1,
        "no_authorization_required": 1,
        "drugs": 2,
    }


def test_percentages_round_half_up_to_one_decimal_and_hours_to_two() -> None:
    assert [percent(1, 3), percent(2, 3), percent(1, 8), percent(1, 16)] == [
        33.3,
        66.7,
        12.5,
        6.3,  # 6.25: half up, not to even
    ]
    assert percent(0, 0) is None
    cases = [
        _case("approved", "2025-01-10T00:00:00", after=timedelta(seconds=18)),  # 0.005 h
        _case("approved", "2025-01-11T00:00:00", after=timedelta(seconds=1)),
    ]
    elapsed = build_report(cases, SERVICE_AND_DRUG, YEAR).standard.time_to_determination
    assert elapsed.median_hours == 0.0  # 9.5 s = 0.00264 h
    assert elapsed.average_hours == 0.0
    one = build_report(cases[:1], SERVICE_AND_DRUG, YEAR).standard.time_to_determination
    assert one.average_hours == one.median_hours == 0.01


def test_periods_are_whole_utc_days_both_ends_included() -> None:
    today = date(2026, 3, 15)
    assert period_of(None, None, None, today) == Period.calendar_year(2025)
    assert period_of("2024", None, None, today) == Period(date(2024, 1, 1), date(2024, 12, 31))
    custom = period_of(None, "2025-02-01", "2025-02-28", today)
    assert custom.start_us == _us("2025-02-01T00:00:00")
    assert custom.end_us == _us("2025-03-01T00:00:00")
    assert custom.contains(_us("2025-02-28T23:59:59"))
    assert not custom.contains(_us("2025-03-01T00:00:00"))
    assert custom.label == "2025-02-01 to 2025-02-28"
    assert Period.calendar_year(2025).label == "calendar year 2025"
    for args, field in [
        (("2025", "2025-01-01", None), "year"),
        (("MMXXV", None, None), "year"),
        ((None, "2025-01-01", None), "to"),
        ((None, None, "2025-01-01"), "from"),
        ((None, "2025-02-30", "2025-03-01"), "from"),
        ((None, "2025-03-01", "2025/03/02"), "to"),
        ((None, "2025-03-02", "2025-03-01"), "to"),
    ]:
        with pytest.raises(PeriodError) as raised:
            period_of(*args, today)
        assert raised.value.field == field, args


def test_element_1_lists_per_plan_what_needs_authorization() -> None:
    topics = _topics(
        # every plan but one, which needs no authorization
        _topic(
            "sleep-study",
            codes=[{"system": CPT, "ranges": [["95800", "95811"]], "values": ["95782"]}],
            **{"by-plan": {"GL-BRONZE": {"pa-needed": "no-auth"}}},
        ),
        # named plans: one excluded from the benefit, one conditional
        _topic(
            "spinal-fusion",
            plans=["GL-GOLD", "GL-SILVER", "GL-BRONZE"],
            **{
                "by-plan": {
                    "GL-SILVER": {"covered": "not-covered"},
                    "GL-BRONZE": {"pa-needed": "conditional"},
                },
                "exemptions": {"gold-card-npis": ["1234567893"]},
            },
        ),
        # no authorization unless a condition holds
        _topic(
            "ct-head",
            answer={"covered": "covered", "pa-needed": "no-auth"},
            conditions=[
                {
                    "name": "repeat-within-30-days",
                    "when": "true",
                    "then": {"pa-needed": "auth-needed"},
                }
            ],
        ),
        _topic("office-visit", answer={"covered": "covered", "pa-needed": "no-auth"}),
        _topic("infliximab", codes=[{"system": RXNORM, "values": ["310994"]}]),
    )
    listed = pa_items(topics)
    plans = {i.topic: [(p.plans, p.requirement) for p in i.plans] for i in listed.services}
    assert plans == {
        "ct-head": [("all plans", "conditional")],
        "sleep-study": [("all other plans", "required")],
        "spinal-fusion": [("GL-GOLD", "required"), ("GL-BRONZE", "conditional")],
    }
    assert [i.topic for i in listed.drugs] == ["infliximab"]
    by_id = {i.topic: i for i in listed.services}
    assert by_id["ct-head"].conditions == ("repeat-within-30-days",)
    assert by_id["spinal-fusion"].exemptions == ("gold-carded ordering providers",)
    assert by_id["sleep-study"].codes[0].describe() == "CPT 95782, 95800-95811"
    page = render_markdown(build_report([], topics, YEAR), "Test Plan")
    assert "- Prior authorization required: all other plans" in page
    assert "- Prior authorization required in some cases: GL-BRONZE" in page
    assert "- Required when: repeat-within-30-days" in page
    assert "## Drugs that require prior authorization" in page
    assert "Office Visit" not in page


def test_the_shipped_topics_list_lumbar_mri_and_bariatric_surgery() -> None:
    listed = pa_items(load_topics(SHIPPED))
    assert [i.title for i in listed.services] == ["Bariatric surgery", "MRI of the lumbar spine"]
    assert [i.topic for i in listed.drugs] == ["adalimumab"]
    (bariatric, _) = listed.services
    assert (
        bariatric.codes[0]
        .describe()
        .startswith(
            "CPT 43644 (Laparoscopic gastric bypass, Roux-en-Y (less than 150 cm)), 43645 ("
        )
    )
