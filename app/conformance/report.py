"""`make conformance-report`: per IG and verb, how many server-side statements tests prove.

    python -m app.conformance.report --run-tests          # run the marked tests, then report
    python -m app.conformance.report --results var/requirements-results.json

Inputs: the IGs' computable requirement lists (`../shared/spec/requirements/*.json`, FHIR
`Requirements` resources whose statements carry a key, a verb and an actor), and the JSON written
by the pytest plugin `tests.support.requirements_plugin` for tests marked
`@pytest.mark.requirement(ig, key)`.

Counting is deliberately strict: only statements of the server-side actors count (CRD
`crd-server`, DTR `dtr-server`, PAS `payer`; a statement naming no actor counts too), and a
statement is *proven* only when at least one test claiming it passed and none failed. Skipped or
failing tests prove nothing. The verb of a statement is the strongest it declares (SHALL >
SHOULD > MAY, negations included), read from the requirement text when it declares none.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_REQUIREMENTS = PROJECT.parent / "shared" / "spec" / "requirements"
DEFAULT_RESULTS = PROJECT / "var" / "requirements-results.json"

SERVER_ACTORS = {"CRD": "crd-server", "DTR": "dtr-server", "PAS": "payer"}
VERBS = ("SHALL", "SHOULD", "MAY")
ACTOR_EXT = "http://hl7.org/fhir/tools/StructureDefinition/requirements-statementactor"
_BOLD_VERB = re.compile(r"\*\*(SHALL NOT|SHALL|SHOULD NOT|SHOULD|MAY)\*\*")


@dataclass(frozen=True)
class Statement:
    ig: str
    key: str
    verb: str | None
    actors: tuple[str, ...]
    text: str


@dataclass
class IgTally:
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERBS, 0))
    proven: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERBS, 0))
    unspecified: int = 0


def ig_of(requirements: dict[str, Any]) -> str | None:
    url = str(requirements.get("url", ""))
    for ig in SERVER_ACTORS:
        if f"davinci-{ig.lower()}" in url:
            return ig
    return None


def verb_of(conformance: Iterable[str], text: str) -> str | None:
    """The strongest verb: declared, or else the first bold verb of the text."""
    declared = [str(c).upper().replace("-NOT", "") for c in conformance]
    if not declared:
        declared = [m.split()[0] for m in _BOLD_VERB.findall(text)]
    for verb in VERBS:
        if verb in declared:
            return verb
    return None


def load_statements(directory: Path) -> list[Statement]:
    statements: list[Statement] = []
    for path in sorted(directory.glob("*.json")):
        requirements = json.loads(path.read_text(encoding="utf-8"))
        ig = ig_of(requirements)
        if ig is None:
            continue
        for raw in requirements.get("statement", []):
            actors = tuple(
                str(e.get("valueId")) for e in raw.get("extension", []) if e.get("url") == ACTOR_EXT
            )
            text = str(raw.get("requirement", ""))
            statements.append(
                Statement(
                    ig, str(raw["key"]), verb_of(raw.get("conformance", []), text), actors, text
                )
            )
    return statements


def server_side(statements: Iterable[Statement]) -> list[Statement]:
    return [s for s in statements if not s.actors or SERVER_ACTORS[s.ig] in s.actors]


def outcomes(results: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(ig, key) -> outcomes of the tests claiming it."""
    claimed: dict[tuple[str, str], list[str]] = {}
    for test in results.get("tests", []):
        for ig, key in test.get("requirements", []):
            claimed.setdefault((str(ig), str(key)), []).append(str(test.get("outcome")))
    return claimed


def is_proven(claims: Sequence[str]) -> bool:
    return "passed" in claims and "failed" not in claims


def build_report(statements: list[Statement], results: dict[str, Any]) -> str:
    claims = outcomes(results)
    relevant = server_side(statements)
    tallies = {ig: IgTally() for ig in SERVER_ACTORS}
    unproven_shall: list[Statement] = []
    for statement in relevant:
        tally = tallies[statement.ig]
        proven = is_proven(claims.get((statement.ig, statement.key), []))
        if statement.verb is None:
            tally.unspecified += 1
            continue
        tally.total[statement.verb] += 1
        if proven:
            tally.proven[statement.verb] += 1
        elif statement.verb == "SHALL":
            unproven_shall.append(statement)

    lines = ["IG conformance statements of the server-side actors proven by passing tests", ""]
    header = f"{'IG':4} {'actor':11}" + "".join(f" {v + ' proven/total':>20}" for v in VERBS)
    lines += [header + f" {'no verb':>8}", "-" * (len(header) + 9)]
    for ig, tally in tallies.items():
        cells = "".join(f" {f'{tally.proven[v]}/{tally.total[v]}':>20}" for v in VERBS)
        lines.append(f"{ig:4} {SERVER_ACTORS[ig]:11}{cells} {tally.unspecified:>8}")
    all_proven = sum(sum(t.proven.values()) for t in tallies.values())
    all_total = sum(sum(t.total.values()) for t in tallies.values())
    lines += ["", f"proven: {all_proven} of {all_total} statements with a verb", ""]

    known = {(s.ig, s.key) for s in statements}
    server_keys = {(s.ig, s.key) for s in relevant}
    failing = sorted(k for k, v in claims.items() if "failed" in v)
    unknown = sorted(k for k in claims if k not in known)
    client_only = sorted(k for k in claims if k in known and k not in server_keys)
    if failing:
        lines.append("FAILING tests claim: " + ", ".join(f"{ig} {key}" for ig, key in failing))
    if unknown:
        lines.append("Unknown statement keys claimed: " + ", ".join(f"{i} {k}" for i, k in unknown))
    if client_only:
        lines.append(
            "Claimed but not server-side (not counted): "
            + ", ".join(f"{i} {k}" for i, k in client_only)
        )
    lines.append(f"Unproven SHALL statements ({len(unproven_shall)}):")
    for s in sorted(unproven_shall, key=lambda s: (s.ig, _key_order(s.key))):
        text = " ".join(s.text.replace("**", "").split())
        lines.append(f"  {s.ig} {s.key:12} {text[:110]}{'...' if len(text) > 110 else ''}")
    return "\n".join(lines)


def _key_order(key: str) -> tuple[str, int]:
    prefix, _, number = key.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (key, 0)


def run_tests(results: Path) -> int:
    """Run the requirement-marked tests with the recording plugin; pytest's exit status."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.support.requirements_plugin",
        "-m",
        "requirement",
        "--requirements-json",
        str(results),
    ]
    status = subprocess.call(command, cwd=PROJECT)  # noqa: S603 - fixed argv, no shell
    return 0 if status == 5 else status  # 5: nothing marked yet


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.conformance.report", description=__doc__)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS)
    parser.add_argument("--run-tests", action="store_true", help="run the marked tests first")
    args = parser.parse_args(argv)
    status = run_tests(args.results) if args.run_tests else 0
    results: dict[str, Any] = {"tests": []}
    if args.results.is_file():
        results = json.loads(args.results.read_text(encoding="utf-8"))
    elif not args.run_tests:
        print(f"no results at {args.results}: run with --run-tests", file=sys.stderr)
        return 2
    statements = load_statements(args.requirements)
    if not statements:
        print(f"no requirement statements found in {args.requirements}", file=sys.stderr)
        return 2
    print(build_report(statements, results))
    return status


if __name__ == "__main__":
    sys.exit(main())
