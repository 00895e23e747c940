"""Two targets driven in turn, slice by slice, so that both see the same machine.

This two-core machine changes speed in phases of seconds to minutes (shared hosts): two runs of
ten seconds, one after the other, see different phases, and their ratio moves by more than the
difference being measured. Here one generator holds keep-alive connections to both targets and
drives them alternately for `slice_s` seconds each (A, B, A, B, ...) until each has had its
warm-up and its measured seconds, so each target's samples are spread over the same stretch of
time. Only one target has requests in flight at a time: a slice ends when its clients stop
sending and every answer is in. The first `settle_s` of every measured slice is not measured:
the target starts it with an empty queue (and caches the other target warmed).

Run as `python -m bench.interleave` with a JSON `InterleavedSpec` on stdin; prints a JSON list of
two `LoadResult`s, one per target, in the spec's order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import uvloop

from bench.loadgen import (
    Connection,
    LoadResult,
    LoadSpec,
    Requests,
    Tally,
    client,
    connect,
    load_result,
    watchdog,
)

_NEVER = 2**62  # a measure-from time no request reaches (warm-up slices)


@dataclass(frozen=True)
class InterleavedSpec:
    """Two targets (each `LoadSpec`'s warm-up and duration are its own totals) taken in turn."""

    first: LoadSpec
    second: LoadSpec
    slice_s: float = 1.0
    settle_s: float = 0.1

    def to_json(self) -> str:
        return json.dumps(
            {
                "first": json.loads(self.first.to_json()),
                "second": json.loads(self.second.to_json()),
                "slice_s": self.slice_s,
                "settle_s": self.settle_s,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> InterleavedSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(
            first=LoadSpec.from_json(json.dumps(data["first"])),
            second=LoadSpec.from_json(json.dumps(data["second"])),
            slice_s=float(data["slice_s"]),
            settle_s=float(data["settle_s"]),
        )


class _Target:
    """One target's connections, requests and tally, and the time it has been driven."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.requests = Requests(spec)
        self.tally = Tally()
        self.live: list[Connection] = []
        self.measured_ns = 0
        self.ran_ns = 0
        self.cpu_s = 0.0

    async def open(self) -> None:
        self.live = [await connect(self.spec) for _ in range(self.spec.concurrency)]

    async def drive(self, seconds: float, settle_s: float | None) -> None:
        """One slice: every client sends until `seconds` have passed, then its answer is awaited;
        with `settle_s` (a measured slice) requests started after it are measured."""
        started = time.perf_counter_ns()
        stop = started + int(seconds * 1e9)
        measure_from = _NEVER if settle_s is None else started + int(settle_s * 1e9)
        cpu_before = time.process_time()
        await asyncio.gather(
            *(
                client(
                    self.spec, self.requests, conn, self.live, slot, self.tally, measure_from, stop
                )
                for slot, conn in enumerate(self.live)
            )
        )
        self.ran_ns += time.perf_counter_ns() - started
        if settle_s is not None:
            self.measured_ns += max(0, stop - measure_from)
            self.cpu_s += time.process_time() - cpu_before

    def close(self) -> None:
        for conn in self.live:
            if conn.transport is not None:
                conn.transport.close()

    def result(self) -> LoadResult:
        return load_result(
            self.tally, self.requests, self.measured_ns / 1e9, self.cpu_s, self.ran_ns / 1e9
        )


async def run_interleaved(spec: InterleavedSpec) -> list[LoadResult]:
    """Warm both targets up, then measure both, in alternating slices."""
    targets = [_Target(spec.first), _Target(spec.second)]
    for target in targets:
        await target.open()
    watchdogs = [
        asyncio.create_task(watchdog(target.live, int(target.spec.timeout * 1e9)))
        for target in targets
    ]
    try:
        for measured in (False, True):
            done = [0.0, 0.0]
            while not any(target.requests.exhausted for target in targets):
                pending = False
                for index, target in enumerate(targets):
                    total = target.spec.duration if measured else target.spec.warmup
                    length = min(spec.slice_s, total - done[index])
                    if length <= 1e-6:
                        continue
                    pending = True
                    await target.drive(length, spec.settle_s if measured else None)
                    done[index] += length
                if not pending:
                    break
    finally:
        for task in watchdogs:
            task.cancel()
        for target in targets:
            target.close()
    return [target.result() for target in targets]


def main() -> int:
    spec = InterleavedSpec.from_json(sys.stdin.read())
    results = uvloop.run(run_interleaved(spec))
    sys.stdout.write(json.dumps([json.loads(result.to_json()) for result in results]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
