"""A measured run as the bench records it, built with only what the reports read."""

from __future__ import annotations

from bench.harness import Run
from bench.loadgen import LoadResult


def measured_run(
    target: str, number: int, p50_ms: float, cpu_s: float, scenario: str = "crd-order-sign"
) -> Run:
    """`scenario` on `target` in round `number`: 1,000 requests in 10 s at `p50_ms` (p99 1.5x
    of it), `cpu_s` of server CPU."""
    result = LoadResult(
        requests=1000,
        errors=0,
        error_kinds={},
        elapsed_s=10.0,
        rps=100.0,
        p50_ms=p50_ms,
        p90_ms=p50_ms * 1.2,
        p99_ms=p50_ms * 1.5,
        max_ms=p50_ms * 2,
        mean_ms=p50_ms,
        generator_cpu_s=1.0,
        completed_total=1000,
    )
    return Run(scenario, target, result, cpu_s, 12.0, round=number, rounds=3)
