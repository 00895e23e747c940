"""Benchmark: validate the Inferno PAS $submit request Bundle against the PAS 2.0.1 profiles.

    python -m bench.validate_pas_bundle [--iterations N] [--warmup N] [--ig name#version]

Loads the packages from `GREENLIGHT_IG_PACKAGES` (default: ../shared/fhir-packages), validates the
Bundle a few times to warm the caches (profiles compiled, FHIRPath parsed), then times N
validations of the same parsed JSON and prints p50 / p90 / p99 in milliseconds. The target is a
p50 under 20 ms. This is a benchmark, not a test: nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import orjson

from app.fhir.validation import validator_for

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BUNDLE = (
    SHARED
    / "fixtures/inferno/davinci-pas-test-kit/extracted/v201/approval_pa_submit_request_payload.json"
)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--ig", default="hl7.fhir.us.davinci-pas#2.0.1", help="preferred package")
    parser.add_argument("--bundle", type=Path, default=BUNDLE)
    args = parser.parse_args(argv)

    packages = Path(os.environ.get("GREENLIGHT_IG_PACKAGES", SHARED / "fhir-packages"))
    started = time.perf_counter()
    validator = validator_for(packages, args.ig)
    loaded = time.perf_counter()
    bundle = orjson.loads(args.bundle.read_bytes())
    first = validator.validate(bundle)
    cold = time.perf_counter()
    for _ in range(args.warmup):
        validator.validate(bundle)

    samples: list[float] = []
    gc.collect()
    for _ in range(args.iterations):
        begin = time.perf_counter()
        validator.validate(bundle)
        samples.append((time.perf_counter() - begin) * 1000)

    entries = len(bundle.get("entry", []))
    print(f"bundle: {args.bundle.name} ({entries} entries), profiles of {args.ig}")
    load_ms, first_ms = (loaded - started) * 1000, (cold - loaded) * 1000
    print(f"package load: {load_ms:.0f} ms; first validation: {first_ms:.0f} ms")
    counts = f"{len(first.errors)} errors, {len(first.warnings)} warnings"
    print(f"issues: {counts}, {len(first.issues)} in all")
    print(
        f"validate x{args.iterations}: p50 {statistics.median(samples):.2f} ms, "
        f"p90 {_percentile(samples, 0.90):.2f} ms, p99 {_percentile(samples, 0.99):.2f} ms, "
        f"min {min(samples):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
