"""CRD order-sign calls driven in-process through the ASGI app: CPU per call, and callgrind.

    python -m bench.inprocess [--calls N] [--warmup N] [--concurrency C] [--bare] [--no-signature]
        [--grow N [--grow-via-http]] [--grow-orders N] [--perf-control FIFO]
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python -m bench.inprocess --callgrind

No sockets, no load generator: `--concurrency` coroutines send the bench's order-sign request
(`bench.crd`, a fresh ES384 JWT and hookInstance per call) straight to Greenlight's ASGI app, or
to the bare app's with `--bare`, on uvloop, and the process's user and system CPU per call over
the measured calls is printed. Greenlight runs on a new SQLite database in a temporary directory
(migrated, demo payer loaded). Timings on a shared two-core machine move by +-20% between
identical runs, so compare builds in alternating runs, or count instructions:

With `--callgrind`, callgrind's instrumentation is switched on (`callgrind_control -i on`) for the
measured calls only, and what depends on wall time rather than on the calls is held off (the PAS
outbox poll, the WAL checkpoints), so that the instruction count of a build repeats to within
about 0.5%. `callgrind_annotate callgrind.out.<pid>` then gives the total; divide by `--calls`.
`--no-signature` skips the ES384 check (in Greenlight only; the bare app is started without keys)
to look at the rest. `--grow N` first stores N Patients (`patient-create`'s body, 500 per
transaction; with `--grow-via-http` POSTed to the app, `--concurrency` at a time, as the
`patient-create` scenario sends them), and `--grow-orders N` first answers N calls for new
orders, to compare a call on a grown server with one on a fresh server. With
`--perf-control FIFO`, `enable` and `disable` are written to the control FIFO of
`perf record -D -1 --control fifo:FIFO` around the measured calls (bench/README.md).
This is a benchmark aid, not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop
from starlette.types import ASGIApp, Message

from bench import crd
from bench.scenarios import PATIENT, PATIENT_BYTES

if TYPE_CHECKING:  # app modules are imported once the environment is set (`_greenlight`)
    from app.store.repository import ResourceStore

HOST, PORT = "127.0.0.1", 9999
BASE_URL = f"http://{HOST}:{PORT}"
Call = tuple[bytes, bytes]  # (JWT, body)


def _calls(signer: crd.CdsSigner, template: crd.RequestTemplate, count: int) -> list[Call]:
    audience = crd.service_url(BASE_URL)
    calls = []
    for _ in range(count):
        token = signer.token(audience)
        _head, body = template.fill(token, template.new_values())
        calls.append((token.encode("ascii"), body))
    return calls


async def _grow_orders(app: ASGIApp, signer: crd.CdsSigner, count: int, concurrency: int) -> None:
    """`count` order-sign calls, each for a new order (`crd-order-sign-new`'s request)."""
    template = crd.request_template(HOST, PORT, distinct_orders=True)
    started = time.perf_counter()
    for first in range(0, count, 1000):  # a thousand JWTs at a time: they expire
        await _drive(app, _calls(signer, template, min(1000, count - first)), concurrency)
    print(f"grown by {count} new orders in {time.perf_counter() - started:.1f} s")


async def _call(
    app: ASGIApp,
    token: bytes,
    body: bytes,
    path: str = crd.SERVICE_PATH,
    content_type: bytes = b"application/json",
    expected: int = 200,
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "server": (HOST, PORT),
        "client": (HOST, 50000),
        "headers": [
            (b"host", f"{HOST}:{PORT}".encode("ascii")),
            (b"authorization", b"Bearer " + token),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode("ascii")),
        ],
    }
    sent = False
    statuses: list[int] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    await app(scope, receive, send)
    if statuses != [expected]:
        raise RuntimeError(f"{path} answered {statuses}")


async def _drive(app: ASGIApp, calls: list[Call], concurrency: int, **request: Any) -> None:
    queue = iter(calls)

    async def client() -> None:
        for token, body in queue:
            await _call(app, token, body, **request)

    await asyncio.gather(*(client() for _ in range(concurrency)))


def _callgrind(switch: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True
    )


def _perf(control: Path, command: str) -> None:
    """`enable` or `disable` for `perf record -D -1 --control fifo:<control>`."""
    with control.open("w") as fifo:
        fifo.write(command + "\n")


async def _measure(app: ASGIApp, args: argparse.Namespace, signer: crd.CdsSigner) -> None:
    template = crd.request_template(HOST, PORT, distinct_orders=False)
    await _drive(app, _calls(signer, template, args.warmup), args.concurrency)
    measured = _calls(signer, template, args.calls)
    if args.callgrind:
        _callgrind("on")
    if args.perf_control:
        _perf(args.perf_control, "enable")
    collections = [generation["collections"] for generation in gc.get_stats()]
    before = resource.getrusage(resource.RUSAGE_SELF)
    await _drive(app, measured, args.concurrency)
    after = resource.getrusage(resource.RUSAGE_SELF)
    collections = [g["collections"] - n for g, n in zip(gc.get_stats(), collections, strict=True)]
    if args.callgrind:
        _callgrind("off")
    if args.perf_control:
        _perf(args.perf_control, "disable")
    user = (after.ru_utime - before.ru_utime) / args.calls * 1000
    system = (after.ru_stime - before.ru_stime) / args.calls * 1000
    target = "bare" if args.bare else "greenlight"
    print(
        f"{target}: {args.calls} calls, {args.concurrency} at a time: CPU per call "
        f"{user + system:.3f} ms (user {user:.3f}, system {system:.3f}); garbage collections "
        f"by generation {collections}, {len(gc.get_objects(2)):,} objects in the oldest"
    )


