"""Does a CRD call cost more on a grown database? Two Greenlights, one grown, measured in turn.

    python -m bench.growth [--patients N] [--orders N] [--rounds R] [--interleave S]
        [--warmup S] [--duration S] [--concurrency C] [--restart] [--output FILE] [--keep]

A payer's server is never fresh, while `python -m bench --fresh-servers` measures new ones. Here
two Greenlight servers are set up as `python -m bench` sets up its CRD target (SQLite in a
temporary directory, demo payer loaded, the bench EHR's ES384 key trusted, auth on), and one of
them is grown through its own APIs (`bench.harness.grow`): `--patients` Patient creates
(`patient-create`'s body, each with its own member identifier) and `--orders`
`crd-order-sign-new` calls (each a new coverage assertion, decision, AuditEvent and `jti`
record), 16 at a time, every answer checked. Then `crd-order-sign` drives both in alternating
slices (`bench.interleave`: one generator, one target at a time), `--rounds` times, the grown
one first in odd rounds and the fresh one in even rounds. Both answer the same calls in each
round, so only what the grown one holds differs, and both see the same machine: a slow phase of
this shared machine slows both sides of a slice pair alike. With `--restart` both servers are
restarted after the growth (same command, port and database), so that the two processes are new
and only their databases differ: it tells what a grown database costs from what a long-lived
process costs.

Reported per round: p50, p99 and server CPU per call of each, grown / fresh; then the medians
of the ratios, judged against `LIMIT` (a grown server must keep the margin a fresh one has to
the CRD target of p50 within 1.5x of the bare app: ~1.33x measured, 1.33 x 1.1 < 1.5), and each
server's resident memory and database and WAL file sizes after the rounds.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Instance, Run, group_rss_mb, grow
from bench.pair import (
    Setting,
    add_load_options,
    check_load_options,
    measure_round,
    ratio_table,
    run_and_report,
)
from bench.scenarios import SCENARIOS

#: The grown server's median p50 and CPU per call may be at most this many times the fresh one's.
LIMIT = 1.1
GROWN = "greenlight (grown)"
FRESH = "greenlight (fresh)"


@dataclass(frozen=True)
class Growth:
    """What the grown server was given before the rounds, and what each database held after."""

    patients: int
    orders: int
    seconds: float
    grown_rows: dict[str, int]
    fresh_rows: dict[str, int]
    restarted: bool
    grown_footprint: Footprint
    fresh_footprint: Footprint


@dataclass(frozen=True)
class Footprint:
    """A server's resident memory and its SQLite files' sizes, after the rounds."""

    rss_mb: float
    database_mb: float
    wal_mb: float

    def describe(self) -> str:
        return (
            f"{self.rss_mb:.0f} MB resident, database {self.database_mb:.0f} MB, "
            f"WAL {self.wal_mb:.0f} MB"
        )


def footprint(instance: Instance) -> Footprint:
    """`instance`'s resident memory (its process group) and database and WAL file sizes."""

    def megabytes(path: Path) -> float:
        return path.stat().st_size / 1e6 if path.exists() else 0.0

    database = instance.home / "bench.db"
    return Footprint(
        group_rss_mb(instance.server.process.pid),
        megabytes(database),
        megabytes(database.with_name(database.name + "-wal")),
    )


def database_rows(instance: Instance) -> dict[str, int]:
    """Rows a server's SQLite database holds: resources by type (AuditEvents in their own table),
    and search-index rows."""
    connection = sqlite3.connect(f"file:{instance.home / 'bench.db'}?mode=ro", uri=True)
    try:
        counted = connection.execute(
            "SELECT resource_type, count(*) FROM resources GROUP BY resource_type "
            "UNION ALL SELECT 'AuditEvent', count(*) FROM audit_events"
        ).fetchall()
        (index_rows,) = connection.execute("SELECT count(*) FROM search_index").fetchone()
    finally:
        connection.close()
    rows: dict[str, int] = {}
    for kind, count in counted:
        rows[str(kind)] = rows.get(str(kind), 0) + int(count)
    return {**rows, "search_index": int(index_rows)}


def _describe_rows(rows: dict[str, int]) -> str:
    resources = sum(count for kind, count in rows.items() if kind != "search_index")
    largest = sorted(
        ((count, kind) for kind, count in rows.items() if kind != "search_index"), reverse=True
    )[:3]
    parts = ", ".join(f"{count:,} {kind}" for count, kind in largest)
    return f"{resources:,} resources ({parts}...), {rows['search_index']:,} search-index rows"


def render(runs: list[Run], growth: Growth, facts: dict[str, str]) -> str:
    """The report: facts, a row per round, the medians and the verdict."""
    processes = (
        "both servers restarted after the growth (new processes on the databases as they were left)"
        if growth.restarted
        else "the processes that served the growth"
    )
    out = ["# Greenlight benchmark: a CRD call on a grown database", ""]
    out += [f"- **{key}**: {value}" for key, value in facts.items()]
    out += [
        f"- **growth**: {growth.patients:,} Patients and {growth.orders:,} new orders in "
        f"{growth.seconds:.0f}s; after the rounds the grown database held "
        f"{_describe_rows(growth.grown_rows)}, the fresh one {_describe_rows(growth.fresh_rows)}",
        f"- **processes**: {processes}, after the rounds: grown "
        f"{growth.grown_footprint.describe()}; fresh {growth.fresh_footprint.describe()}",
        "",
        *ratio_table(runs, GROWN, FRESH, ("grown", "fresh"), LIMIT),
        "",
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="Patients to create")
    parser.add_argument("--orders", type=int, default=20_000, help="new orders to answer (CRD)")
    add_load_options(parser, rounds=4, output="crd-growth.md")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="restart both servers after the growth: only the databases differ, not the processes",
    )
    args = parser.parse_args(argv)
    if args.patients < 0 or args.orders < 0:
        parser.error("--patients and --orders must be at least 0")
    check_load_options(parser, args, ready_timeout=60.0)
    return args


def run(args: argparse.Namespace, work: Path) -> str:
    setting = Setting.new(work)
    grown = setting.start(args, work, GROWN)
    fresh = setting.start(args, work, FRESH)
    load = setting.load
    seconds = grow(grown, load.signer, args.patients, args.orders, load.pools, setting.env)
    print(f"grown in {seconds:.0f}s", flush=True)
    if args.restart:
        for instance in (grown, fresh):
            print(f"restarting {instance.server.name}", flush=True)
            instance.server.restart("/fhir/metadata", args.ready_timeout)
    runs: list[Run] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", flush=True)
        runs += measure_round(args, setting, (grown, fresh), [SCENARIOS["crd-order-sign"]], number)
    growth = Growth(
        args.patients,
        args.orders,
        seconds,
        database_rows(grown),
        database_rows(fresh),
        args.restart,
        footprint(grown),
        footprint(fresh),
    )
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores",
        "load": (
            f"crd-order-sign, {args.concurrency} keep-alive clients, one generator driving the "
            f"two servers in alternating {args.interleave:g}s slices, {args.warmup:g}s warm-up "
            f"+ {args.duration:g}s measured each per round, {args.rounds} rounds"
        ),
        "command": "python -m bench.growth " + " ".join(sys.argv[1:]),
    }
    return render(runs, growth, facts)


def main(argv: list[str] | None = None) -> int:
    return run_and_report(parse_args(argv), "greenlight-growth-", run)


if __name__ == "__main__":
    sys.exit(main())
