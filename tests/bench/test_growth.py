"""The grown-database CRD bench (`bench.growth`): its request template, its report, and one
small run against two real Greenlight servers on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from bench import growth
from bench.harness import parse_args, patient_requests
from bench.loadgen import fill_request
from tests.bench.runs import measured_run


def test_patient_request_template_fills_to_a_patient_with_that_member_id() -> None:
    head, body = patient_requests("127.0.0.1", 8000, "tok")
    request = fill_request(head, body, 0, (b"GROW-000000001-ab12cd34",))
    request_head, _, request_body = request.partition(b"\r\n\r\n")
    assert request_head.startswith(b"POST /fhir/Patient HTTP/1.1\r\n")
    assert b"Authorization: Bearer tok" in request_head
    assert f"Content-Length: {len(request_body)}".encode("ascii") in request_head
    patient = orjson.loads(request_body)
    assert patient["resourceType"] == "Patient"
    assert patient["identifier"][0]["value"] == "GROW-000000001-ab12cd34"
    assert patient["identifier"][0]["system"] == "http://example.org/payer/member-id"


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in {text!r}"
    return int(found[1].replace(",", ""))


def _growth() -> growth.Growth:
    rows = {"Patient": 10, "AuditEvent": 5, "search_index": 40}
    grown = growth.Footprint(rss_mb=180.4, database_mb=150.2, wal_mb=280.0)
    fresh = growth.Footprint(rss_mb=120.0, database_mb=6.0, wal_mb=4.1)
    return growth.Growth(10, 0, 1.0, rows, rows, False, grown, fresh)


def test_report_gives_each_round_and_judges_the_median_ratios() -> None:
    runs = [
        measured_run(growth.GROWN, 1, 20.0, 1.30),
        measured_run(growth.FRESH, 1, 20.0, 1.25),
        measured_run(
            growth.GROWN, 2, 30.0, 1.80
        ),  # one slow round moves the median by one place only
        measured_run(growth.FRESH, 2, 20.0, 1.20),
        measured_run(growth.GROWN, 3, 21.0, 1.26),
        measured_run(growth.FRESH, 3, 20.0, 1.20),
    ]
    report = growth.render(runs, _growth(), {"command": "test"})
    assert report.count("\n| 1 | 20.00 | 20.00 | 1.00x |") == 1
    assert "| 2 | 30.00 | 20.00 | 1.50x |" in report
    assert "| 1.800 | 1.200 | 1.50x | 0 |" in report
    assert "p50 **1.05x**, CPU per call **1.05x**" in report  # medians of 1.00/1.50/1.05, 1.04/..
    assert "**met**" in report
    assert "15 resources (10 Patient, 5 AuditEvent...), 40 search-index rows" in report
    assert (
        "the processes that served the growth, after the rounds: grown 180 MB resident, "
        "database 150 MB, WAL 280 MB; fresh 120 MB resident, database 6 MB, WAL 4 MB"
    ) in report


def test_report_says_not_met_when_the_grown_server_is_dearer() -> None:
    runs = [measured_run(growth.GROWN, 1, 24.0, 1.5), measured_run(growth.FRESH, 1, 20.0, 1.2)]
    report = growth.render(runs, _growth(), {})
    assert "p50 **1.20x**, CPU per call **1.25x**" in report
    assert "**NOT met**" in report


def test_small_run_grows_one_server_restarts_both_and_measures_both(tmp_path: Path) -> None:
    output = tmp_path / "growth.md"
    code = growth.main(
        [
            "--patients=60",
            "--orders=30",
            "--rounds=1",
            "--interleave=0.25",
            "--warmup=0.25",
            "--duration=0.5",
            "--restart",
            f"--output={output}",
        ]
    )
    assert code == 0
    report = output.read_text(encoding="utf-8")
    grown_line = next(line for line in report.splitlines() if line.startswith("- **growth**"))
    assert "60 Patients and 30 new orders" in grown_line
    grown, fresh = grown_line.split("the grown database held")[1].split("the fresh one")
    patients = [_count(r"([\d,]+) Patient", side) for side in (grown, fresh)]
    assert patients[0] - patients[1] == 60  # both hold the demo payer's and the seed Patients
    round_rows = [line for line in report.splitlines() if line.startswith("| 1 |")]
    assert len(round_rows) == 1
    assert round_rows[0].endswith("| 0 |")  # no errors: the restarted servers answered
    processes = next(line for line in report.splitlines() if line.startswith("- **processes**"))
    assert "both servers restarted after the growth" in processes
    resident = [_count(r"([\d,]+) MB resident", side) for side in processes.split("; fresh")]
    assert all(megabytes > 20 for megabytes in resident)  # a live Python server each


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenarios=patient-read", "--grow-orders=10"], "--grow-orders needs a crd scenario"),
        (["--no-auth", "--grow-patients=10"], "--grow-patients needs auth on"),
        (["--grow-patients=-1"], "must be at least 0"),
    ],
)
def test_bench_refuses_growth_it_cannot_do(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err
