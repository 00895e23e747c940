"""The interleaving load generator (`bench.interleave`) against two real servers on loopback:
one target at a time, each for its own warm-up and measured seconds, in alternating slices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench.interleave import InterleavedSpec, run_interleaved
from bench.loadgen import LoadSpec

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_WORK_S = 0.002  # each answer takes this long, as a server's work would


@dataclass
class _Served:
    """When each request to one server arrived and was answered (perf_counter_ns)."""

    spans: list[tuple[int, int]] = field(default_factory=list)


@asynccontextmanager
async def _server() -> AsyncIterator[tuple[int, _Served]]:
    """A keep-alive HTTP/1.1 server on a free loopback port that answers every request."""
    served = _Served()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                arrived = time.perf_counter_ns()
                await asyncio.sleep(_WORK_S)
                served.spans.append((arrived, time.perf_counter_ns()))
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, served
    finally:
        server.close()


def _spec(port: int, *, warmup: float, duration: float) -> LoadSpec:
    request = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    return LoadSpec(
        host="127.0.0.1",
        port=port,
        request=request,
        expected_status=200,
        concurrency=4,
        warmup=warmup,
        duration=duration,
    )


def _overlaps(first: list[tuple[int, int]], second: list[tuple[int, int]]) -> int:
    """How many of `first`'s spans overlap one of `second`'s."""
    return sum(1 for start, end in first if any(s < end and start < e for s, e in second))


async def test_targets_take_turns_and_each_gets_its_own_seconds() -> None:
    async with _server() as (port_a, served_a), _server() as (port_b, served_b):
        spec = InterleavedSpec(
            _spec(port_a, warmup=0.2, duration=0.6),
            _spec(port_b, warmup=0.2, duration=0.6),
            slice_s=0.2,
            settle_s=0.05,
        )
        started = time.perf_counter()
        first, second = await run_interleaved(spec)
        took = time.perf_counter() - started

    # Each target had its own warm-up and measured seconds, one after the other: 1.6 s in all.
    assert 1.6 <= took < 5.0
    for result, served in ((first, served_a), (second, served_b)):
        assert result.errors == 0
        assert not result.pool_exhausted
        # Three measured slices of 0.2 s, each without its first 0.05 s.
        assert abs(result.elapsed_s - 0.45) < 1e-6
        assert 0 < result.requests < result.completed_total == len(served.spans)
        assert result.p50_ms >= _WORK_S * 1000
        assert 0.75 <= result.ran_s < 1.2  # its four slices and their last answers
    # Never both targets at work at once.
    assert _overlaps(served_a.spans, served_b.spans) == 0
    # Turns alternate: A's first request comes before B's, B's last after A's last.
    assert served_a.spans[0][0] < served_b.spans[0][0]
    assert served_a.spans[-1][1] < served_b.spans[-1][1]


async def test_a_target_that_stops_answering_ends_with_errors_not_a_hang() -> None:
    async with _server() as (port_a, _served_a):
        held: list[asyncio.StreamWriter] = []  # connections kept open, never answered

        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        silent = await asyncio.start_server(hold, "127.0.0.1", 0)
        port_b = silent.sockets[0].getsockname()[1]
        try:
            spec = InterleavedSpec(
                _spec(port_a, warmup=0.0, duration=0.4),
                LoadSpec(
                    host="127.0.0.1",
                    port=port_b,
                    request=b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
                    expected_status=200,
                    concurrency=2,
                    warmup=0.0,
                    duration=0.4,
                    timeout=0.5,
                ),
                slice_s=0.2,
                settle_s=0.0,
            )
            first, second = await asyncio.wait_for(run_interleaved(spec), timeout=10)
        finally:
            silent.close()
    assert first.errors == 0 and first.requests > 0
    assert second.requests == 0
    assert second.errors >= 2
    assert set(second.error_kinds) == {"TimeoutError"}