async def _grow(store: ResourceStore, count: int) -> None:
    """Store `count` Patients, `patient-create`'s body, in transactions of 500."""
    started = time.perf_counter()
    for first in range(0, count, 500):
        async with store.transaction() as writer:
            for _ in range(min(500, count - first)):
                await writer.create(dict(PATIENT))
    print(f"grown by {count} Patients in {time.perf_counter() - started:.1f} s")


async def _grow_via_http(app: ASGIApp, count: int, concurrency: int) -> None:
    """POST `count` Patients (`patient-create`'s request) to the app, `concurrency` at a time."""
    from app.auth.tokens import AccessTokens
    from app.config import get_settings

    settings = get_settings()
    tokens = AccessTokens(
        settings.resolved_token_secret(),
        issuer=settings.base_url,
        audience=settings.fhir_base_url,
        lifetime_seconds=3600,
    )
    bearer = tokens.issue("bench", ["system/Patient.c"]).access_token.encode("ascii")
    started = time.perf_counter()
    await _drive(
        app,
        [(bearer, PATIENT_BYTES)] * count,
        concurrency,
        path="/fhir/Patient",
        content_type=b"application/fhir+json",
        expected=201,
    )
    print(f"grown by {count} Patients over HTTP in {time.perf_counter() - started:.1f} s")


async def _greenlight(args: argparse.Namespace, signer: crd.CdsSigner, home: Path) -> None:
    from app.auth import cds_jwt
    from app.config import get_settings
    from app.demo.loader import load_demo_data
    from app.main import create_app
    from app.store.migrate import upgrade_database

    url = f"sqlite+aiosqlite:///{home / 'greenlight.db'}"
    os.environ.update(
        {
            "GREENLIGHT_DATABASE_URL": url,
            "GREENLIGHT_DATA_DIR": str(home / "data"),
            "GREENLIGHT_BASE_URL": BASE_URL,
            "GREENLIGHT_LOG_LEVEL": "warning",
            "GREENLIGHT_CDS_CLIENTS": signer.registration(),
            "GREENLIGHT_TOKEN_SECRET": secrets.token_hex(32),
        }
    )
    os.environ.setdefault("GREENLIGHT_IG_PACKAGES", str(crd.SHARED / "fhir-packages"))
    if args.callgrind:
        os.environ["GREENLIGHT_PAS_OUTBOX_POLL_SECONDS"] = "60"
    get_settings.cache_clear()
    await asyncio.to_thread(upgrade_database, url)
    await load_demo_data(get_settings())
    if args.no_signature:  # the name the verifier calls, replaced in its module
        cds_jwt.__dict__["signature_verifies"] = lambda *_: True
    app = create_app()
    async with app.router.lifespan_context(app):
        if args.grow and args.grow_via_http:
            await _grow_via_http(app, args.grow, args.concurrency)
        elif args.grow:
            await _grow(app.state.crd.deps.store, args.grow)
        if args.grow_orders:
            await _grow_orders(app, signer, args.grow_orders, args.concurrency)
        if args.callgrind:  # checkpoints run once per wall-clock second: hold them off
            app.state.crd.deps.store.database.writer.checkpoint_seconds = float("inf")
        await _measure(app, args, signer)


async def _bare(args: argparse.Namespace, signer: crd.CdsSigner) -> None:
    if not args.no_signature:
        os.environ.update(
            {
                "BENCH_BARE_CDS_JWKS": json.dumps(signer.public_jwks()),
                "BENCH_BARE_CDS_ISSUER": crd.ISSUER,
                "BENCH_BARE_CDS_JKU": crd.JKU,
                "BENCH_BARE_CDS_AUDIENCE": crd.service_url(BASE_URL),
            }
        )
    from bench.bare_app import app

    await _measure(app, args, signer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="measured calls (2000)")
    parser.add_argument("--warmup", type=int, default=320, help="calls before measuring (320)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight (16)")
    parser.add_argument("--bare", action="store_true", help="the bare app instead of Greenlight")
    parser.add_argument(
        "--no-signature", action="store_true", help="skip the ES384 check (see the docstring)"
    )
    parser.add_argument(
        "--grow", type=int, default=0, metavar="N", help="store N Patients before the calls"
    )
    parser.add_argument(
        "--grow-orders",
        type=int,
        default=0,
        metavar="N",
        help="answer N calls for new orders (crd-order-sign-new) before the calls",
    )
    parser.add_argument(
        "--grow-via-http",
        action="store_true",
        help="--grow by POSTing the Patients to the app, as the patient-create scenario does",
    )
    parser.add_argument(
        "--callgrind", action="store_true", help="run under valgrind --tool=callgrind"
    )
    parser.add_argument(
        "--perf-control",
        type=Path,
        metavar="FIFO",
        help="perf record's control FIFO: sampling on for the measured calls only",
    )
    args = parser.parse_args(argv)
    signer = crd.CdsSigner.generate("ES384")
    if args.bare:
        uvloop.run(_bare(args, signer))
        return 0
    home = Path(tempfile.mkdtemp(prefix="greenlight-inprocess-"))
    try:
        uvloop.run(_greenlight(args, signer, home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
