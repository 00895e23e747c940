"""Does a CRD call cost more with 10,000 coverage topics than with 10? Two Greenlights, in turn.

    python -m bench.topic_scale [--many N] [--few N] [--rounds R] [--interleave S]
        [--warmup S] [--duration S] [--concurrency C] [--output FILE] [--keep]

The CRD issue's check: evaluating against 10,000 topics costs no more than 1.2x evaluating
against 10. `python -m bench --topics 10,10000` measures each Greenlight in 12 s runs of its
own, one after the other, and on this two-core machine, whose speed moves in phases of seconds,
one slow phase can decide a round (session 15: one round at 1.45x, the others 1.10x and 1.24x).
Here two Greenlights are set up as `python -m bench --topics` sets them up (the shipped topics
plus synthetic ones up to `--few` and `--many`, `bench.topics`; demo payer, auth on) and each
CRD scenario drives both in alternating slices (`bench.interleave`: one generator, one target at
a time, as `bench.growth` drives a grown and a fresh server), `--rounds` times, the many-topic
one first in odd rounds. `crd-order-sign` reuses a stored assertion after its first call;
`crd-order-sign-new` decides every call with the rules engine.

Reported per scenario and round: p50, p99 and server CPU per call of each, many / few; then the
medians of the ratios, judged against `LIMIT`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import crd
from bench.growth import ratio_rows, run_and_report
from bench.harness import (
    INTERLEAVE_SETTLE,
    REPO_ROOT,
    BenchClient,
    CrdLoad,
    Databases,
    Instance,
    Run,
    clean_env,
    crd_smoke_test,
    measure_crd_interleaved,
    start_greenlight,
)
from bench.scenarios import SCENARIOS

#: The many-topic server's median p50 and CPU per call may be at most this many times the
#: few-topic one's (the CRD issue).
LIMIT = 1.2
SCENARIO_NAMES = ("crd-order-sign", "crd-order-sign-new")


def label(count: int) -> str:
    return f"greenlight ({count:,} topics)"


def render(runs: list[Run], many: int, few: int, facts: dict[str, str]) -> str:
    """The report: facts, per scenario a row per round, the medians and the verdict."""
    out = [f"# Greenlight benchmark: CRD with {many:,} topics against {few:,}", ""]
    out += [f"- **{key}**: {value}" for key, value in facts.items()]
    for name in SCENARIO_NAMES:
        mine = [run for run in runs if run.scenario == name]
        if not mine:
            continue
        out += [
            "",
            f"### {name}",
            "",
            f"| round | {many:,} p50 ms | {few:,} p50 ms | p50 ratio | {many:,} p99 ms "
            f"| {few:,} p99 ms | {many:,} CPU ms/call | {few:,} CPU ms/call | CPU ratio | errors |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        p50_ratios, cpu_ratios = [], []
        for number, measured, reference in ratio_rows(mine, label(many), label(few)):
            p50 = measured.result.p50_ms / reference.result.p50_ms
            cpu = measured.server_cpu_ms_per_request / reference.server_cpu_ms_per_request
            p50_ratios.append(p50)
            cpu_ratios.append(cpu)
            out.append(
                f"| {number} | {measured.result.p50_ms:.2f} | {reference.result.p50_ms:.2f} "
                f"| {p50:.2f}x | {measured.result.p99_ms:.2f} | {reference.result.p99_ms:.2f} "
                f"| {measured.server_cpu_ms_per_request:.3f} "
                f"| {reference.server_cpu_ms_per_request:.3f} | {cpu:.2f}x "
                f"| {measured.result.errors + reference.result.errors} |"
            )
        p50_median, cpu_median = statistics.median(p50_ratios), statistics.median(cpu_ratios)
        met = p50_median <= LIMIT and cpu_median <= LIMIT
        out += [
            "",
            f"Median {many:,} / {few:,} topics: p50 **{p50_median:.2f}x**, CPU per call "
            f"**{cpu_median:.2f}x** (target: both within {LIMIT:g}x): "
            f"**{'met' if met else 'NOT met'}**.",
        ]
    out.append("")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--many", type=int, default=10_000, help="topics of the one (10,000)")
    parser.add_argument("--few", type=int, default=10, help="topics of the other (10)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--interleave", type=float, default=1.0, help="slice seconds (1)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per target")
    parser.add_argument("--concurrency", type=int, default=16, help="virtual clients (16)")
    parser.add_argument("--timeout", type=float, default=10.0, help="request timeout seconds")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "bench" / "results" / "crd-topic-scale.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if not 0 < args.few < args.many or args.rounds < 1:
        parser.error("--few must be positive and below --many, --rounds at least 1")
    if not INTERLEAVE_SETTLE < args.interleave <= 60:
        parser.error(f"--interleave must be in ({INTERLEAVE_SETTLE:g}, 60] seconds")
    args.workers = 1
    args.ready_timeout = 600.0  # loading 10,000 topics takes seconds
    return args


def _start(
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    count: int,
    client: BenchClient,
    load: CrdLoad,
    secret: str,
) -> Instance:
    return start_greenlight(
        args,
        True,
        work,
        env,
        label(count),
        client=client,
        signer=load.signer,
        secret=secret,
        topic_count=count,
        startups=[],
        databases=Databases(),
    )


def run(args: argparse.Namespace, work: Path) -> str:
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    secret = secrets.token_urlsafe(48)
    client = BenchClient.generate()
    pools = work / "pools"
    pools.mkdir()
    load = CrdLoad(crd.CdsSigner.generate("ES384"), pools, {})
    many = _start(args, work, env, args.many, client, load, secret)
    few = _start(args, work, env, args.few, client, load, secret)
    runs: list[Run] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", flush=True)
        # which server takes the first slice alternates: no side always follows the other
        first, second = (many, few) if number % 2 else (few, many)
        servers = (first.server, second.server)
        audiences = (crd.service_url(servers[0].base_url), crd.service_url(servers[1].base_url))
        for server, audience in zip(servers, audiences, strict=True):
            crd_smoke_test(server, load.signer, audience)
        for name in SCENARIO_NAMES:
            pair = measure_crd_interleaved(servers, SCENARIOS[name], audiences, load, args, env)
            runs += [replace(run, round=number, rounds=args.rounds) for run in pair]
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores",
        "load": (
            f"{', '.join(SCENARIO_NAMES)}, {args.concurrency} keep-alive clients, one generator "
            f"driving the two servers in alternating {args.interleave:g}s slices, "
            f"{args.warmup:g}s warm-up + {args.duration:g}s measured each per round, "
            f"{args.rounds} rounds"
        ),
        "topics": (
            f"the shipped topics plus synthetic ones up to {args.many:,} and {args.few:,} "
            "(bench/topics.py), one rules directory per server"
        ),
        "command": "python -m bench.topic_scale " + " ".join(sys.argv[1:]),
    }
    return render(runs, args.many, args.few, facts)


def main(argv: list[str] | None = None) -> int:
    return run_and_report(parse_args(argv), "greenlight-topic-scale-", run)


if __name__ == "__main__":
    sys.exit(main())
