"""Pytest plugin: which IG requirement statements passing tests prove.

Load it with `-p tests.support.requirements_plugin` (as `make conformance-report` does) or from
`pytest_plugins` in tests/conftest.py. It

- checks every `@pytest.mark.requirement(ig, key)` when tests are collected: `ig` is CRD, DTR or
  PAS and `key` a statement key such as `spec-13`, else the run stops with a usage error;
- with `--requirements-json PATH`, writes one record per requirement-marked test: its node id,
  the `(ig, key)` pairs it claims and its outcome (`passed`, `failed`, `skipped` or `not-run`; a
  failure in setup or teardown counts as failed). `app.conformance.report` turns that into the
  conformance table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

IGS = ("CRD", "DTR", "PAS")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+$")


def requirements_of(item: pytest.Item) -> list[tuple[str, str]]:
    """The `(ig, key)` pairs an item claims to prove (malformed markers are a usage error)."""
    claimed: list[tuple[str, str]] = []
    for marker in item.iter_markers("requirement"):
        if len(marker.args) != 2 or marker.kwargs:
            raise pytest.UsageError(
                f"{item.nodeid}: use @pytest.mark.requirement(ig, key), got {marker.args!r}"
            )
        ig, key = marker.args
        if ig not in IGS or not isinstance(key, str) or not _KEY.match(key):
            raise pytest.UsageError(
                f"{item.nodeid}: requirement({ig!r}, {key!r}): ig must be one of {IGS} and key "
                "an IG statement key such as 'spec-13'"
            )
        claimed.append((ig, key))
    return claimed


class RequirementsRecorder:
    """Collects the outcome of every requirement-marked test of the session."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.records: dict[str, dict[str, Any]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            claimed = requirements_of(item)
            if claimed:
                self.records[item.nodeid] = {
                    "nodeid": item.nodeid,
                    "requirements": [list(pair) for pair in claimed],
                    "outcome": "not-run",
                }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            return
        if report.failed:
            record["outcome"] = "failed"
        elif report.skipped and record["outcome"] != "failed":
            record["outcome"] = "skipped"
        elif report.when == "call" and report.passed and record["outcome"] == "not-run":
            record["outcome"] = "passed"

    def pytest_sessionfinish(self) -> None:
        if not self.target:
            return
        path = Path(self.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        records = [self.records[nodeid] for nodeid in sorted(self.records)]
        path.write_bytes(orjson.dumps({"tests": records}, option=orjson.OPT_INDENT_2))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenlight requirements")
    group.addoption(
        "--requirements-json",
        metavar="PATH",
        default=None,
        help="write the outcomes of requirement-marked tests to PATH (JSON)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("greenlight-requirements"):
        recorder = RequirementsRecorder(config.getoption("--requirements-json"))
        config.pluginmanager.register(recorder, "greenlight-requirements")
