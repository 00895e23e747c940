"""`GET /um/metrics` and `greenlight metrics`: the CMS-0057-F report of real review cases.

Every case is made by the real path, on a live server with the demo payer (SQLite and
PostgreSQL): PAS `$submit` opens it, `POST /um/cases/{id}/decision` decides the pended ones.
Its clock is then moved (the test rewrites `received_us` / `decided_us` in the database) to fixed
instants in and around 2025, so every figure of the report is known exactly; a case decided at
submission keeps its real elapsed time (0). The figures, the rule's elements:

    standard, decided in 2025: certified at submission (0 h), approved (60 h), partial (24 h),
        denied on review (72 h)              -> (2) 75.0 %, (3) 25.0 %, (8) mean 39.0 h,
                                                median (24 + 60) / 2 = 42.0 h
    expedited, decided in 2025: approved (30 h), approved (6 h), denied at submission (0 h)
                                             -> (6) 66.7 %, (7) 33.3 %, (9) mean 12.0 h,
                                                median 6.0 h
    pending at the end of 2025: one pended, one decided on 2026-01-01 (4 h after receipt)
    excluded: the kit's request as sent (no authorization required)
    outside 2025: certified at submission on 2024-12-31
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from app.pas.variants import variant
from app.store.db import create_database
from app.store.tables import review_cases
from app.um.deadlines import due_time
from tests.auth.smart_client import ClientKey, access_token
from tests.conftest import BACKENDS, DatabaseFactory, SettingsFactory
from tests.pas.conftest import (
    PasServer,
    kit,
    secured_pas_fixtures,
    start_pas_server,
)

PROJECT = Path(__file__).resolve().parents[2]
LEVEL_OF_SERVICE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-levelOfServiceCode"
)
DENIAL = {"code": "0U", "display": "Medical necessity criteria not met"}
HOUR = timedelta(hours=1)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def _standard(bundle: dict[str, Any]) -> dict[str, Any]:
    """The request as elective (X12 1338 E), a standard request, rather than urgent."""
    claim = bundle["entry"][0]["resource"]
    for extension in claim["extension"]:
        if extension["url"] == LEVEL_OF_SERVICE:
            extension["valueCodeableConcept"]["coding"][0]["code"] = "E"
    return bundle


@dataclass(frozen=True)
class Made:
    """A case made through the real path, its status there, and where its clock goes."""

    case: dict[str, Any]
    received: datetime
    elapsed: timedelta | None  # None: decided at submission, keep the real elapsed time


def _submit(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    response = pas.submit(bundle)
    assert response.status_code == 200, response.text
    return pas.case_of(response.json())


def _decided(pas: PasServer, case: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = pas.decide(case["id"], body)
    assert response.status_code == 200, response.text
    decided: dict[str, Any] = response.json()["case"]
    return decided


def _detail(pas: PasServer, case_id: str) -> dict[str, Any]:
    with pas.client() as client:
        response = client.get(f"/um/cases/{case_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _move(database_url: str, made: list[Made], real: dict[str, dict[str, Any]]) -> None:
    """Rewrite each case's clock: received at `made.received` (due as its priority says),
    decided `elapsed` later."""

    async def run() -> None:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.writer.begin() as conn:
                for m in made:
                    detail = real[m.case["id"]]
                    received = _us(m.received)
                    decided: int | None = None
                    if m.elapsed is not None:
                        decided = received + int(m.elapsed / timedelta(microseconds=1))
                    elif detail["decided_at"] is not None:
                        kept = _at(detail["decided_at"][:-1]) - _at(detail["received_at"][:-1])
                        decided = received + int(kept / timedelta(microseconds=1))
                    await conn.execute(
                        update(review_cases)
                        .where(review_cases.c.case_id == m.case["id"])
                        .values(
                            received_us=received,
                            due_us=_us(due_time(m.received, detail["priority"])),
                            decided_us=decided,
                        )
                    )
        finally:
            await database.dispose()

    asyncio.run(run())


@dataclass(frozen=True)
class Scenario:
    pas: PasServer
    statuses: dict[str, str]  # name -> the case's status as the real path left it
    elapsed_at_submission: dict[str, timedelta]  # name -> real decided_at - received_at


@pytest.fixture(scope="module", params=BACKENDS)
def scenario(
    request: pytest.FixtureRequest,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[Scenario]:
    with contextmanager(start_pas_server)(request.param, new_database_url, make_settings) as pas:
        approval = kit("2.0.1", "approval_pa_submit_request_payload")

        def pended(urgent: bool = False, name: str = "pend") -> dict[str, Any]:
            bundle = variant(name, approval)
            return _submit(pas, bundle if urgent else _standard(bundle))

        made: dict[str, Made] = {
            "certified": Made(
                _submit(pas, _standard(variant("approve-documented", approval))),
                _at("2025-02-03T09:00:00"),
                None,
            ),
            "approved": Made(
                _decided(pas, pended(), {"decision": "approve", "note": "criteria met"}),
                _at("2025-03-10T08:00:00"),
                60 * HOUR,
            ),
            "partial": Made(
                _decided(pas, pended(), {"decision": "partial"}),
                _at("2025-06-01T00:00:00"),
                24 * HOUR,
            ),
            "denied": Made(
                _decided(
                    pas,
                    pended(name="pend-short-therapy"),
                    {"decision": "deny", "reason": DENIAL},
                ),
                _at("2025-05-01T00:00:00"),
                72 * HOUR,
            ),
            "expedited-approved": Made(
                _decided(pas, pended(urgent=True), {"decision": "approve"}),
                _at("2025-07-01T00:00:00"),
                30 * HOUR,
            ),
            "expedited-approved-fast": Made(
                _decided(pas, pended(urgent=True), {"decision": "approve"}),
                _at("2025-08-15T12:00:00"),
                6 * HOUR,
            ),
            "expedited-not-certified": Made(
                _submit(pas, variant("deny-excluded", approval)),
                _at("2025-09-09T09:09:09"),
                None,
            ),
            "pending": Made(pended(), _at("2025-12-01T00:00:00"), None),
            "decided-next-year": Made(
                _decided(pas, pended(), {"decision": "approve"}),
                _at("2025-12-31T22:00:00"),
                4 * HOUR,
            ),
            "not-required": Made(_submit(pas, approval), _at("2025-04-01T00:00:00"), None),
            "last-year": Made(
                _submit(pas, _standard(variant("approve-gold-card", approval))),
                _at("2024-12-31T23:30:00"),
                None,
            ),
        }
        real = {m.case["id"]: _detail(pas, m.case["id"]) for m in made.values()}
        _move(pas.database_url, list(made.values()), real)
        statuses = {name: real[m.case["id"]]["status"] for name, m in made.items()}
        at_submission = {
            name: _at(real[m.case["id"]]["decided_at"][:-1])
            - _at(real[m.case["id"]]["received_at"][:-1])
            for name, m in made.items()
            if m.elapsed is None and real[m.case["id"]]["decided_at"] is not None
        }
        yield Scenario(pas, statuses, at_submission)


def _report(pas: PasServer, **params: str) -> dict[str, Any]:
    with pas.client() as client:
        response = client.get("/um/metrics", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    return found


def test_the_real_path_made_each_kind_of_case(scenario: Scenario) -> None:
    assert scenario.statuses == {
        "certified": "certified",
        "approved": "approved",
        "partial": "partial",
        "denied": "denied",
        "expedited-approved": "approved",
        "expedited-approved-fast": "approved",
        "expedited-not-certified": "not-certified",
        "pending": "pended",
        "decided-next-year": "approved",
        "not-required": "not-required",
        "last-year": "certified",
    }
    # decided at submission: no time elapsed between receipt and determination
    assert set(scenario.elapsed_at_submission) == {
        "certified",
        "expedited-not-certified",
        "not-required",
        "last-year",
    }
    assert all(e == timedelta(0) for e in scenario.elapsed_at_submission.values())


def test_the_2025_report_counts_each_determination_of_the_year(scenario: Scenario) -> None:
    report = _report(scenario.pas, year="2025")
    assert report["period"] == {"from": "2025-01-01", "to": "2025-12-31", "timezone": "UTC"}
    # elements (2), (3), (4), (8): standard requests
    assert report["standard"] == {
        "determinations": 4,
        "approved": {"count": 3, "percent": 75.0},
        "approved_in_part": 1,
        "denied": {"count": 1, "percent": 25.0},
        "denied_administrative": 0,
        "denied_on_review": 1,
        "approved_after_appeal": {
            "count": 0,
            "percent": 0.0,
            "tracked": False,
            "note": "not tracked yet: Greenlight has no appeal workflow; reported as 0",
        },
        "time_to_determination": {"average_hours": 39.0, "median_hours": 42.0},
    }
    # elements (6), (7), (9): expedited requests (the not-certified one was denied at once)
    assert report["expedited"] == {
        "determinations": 3,
        "approved": {"count": 2, "percent": 66.7},
        "approved_in_part": 0,
        "denied": {"count": 1, "percent": 33.3},
        "denied_administrative": 1,
        "denied_on_review": 0,
        "time_to_determination": {"average_hours": 12.0, "median_hours": 6.0},
    }
    # element (5): no extension workflow yet
    assert report["extended_and_approved"]["count"] == 0
    assert report["extended_and_approved"]["tracked"] is False
    assert report["extended_and_approved"]["note"].startswith("not tracked yet")
    assert report["excluded"] == {
        "pending": 2,
        "cancelled": 0,
        "no_authorization_required": 1,
        "drugs": 0,
    }


def test_element_1_lists_what_the_topics_require_authorization_for(scenario: Scenario) -> None:
    report = _report(scenario.pas, year="2025")
    listed = {
        i["topic"]: [(p["plans"], p["requirement"]) for p in i["plans"]]
        for i in report["items_requiring_prior_authorization"]
    }
    # bariatric surgery is excluded from the Silver HMO benefit: authorization on Gold only
    assert listed == {
        "bariatric-surgery": [("GL-GOLD-PPO", "required")],
        "lumbar-mri": [("GL-GOLD-PPO", "required"), ("GL-SILVER-HMO", "required")],
    }
    (lumbar,) = (
        i for i in report["items_requiring_prior_authorization"] if i["topic"] == "lumbar-mri"
    )
    assert [c["code"] for c in lumbar["codes"][0]["codes"]] == ["72148", "72149", "72158"]
    assert lumbar["exemptions"] == ["gold-carded ordering providers"]
    assert [d["topic"] for d in report["drugs_requiring_prior_authorization"]] == ["adalimumab"]


def test_other_periods_see_the_cases_decided_in_them(scenario: Scenario) -> None:
    last_year = _report(scenario.pas, year="2024")
    assert last_year["standard"]["determinations"] == 1
    assert last_year["standard"]["approved"] == {"count": 1, "percent": 100.0}
    assert last_year["standard"]["time_to_determination"] == {
        "average_hours": 0.0,
        "median_hours": 0.0,
    }
    # no expedited determination: no percentage and no time, rather than a division by zero
    assert last_year["expedited"]["determinations"] == 0
    assert last_year["expedited"]["approved"] == {"count": 0, "percent": None}
    assert last_year["expedited"]["time_to_determination"] == {
        "average_hours": None,
        "median_hours": None,
    }
    january = _report(scenario.pas, **{"from": "2026-01-01", "to": "2026-01-31"})
    assert january["standard"]["determinations"] == 1
    assert january["standard"]["time_to_determination"]["median_hours"] == 4.0
    assert january["excluded"]["pending"] == 0
    # the last day of a from/to period is included
    new_years_eve = _report(scenario.pas, **{"from": "2025-12-31", "to": "2025-12-31"})
    assert new_years_eve["standard"]["determinations"] == 0
    assert new_years_eve["excluded"]["pending"] == 1


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        ({"year": "25"}, "year"),
        ({"year": "2025", "from": "2025-01-01", "to": "2025-02-01"}, "year"),
        ({"from": "2025-01-01"}, "to"),
        ({"to": "2025-01-01"}, "from"),
        ({"from": "2025-13-01", "to": "2025-12-31"}, "from"),
        ({"from": "20250101", "to": "2025-12-31"}, "from"),
        ({"from": "2025-06-01", "to": "2025-05-31"}, "to"),
    ],
)
def test_a_bad_period_answers_400_naming_the_parameter(
    scenario: Scenario, params: dict[str, str], expression: str
) -> None:
    with scenario.pas.client() as client:
        response = client.get("/um/metrics", params=params)
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["code"] == "invalid"
    assert issue["expression"] == [expression]


def _cli(pas: PasServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GREENLIGHT_DATABASE_URL": pas.database_url,
        "GREENLIGHT_DATA_DIR": str(pas.server.settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "metrics", *args],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_prints_the_same_report_as_json_and_as_markdown(scenario: Scenario) -> None:
    as_json = _cli(scenario.pas, "--year", "2025")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == _report(scenario.pas, year="2025")
    page = _cli(scenario.pas, "--year", "2025", "--format", "markdown")
    assert page.returncode == 0, page.stderr
    lines = page.stdout.splitlines()
    assert lines[0] == "# Greenlight Health Plan: prior authorization metrics, calendar year 2025"
    assert "| Approved (2), (6) | 75.0% (3 requests) | 66.7% (2 requests) |" in lines
    assert "| Median time from request to decision (8), (9) | 42.00 hours | 6.00 hours |" in lines
    assert "### MRI of the lumbar spine" in lines
    refused = _cli(scenario.pas, "--year", "2025", "--from", "2025-01-01", "--to", "2025-01-02")
    assert refused.returncode == 2
    assert "year, or from and to" in refused.stderr


# --- the reviewer role, with authentication on ----------------------------------------------


keys, secured = secured_pas_fixtures(
    {
        "reviewer": ["system/ClaimResponse.cruds"],
        "submitter": ["system/Claim.c", "system/ClaimResponse.cruds"],
    },
    um_reviewers="reviewer",
)


def test_only_a_reviewer_may_read_the_metrics(
    secured: PasServer, keys: dict[str, ClientKey]
) -> None:
    submitter = access_token(
        secured.server, keys["submitter"], "system/Claim.c system/ClaimResponse.u"
    )
    reviewer = access_token(secured.server, keys["reviewer"], "system/ClaimResponse.u")
    with secured.client() as client:
        assert client.get("/um/metrics", params={"year": "2025"}).status_code == 401
        refused = client.get(
            "/um/metrics", params={"year": "2025"}, headers={"Authorization": f"Bearer {submitter}"}
        )
        assert refused.status_code == 403
        assert refused.json()["issue"][0]["code"] == "forbidden"
        allowed = client.get(
            "/um/metrics", params={"year": "2025"}, headers={"Authorization": f"Bearer {reviewer}"}
        )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["standard"]["determinations"] == 0
