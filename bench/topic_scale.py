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
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Run
from bench.pair import (
    Setting,
    add_load_options,
    check_load_options,
    measure_round,
    ratio_table,
    run_and_report,
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
        out += ["", f"### {name}", ""]
        out += ratio_table(mine, label(many), label(few), (f"{many:,}", f"{few:,}"), LIMIT)
    out.append("")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--many", type=int, default=10_000, help="topics of the one (10,000)")
    parser.add_argument("--few", type=int, default=10, help="topics of the other (10)")
    add_load_options(parser, rounds=3, output="crd-topic-scale.md")
    args = parser.parse_args(argv)
    if not 0 < args.few < args.many:
        parser.error("--few must be positive and below --many")
    check_load_options(parser, args, ready_timeout=600.0)  # 10,000 topics load in seconds
    return args


def run(args: argparse.Namespace, work: Path) -> str:
    setting = Setting.new(work)
    many = setting.start(args, work, label(args.many), args.many)
    few = setting.start(args, work, label(args.few), args.few)
    scenarios = [SCENARIOS[name] for name in SCENARIO_NAMES]
    runs: list[Run] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", flush=True)
        runs += measure_round(args, setting, (many, few), scenarios, number)
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
