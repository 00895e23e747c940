"""The project's Node CQL tools (`tools/cql`) driven from tests: translation with the official
cqframework translator and execution with cql-execution + cql-exec-fhir, as a DTR client would.

They need `npm ci --prefix tools/cql` (the Makefile's `make test` runs it). Without the Node
packages these tests skip on a workstation and fail in CI (CI=true), like the PostgreSQL cases.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.dtr.content import DtrContent, expand, load_content
from tests.dtr.patients import TODAY

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "cql"
CONTENT = ROOT / "questionnaires"
SHARED = CONTENT / "_shared"


def node_ready() -> None:
    """Skip (fail in CI) unless node and the locked Node packages are installed."""
    problem = None
    if shutil.which("node") is None:
        problem = "node is not installed"
    elif not (TOOLS / "node_modules" / "cql-execution").is_dir():
        problem = "the CQL tools are not installed: run `npm ci --prefix tools/cql`"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def _node(script: str, args: list[str], payload: Any | None = None) -> bytes:
    result = subprocess.run(
        ["node", str(TOOLS / script), *args],
        input=orjson.dumps(payload) if payload is not None else None,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"node {script} failed ({result.returncode}):\n{result.stderr.decode()[-4000:]}"
        )
    return result.stdout


def check_translation(files: list[Path]) -> subprocess.CompletedProcess[bytes]:
    """`translate.mjs --check`: exit 0 when every committed ELM equals a fresh translation."""
    return subprocess.run(
        ["node", str(TOOLS / "translate.mjs"), "--check", "--path", str(SHARED), *map(str, files)],
        capture_output=True,
        timeout=300,
        check=False,
    )


def translate_sources(sources: dict[str, str], names: list[str]) -> dict[str, Any]:
    """Translate CQL given as text (library name -> CQL); returns {"elm": ..., "errors": ...}."""
    loaded: dict[str, Any] = orjson.loads(
        _node("translate.mjs", ["--stdin"], {"sources": sources, "translate": names})
    )
    return loaded


def content() -> DtrContent:
    return load_content(CONTENT)


def execute(
    main: str,
    cases: dict[str, dict[str, Any]],
    *,
    libraries: dict[str, Any] | None = None,
    valuesets: list[dict[str, Any]] | None = None,
    fhir_version: str = "4.0.1",
    expressions: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run library `main` (and everything it includes) over each case's patient Bundle.

    Libraries and value sets default to the payer's published content, value sets expanded as a
    DTR client receives them in a package."""
    published = content()
    if libraries is None:
        libraries = {lib.name: lib.elm for lib in published.libraries.values()}
    if valuesets is None:
        day = date.fromisoformat(TODAY[:10])
        valuesets = [expand(vs, day) for vs in published.valuesets.values()]
    request: dict[str, Any] = {
        "libraries": libraries,
        "main": main,
        "fhirVersion": fhir_version,
        "valueSets": valuesets,
        "executionDateTime": TODAY,
        "cases": [{"id": name, "bundle": bundle} for name, bundle in cases.items()],
    }
    if expressions is not None:
        request["expressions"] = expressions
    results: dict[str, dict[str, Any]] = orjson.loads(_node("execute.mjs", [], request))
    return results
