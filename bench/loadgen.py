"""A lean closed-loop HTTP/1.1 load generator: raw asyncio protocols on uvloop, one process.

The generator shares the machine's cores with the server under test, so every request must cost
it as little as possible: each virtual client owns one keep-alive connection and writes the same
pre-built request bytes; the response is framed by `Content-Length` (or chunked encoding) without
parsing headers into objects. Latency is `time.perf_counter_ns` around write -> last body byte.

Requests that must differ (CDS Hooks calls: a fresh signed JWT each, never replayed) come from a
pool file of pre-signed slot values, one request per line, read before the run: each request is
the head and body templates filled with the next line's values (`%b` slots, `%d` for the
Content-Length), built when it is sent (a microsecond) and never sent twice. A pool that runs out
ends the run early and flags it (`pool_exhausted`), so the harness can retry with a larger one.

Run as `python -m bench.loadgen` with a JSON `LoadSpec` on stdin; prints a JSON `LoadResult`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import uvloop

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"\r\ntransfer-encoding: chunked"


@dataclass(frozen=True)
class LoadSpec:
    """What to send, where, how hard and for how long."""

    host: str
    port: int
    request: bytes
    expected_status: int
    concurrency: int = 16
    warmup: float = 2.0
    duration: float = 10.0
    # A request without an answer after this many seconds is an error (its connection is closed).
    timeout: float = 10.0
    # Pooled requests (`request` is then unused): a file of tab-separated slot values, one line per
    # request; the first `head_slots` values fill `head_template`'s `%b` slots (then `%d` is the
    # body length), the others fill `body_template`.
    pool_path: str = ""
    head_template: bytes = b""
    body_template: bytes = b""
    head_slots: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        for name in _BYTES_FIELDS:
            data[name] = base64.b64encode(getattr(self, name)).decode("ascii")
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        data: dict[str, Any] = json.loads(text)
        for name in _BYTES_FIELDS:
            data[name] = base64.b64decode(data[name])
        return cls(**data)


_BYTES_FIELDS = ("request", "head_template", "body_template")


def pooled_head(
    path: str, host: str, port: int, authorization: str | None, media_type: str
) -> bytes:
    """The head template of a pooled POST: `Content-Length: %d` for `fill_request`, and the
    bearer credential as given (a token, `%b` for a slot that each pool line fills, or None for
    no Authorization header)."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Accept: {media_type}",
        "User-Agent: greenlight-bench",
    ]
    if authorization is not None:
        lines.append(f"Authorization: Bearer {authorization}")
    lines += [f"Content-Type: {media_type}", "Content-Length: %d"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def fill_request(
    head_template: bytes, body_template: bytes, head_slots: int, values: tuple[bytes, ...]
) -> bytes:
    """One pooled request: the templates filled with one pool line's values."""
    body = body_template % values[head_slots:] if len(values) > head_slots else body_template
    return head_template % (*values[:head_slots], len(body)) + body


class Requests:
    """The request each send uses: always `spec.request`, or the next unused pool entry."""

    def __init__(self, spec: LoadSpec) -> None:
        self.fixed: bytes | None = spec.request if not spec.pool_path else None
        self.pool: list[tuple[bytes, ...]] = []
        self.used = 0
        self.exhausted = False
        self._head = spec.head_template
        self._body = spec.body_template
        self._head_slots = spec.head_slots
        if spec.pool_path:
            with open(spec.pool_path, "rb") as handle:
                self.pool = [tuple(line.split(b"\t")) for line in handle.read().splitlines()]

    def next(self) -> bytes | None:
        if self.fixed is not None:
            return self.fixed
        if self.used >= len(self.pool):
            self.exhausted = True
            return None
        values = self.pool[self.used]
        self.used += 1
        return fill_request(self._head, self._body, self._head_slots, values)


@dataclass(frozen=True)
class LoadResult:
    """What one run measured; latencies are over the successful requests of the measured window."""

    requests: int
    errors: int
    error_kinds: dict[str, int]
    elapsed_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    # CPU seconds the generator itself used during the measured window (user + system).
    generator_cpu_s: float
    # Every answered request, warm-up included (to divide the server's CPU time by).
    completed_total: int
    # Pooled requests: how many were sent, and whether the pool ran out (the run is then invalid).
    pool_used: int = 0
    pool_exhausted: bool = False
    # Seconds from the first request to the end of the run, warm-up included.
    ran_s: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def percentile(sorted_samples: list[int], pct: float) -> int:
    """The exact nearest-rank percentile of already sorted samples (0 when there are none)."""
    if not sorted_samples:
        return 0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def _chunked_length(buf: bytearray, start: int) -> int:
    """The total message length if the chunked body starting at `start` is complete, else -1."""
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return -1
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end >= 0 and trailer_end != pos:  # skip trailer fields
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            return -1 if trailer_end < 0 else pos + 2
        pos += size + 2
        if pos > len(buf):
            return -1


class Connection(asyncio.Protocol):
    """One keep-alive connection; `waiter` resolves to the status code of the next response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.started_ns = 0
        self.closed = False
        self._need = -1
        self._chunked = False
        self._body_start = 0
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self._need < 0:
            end = buf.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            try:
                self._status = int(head[9:12])
            except ValueError:
                self._fail(ConnectionError("malformed status line"))
                return
            self._body_start = end + 4
            at = head.find(_CONTENT_LENGTH)
            if at >= 0:
                value_start = at + len(_CONTENT_LENGTH)
                value_end = head.find(b"\r\n", value_start)
                length = int(head[value_start : value_end if value_end >= 0 else None])
                self._need = self._body_start + length
                self._chunked = False
            elif head.find(_CHUNKED) >= 0:
                self._chunked = True
                self._need = 0
            elif self._status in (204, 304) or 100 <= self._status < 200:
                self._need = self._body_start
                self._chunked = False
            else:
                self._fail(ConnectionError("response without Content-Length"))
                return
        if self._chunked:
            total = _chunked_length(buf, self._body_start)
            if total < 0:
                return
            self._need = total
        if len(buf) < self._need:
            return
        del buf[: self._need]
        self._need = -1
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._status)

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionResetError("connection closed by the server"))


@dataclass
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    last_done_ns: int = 0
    completed_total: int = 0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def connect(spec: LoadSpec) -> Connection:
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_connection(Connection, spec.host, spec.port)
    return protocol


async def client(
    spec: LoadSpec,
    requests: Requests,
    conn: Connection,
    live: list[Connection],
    slot: int,
    tally: Tally,
    measure_from_ns: int,
    stop_ns: int,
) -> None:
    loop = asyncio.get_running_loop()
    next_request = requests.next
    expected = spec.expected_status
    latencies = tally.latencies_ns
    clock = time.perf_counter_ns
    while True:
        started = clock()
        if started >= stop_ns or requests.exhausted:
            return
        measured = started >= measure_from_ns
        if conn.closed:
            try:
                conn = await connect(spec)
            except OSError as exc:
                if measured:
                    tally.error(f"connect: {type(exc).__name__}")
                await asyncio.sleep(0.01)
                continue
            live[slot] = conn
            started = clock()
        request = next_request()
        if request is None:
            return
        waiter: asyncio.Future[int] = loop.create_future()
        conn.waiter = waiter
        conn.started_ns = started
        assert conn.transport is not None
        conn.transport.write(request)
        try:
            status = await waiter
        except Exception as exc:
            if measured:
                tally.error(type(exc).__name__)
            if conn.transport is not None:
                conn.transport.abort()
            conn.closed = True
            continue
        done = clock()
        tally.completed_total += 1
        if not measured:
            continue
        tally.last_done_ns = done
        if status == expected:
            latencies.append(done - started)
        else:
            tally.error(f"HTTP {status}")


async def watchdog(live: list[Connection], timeout_ns: int) -> None:
    """Abort connections whose request has waited longer than the timeout (no per-request timer)."""
    while True:
        await asyncio.sleep(0.25)
        now = time.perf_counter_ns()
        for conn in live:
            if conn.waiter is not None and now - conn.started_ns > timeout_ns:
                conn._fail(TimeoutError(f"no answer within {timeout_ns / 1e9:g}s"))


async def run_load(spec: LoadSpec) -> LoadResult:
    """Drive the target with `spec.concurrency` clients; warm up, then measure `spec.duration`."""
    requests = Requests(spec)
    live = [await connect(spec) for _ in range(spec.concurrency)]
    tally = Tally()
    now = began = time.perf_counter_ns()
    measure_from = now + int(spec.warmup * 1e9)
    stop = measure_from + int(spec.duration * 1e9)
    guard = asyncio.create_task(watchdog(live, int(spec.timeout * 1e9)))
    cpu_at_start: float | None = None

    async def mark_cpu() -> None:
        nonlocal cpu_at_start
        await asyncio.sleep(max(0.0, (measure_from - time.perf_counter_ns()) / 1e9))
        cpu_at_start = time.process_time()

    marker = asyncio.create_task(mark_cpu())
    try:
        await asyncio.gather(
            *(
                client(spec, requests, conn, live, slot, tally, measure_from, stop)
                for slot, conn in enumerate(live)
            )
        )
    finally:
        guard.cancel()
        for conn in live:
            if conn.transport is not None:
                conn.transport.close()
    ran_s = (time.perf_counter_ns() - began) / 1e9
    marker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await marker
    cpu = time.process_time() - (cpu_at_start if cpu_at_start is not None else 0.0)
    elapsed_ns = max(tally.last_done_ns, stop) - measure_from
    return load_result(tally, requests, elapsed_ns / 1e9, cpu, ran_s)


def load_result(
    tally: Tally, requests: Requests, elapsed_s: float, cpu_s: float, ran_s: float
) -> LoadResult:
    """What a run measured: `elapsed_s` measured seconds, `cpu_s` of the generator's CPU in
    them, `ran_s` seconds from the first request to the last (warm-up included)."""
    samples = sorted(tally.latencies_ns)
    count = len(samples)
    return LoadResult(
        requests=count,
        errors=tally.errors,
        error_kinds=tally.error_kinds,
        elapsed_s=round(elapsed_s, 4),
        rps=count / elapsed_s if elapsed_s > 0 else 0.0,
        p50_ms=percentile(samples, 50) / 1e6,
        p90_ms=percentile(samples, 90) / 1e6,
        p99_ms=percentile(samples, 99) / 1e6,
        max_ms=(samples[-1] / 1e6) if samples else 0.0,
        mean_ms=(sum(samples) / count / 1e6) if count else 0.0,
        generator_cpu_s=round(cpu_s, 4),
        completed_total=tally.completed_total,
        pool_used=requests.used,
        pool_exhausted=requests.exhausted,
        ran_s=round(ran_s, 4),
    )


def main() -> int:
    spec = LoadSpec.from_json(sys.stdin.read())
    result = uvloop.run(run_load(spec))
    sys.stdout.write(result.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
