"""Two Greenlights that differ in one way, driven by CRD calls in alternating slices.

The plumbing `bench.growth` (a grown server against a fresh one) and `bench.topic_scale`
(10,000 topics against 10) share: their load options, the signing key and client both servers
trust, starting each server as `python -m bench` starts its CRD target, one round of
interleaved measurement (`bench.interleave`: one generator, one target at a time, the first
slice taken by each side in turn), pairing each round's runs, and running in a temporary
directory with the report printed and written.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench import crd
from bench.harness import (
    INTERLEAVE_SETTLE,
    REPO_ROOT,
    BenchClient,
    BenchError,
    CrdLoad,
    Databases,
    Instance,
    Run,
    clean_env,
    crd_smoke_test,
    measure_crd_interleaved,
    servers_stopped_on_exit,
    start_greenlight,
)
from bench.scenarios import Scenario


def add_load_options(parser: argparse.ArgumentParser, rounds: int, output: str) -> None:
    """Rounds, slices, warm-up, duration, clients, timeout, `--output` (in bench/results/) and
    `--keep`."""
    parser.add_argument("--rounds", type=int, default=rounds, help=f"measured rounds ({rounds})")
    parser.add_argument("--interleave", type=float, default=1.0, help="slice seconds (1)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per target")
    parser.add_argument("--concurrency", type=int, default=16, help="virtual clients (16)")
    parser.add_argument("--timeout", type=float, default=10.0, help="request timeout seconds")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / output)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def check_load_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, ready_timeout: float
) -> None:
    """Refuse options that measure nothing; one worker per server, `ready_timeout` to start."""
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not INTERLEAVE_SETTLE < args.interleave <= 60:
        parser.error(f"--interleave must be in ({INTERLEAVE_SETTLE:g}, 60] seconds")
    args.workers = 1
    args.ready_timeout = ready_timeout


@dataclass(frozen=True)
class Setting:
    """What both servers of a pair share: their environment, the SMART client and token secret
    they trust, and the EHR's CDS Hooks key with the request pools' directory."""

    env: dict[str, str]
    secret: str
    client: BenchClient
    load: CrdLoad

    @classmethod
    def new(cls, work: Path) -> Setting:
        env = clean_env()
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        pools = work / "pools"
        pools.mkdir()
        load = CrdLoad(crd.CdsSigner.generate("ES384"), pools, {})
        return cls(env, secrets.token_urlsafe(48), BenchClient.generate(), load)

    def start(
        self, args: argparse.Namespace, work: Path, label: str, topic_count: int | None = None
    ) -> Instance:
        """A Greenlight named `label` (demo payer, auth on; `topic_count` topics, else the
        shipped ones)."""
        return start_greenlight(
            args,
            True,
            work,
            self.env,
            label,
            client=self.client,
            signer=self.load.signer,
            secret=self.secret,
            topic_count=topic_count,
            startups=[],
            databases=Databases(),
        )


def measure_round(
    args: argparse.Namespace,
    setting: Setting,
    pair: tuple[Instance, Instance],
    scenarios: Sequence[Scenario],
    number: int,
) -> list[Run]:
    """Round `number` of `scenarios` on the pair; the first server takes the first slice in odd
    rounds, the second in even ones, so no side always follows the other."""
    first, second = pair if number % 2 else pair[::-1]
    servers = (first.server, second.server)
    audiences = (crd.service_url(servers[0].base_url), crd.service_url(servers[1].base_url))
    for server, audience in zip(servers, audiences, strict=True):
        crd_smoke_test(server, setting.load.signer, audience)
    runs: list[Run] = []
    for scenario in scenarios:
        measured = measure_crd_interleaved(
            servers, scenario, audiences, setting.load, args, setting.env
        )
        runs += [replace(run, round=number, rounds=args.rounds) for run in measured]
    return runs


def ratio_rows(runs: list[Run], measured: str, reference: str) -> list[tuple[int, Run, Run]]:
    """(round, `measured` run, `reference` run) for every round (by target name)."""
    by_round: dict[int, dict[str, Run]] = {}
    for run in runs:
        by_round.setdefault(run.round, {})[run.target] = run
    return [(number, pair[measured], pair[reference]) for number, pair in sorted(by_round.items())]


def run_and_report(
    args: argparse.Namespace, prefix: str, measure: Callable[[argparse.Namespace, Path], str]
) -> int:
    """`measure(args, work)` in a temporary directory, servers stopped after; its report printed
    and written to `args.output`. 1 when the bench failed."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with servers_stopped_on_exit():
            report = measure(args, work)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(f"written to {args.output}")
    return 0


def ratio_table(
    runs: list[Run], measured: str, reference: str, short: tuple[str, str], limit: float
) -> list[str]:
    """Markdown lines: a row per round of target `measured` against `reference` (p50, p99 and
    CPU per call, the ratios; `short` names them in the headers), then the medians of the
    ratios judged against `limit`."""
    mine, theirs = short
    lines = [
        f"| round | {mine} p50 ms | {theirs} p50 ms | p50 {mine}/{theirs} | {mine} p99 ms "
        f"| {theirs} p99 ms | {mine} CPU ms/call | {theirs} CPU ms/call | CPU {mine}/{theirs} "
        "| errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    p50_ratios, cpu_ratios = [], []
    for number, one, other in ratio_rows(runs, measured, reference):
        p50 = one.result.p50_ms / other.result.p50_ms
        cpu = one.server_cpu_ms_per_request / other.server_cpu_ms_per_request
        p50_ratios.append(p50)
        cpu_ratios.append(cpu)
        lines.append(
            f"| {number} | {one.result.p50_ms:.2f} | {other.result.p50_ms:.2f} | {p50:.2f}x "
            f"| {one.result.p99_ms:.2f} | {other.result.p99_ms:.2f} "
            f"| {one.server_cpu_ms_per_request:.3f} | {other.server_cpu_ms_per_request:.3f} "
            f"| {cpu:.2f}x | {one.result.errors + other.result.errors} |"
        )
    p50_median, cpu_median = statistics.median(p50_ratios), statistics.median(cpu_ratios)
    met = p50_median <= limit and cpu_median <= limit
    return [
        *lines,
        "",
        f"Median {mine}/{theirs}: p50 **{p50_median:.2f}x**, CPU per call **{cpu_median:.2f}x** "
        f"(target: both within {limit:g}x): **{'met' if met else 'NOT met'}**.",
    ]
