"""`make conformance-report`: the requirements plugin and the report built from its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.conformance.report import (
    DEFAULT_REQUIREMENTS,
    Statement,
    build_report,
    load_statements,
    server_side,
    verb_of,
)

PROJECT = Path(__file__).resolve().parents[2]


def test_verbs_come_from_the_declaration_or_the_text() -> None:
    assert verb_of(["SHALL", "MAY"], "") == "SHALL"
    assert verb_of(["SHOULD-NOT"], "") == "SHOULD"
    assert verb_of([], "Servers **SHALL NOT** depend on it") == "SHALL"
    assert verb_of([], "Servers **MAY** do it") == "MAY"
    assert verb_of([], "no verb here") is None


def test_the_shared_requirement_lists_load() -> None:
    statements = load_statements(DEFAULT_REQUIREMENTS)
    by_ig = {ig: [s for s in statements if s.ig == ig] for ig in ("CRD", "DTR", "PAS")}
    assert all(by_ig.values())
    server = server_side(statements)
    keys = {(s.ig, s.key) for s in server}
    assert ("PAS", "spec-13") in keys  # payer
    assert ("PAS", "spec-52") in keys  # no actor named: counted
    assert ("PAS", "ainfo-4") not in keys  # client only
    assert ("DTR", "spec-142") not in keys  # dtr-client only
    assert all(s.verb in ("SHALL", "SHOULD", "MAY", None) for s in server)


def test_only_passing_claims_prove_statements() -> None:
    statements = [
        Statement("PAS", "spec-1", "SHALL", ("payer",), "Payers **SHALL** do one."),
        Statement("PAS", "spec-2", "SHALL", ("payer",), "Payers **SHALL** do two."),
        Statement("PAS", "spec-3", "SHOULD", ("payer",), "Payers **SHOULD** do three."),
        Statement("PAS", "spec-4", "SHALL", ("client",), "Clients **SHALL** do four."),
        Statement("CRD", "hook-1", "MAY", ("crd-server",), "Servers **MAY** do five."),
    ]
    results = {
        "tests": [
            {"nodeid": "a", "requirements": [["PAS", "spec-1"]], "outcome": "passed"},
            {"nodeid": "b", "requirements": [["PAS", "spec-2"]], "outcome": "passed"},
            {"nodeid": "c", "requirements": [["PAS", "spec-2"]], "outcome": "failed"},
            {"nodeid": "d", "requirements": [["PAS", "spec-3"]], "outcome": "skipped"},
            {
                "nodeid": "e",
                "requirements": [["PAS", "spec-4"], ["PAS", "nope-9"]],
                "outcome": "passed",
            },
            {"nodeid": "f", "requirements": [["CRD", "hook-1"]], "outcome": "passed"},
        ]
    }
    report = build_report(statements, results)
    pas = next(line for line in report.splitlines() if line.startswith("PAS "))
    assert pas.split()[2:5] == ["1/2", "0/1", "0/0"]
    crd = next(line for line in report.splitlines() if line.startswith("CRD "))
    assert crd.split()[2:5] == ["0/0", "0/0", "1/1"]
    assert "FAILING tests claim: PAS spec-2" in report
    assert "Unknown statement keys claimed: PAS nope-9" in report
    assert "Claimed but not server-side (not counted): PAS spec-4" in report
    assert (
        "Unproven SHALL statements (1):" in report and "PAS spec-2" in report.split("Unproven")[1]
    )


def _pytest(tmp_path: Path, body: str, *extra: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_claims.py"
    test_file.write_text(body, encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.support.requirements_plugin",
        "--rootdir",
        str(tmp_path),
        "-c",
        str(tmp_path / "pytest.ini"),
        str(test_file),
        *extra,
    ]
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    requirement(ig, key): proves an IG statement\n", encoding="utf-8"
    )
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False)


def test_plugin_records_outcomes(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    body = (
        "import pytest\n\n"
        "@pytest.mark.requirement('PAS', 'spec-13')\ndef test_ok(): pass\n\n"
        "@pytest.mark.requirement('PAS', 'spec-14')\n@pytest.mark.requirement('DTR', 'oper-10')\n"
        "def test_bad(): assert False\n\n"
        "@pytest.mark.requirement('CRD', 'hook-9')\ndef test_skip(): pytest.skip('later')\n\n"
        "def test_unmarked(): pass\n"
    )
    run = _pytest(tmp_path, body, "--requirements-json", str(results))
    assert run.returncode == 1, run.stdout + run.stderr
    records = {r["nodeid"].split("::")[1]: r for r in json.loads(results.read_text())["tests"]}
    assert records["test_ok"]["outcome"] == "passed"
    assert records["test_bad"]["outcome"] == "failed"
    assert records["test_bad"]["requirements"] == [
        ["DTR", "oper-10"],
        ["PAS", "spec-14"],
    ] or records["test_bad"]["requirements"] == [["PAS", "spec-14"], ["DTR", "oper-10"]]
    assert records["test_skip"]["outcome"] == "skipped"
    assert "test_unmarked" not in records


def test_plugin_rejects_malformed_markers(tmp_path: Path) -> None:
    body = "import pytest\n\n@pytest.mark.requirement('PAS')\ndef test_x(): pass\n"
    run = _pytest(tmp_path, body)
    assert run.returncode != 0
    assert "use @pytest.mark.requirement(ig, key)" in run.stdout + run.stderr
    body = "import pytest\n\n@pytest.mark.requirement('HRex', 'sec-1')\ndef test_x(): pass\n"
    assert "ig must be one of" in (lambda r: r.stdout + r.stderr)(_pytest(tmp_path, body))
