"""Orchestration: start Greenlight and the bare app, seed, drive each scenario, report.

With `--topics 10,10000` Greenlight is started once per topic count (one after the other, each
with a generated rules directory, a fresh database and the demo payer) and every scenario runs
against each; the bare app runs next to the first. The CRD scenarios sign a pool of fresh
CDS Hooks JWTs before each run (`bench/crd.py`) and the PAS one writes a pool of fresh Bundle and
Claim identifiers (`bench/pas.py`); the DTR scenarios' bodies are built while seeding
(`bench/dtr.py`). With `--database postgresql` every Greenlight gets a new database on a
throwaway PostgreSQL cluster (`app/devtools/postgres.py`, as the tests use) instead of SQLite.

Everything runs on loopback. Both servers are subprocesses in their own sessions (process
groups), so stopping one stops its uvicorn workers too; they (and the PostgreSQL cluster) are
stopped on any exit, including errors, Ctrl-C and SIGTERM. Every wait has a deadline, so a run
always ends.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from app.devtools.postgres import PostgresCluster, PostgresUnavailableError
from bench import crd, dtr, pas, topics
from bench.interleave import InterleavedSpec
from bench.loadgen import LoadResult, LoadSpec, pooled_head
from bench.scenarios import (
    DEFAULT_SCENARIOS,
    FHIR_JSON,
    PATIENT,
    PATIENT_BYTES,
    SCENARIOS,
    Scenario,
)

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.md"
CLIENT_ID = "greenlight-bench"
CLIENT_SCOPE = "system/*.cruds"
# What `Claim/$submit` requires of a token (app/api/operations/claim_submit.py): create on Claim.
PAS_SCOPE = "system/Claim.c"
# The FHIR IG packages Greenlight validates PAS request Bundles with (GREENLIGHT_IG_PACKAGES).
IG_PACKAGES = crd.SHARED / "fhir-packages"
DATABASES = ("sqlite", "postgresql")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
GREENLIGHT = "greenlight"
BARE = "bare"
CEILING = "raw (ceiling)"


class BenchError(RuntimeError):
    """The bench cannot go on (a server did not start, seeding failed, ...)."""


# --- subprocesses --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _group_processes(pgid: int) -> Iterator[tuple[str, list[bytes]]]:
    """(pid, stat fields after the command name) of every live process in group `pgid` (Linux).

    fields[0] is `state` (field 3 of stat(5)): pgrp is field 5, utime 14, stime 15."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == pgid:
                yield entry.name, fields
        except (OSError, ValueError, IndexError):
            continue


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group `pgid` (Linux)."""
    total = sum(int(f[11]) + int(f[12]) for _, f in _group_processes(pgid))
    return total / _CLOCK_TICKS


@dataclass
class Server:
    """A server subprocess in its own session; `stop()` ends the whole process group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    command: list[str]
    env: dict[str, str]
    cwd: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_process_group(self.process)

    def restart(self, ready_path: str, timeout: float = READY_TIMEOUT) -> None:
        """Stop the process and start the same command again (same port, environment, log),
        then wait until `ready_path` answers: a new process on whatever the old one left."""
        self.stop()
        self.process = _spawn(self.command, self.env, self.cwd, self.log_path, append=True)
        wait_ready(self, ready_path, timeout)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group led by `process`, then SIGKILL it after STOP_TIMEOUT."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    # Workers may outlive their parent: the group id is the leader's pid either way.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)


def start_server(
    name: str, command: list[str], port: int, env: dict[str, str], cwd: Path, logs: Path
) -> Server:
    log_path = logs / f"{_slug(name)}.log"
    process = _spawn(command, env, cwd, log_path, append=False)
    server = Server(name, port, process, log_path, command, env, cwd)
    _SERVERS.append(server)
    return server


def _spawn(
    command: list[str], env: dict[str, str], cwd: Path, log_path: Path, *, append: bool
) -> subprocess.Popen[bytes]:
    """`command` in a session of its own, its output to `log_path` (appended, or a new log)."""
    with open(log_path, "ab" if append else "wb") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def wait_ready(server: Server, path: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll `path` until it answers (any HTTP status), the process dies, or `timeout`."""
    deadline = time.monotonic() + timeout
    url = server.base_url + path
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            try:
                client.get(url)
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} did not answer within {timeout:g}s")
            time.sleep(0.1)


_SERVERS: list[Server] = []


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def clean_env() -> dict[str, str]:
    """The parent environment minus any GREENLIGHT_* / BENCH_* setting."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GREENLIGHT_", "BENCH_"))
    }


# --- SMART Backend Services ----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchClient:
    """The bench's registered SMART client: an RSA key and its public JWKS."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> BenchClient:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, uuid.uuid4().hex)

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key())
        )
        jwk.update({"kid": self.kid, "alg": "RS384", "use": "sig"})
        return {"keys": [jwk]}

    def registration(self) -> str:
        """The GREENLIGHT_CLIENTS value registering this client."""
        return json.dumps(
            [
                {
                    "client_id": CLIENT_ID,
                    "name": "greenlight bench",
                    "scopes": [CLIENT_SCOPE],
                    "jwks": self.jwks(),
                }
            ]
        )

    def assertion(self, token_url: str) -> str:
        now = int(time.time())
        claims = {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": token_url,
            "iat": now,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.private_key, algorithm="RS384", headers={"kid": self.kid})

    def fetch_token(self, base_url: str, scope: str = CLIENT_SCOPE) -> str:
        token_url = f"{base_url}/auth/token"
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion(token_url),
        }
        response = httpx.post(token_url, data=form, timeout=30.0)
        if response.status_code != 200:
            raise BenchError(
                f"POST {token_url} answered {response.status_code}: {response.text[:500]}"
                " (run with --no-auth while the token endpoint is unfinished)"
            )
        token: str = response.json()["access_token"]
        return token


def token_endpoint_available() -> bool:
    """Whether this checkout has the SMART token endpoint (`app/api/smart.py`)."""
    try:
        return importlib.util.find_spec("app.api.smart") is not None
    except ImportError:
        return False


# --- seeding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    patient_id: str
    # Greenlight's own answers, served verbatim by the bare app.
    bodies: dict[str, bytes]
    # Request bodies built while seeding, by scenario name (the `dtr` scenarios).
    requests: dict[str, bytes] = field(default_factory=dict)
    # What seeding found out, for the report (by topic, e.g. `dtr-package`).
    facts: dict[str, str] = field(default_factory=dict)

    def body(self, scenario: Scenario) -> bytes | None:
        """The body `scenario` sends when it was built while seeding (else its own)."""
        if scenario.kind != "dtr":
            return None
        if scenario.name not in self.requests:
            raise BenchError(f"{scenario.name}: no request body was built while seeding")
        return self.requests[scenario.name]


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(
            f"{what}: expected {status}, got {response.status_code}: {response.text[:500]}"
        )


def seed(greenlight: Server, token: str | None) -> Seed:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=greenlight.base_url, headers=headers, timeout=30.0) as client:
        created = client.post(
            "/fhir/Patient",
            content=PATIENT_BYTES,
            headers={"Content-Type": "application/fhir+json"},
        )
        _expect(created, 201, "seeding POST /fhir/Patient")
        patient_id: str = created.json()["id"]
        read = client.get(f"/fhir/Patient/{patient_id}")
        _expect(read, 200, f"seeding GET /fhir/Patient/{patient_id}")
        metadata = client.get("/fhir/metadata")
        _expect(metadata, 200, "seeding GET /fhir/metadata")
    if token:
        anonymous = httpx.get(f"{greenlight.base_url}/fhir/Patient/{patient_id}", timeout=30.0)
        _expect(anonymous, 401, "auth check: GET /fhir/Patient/{id} without a token")
    return Seed(
        patient_id,
        {"metadata": metadata.content, "patient": read.content, "created": created.content},
    )


def smoke_test(server: Server, scenario: Scenario, seed_: Seed, token: str | None) -> None:
    """One request of `scenario`, so a misconfigured target fails fast and says why."""
    headers = {"Accept": "application/fhir+json"}
    if token and scenario.authenticated:
        headers["Authorization"] = f"Bearer {token}"
    body = seed_.body(scenario)
    body = scenario.body if body is None else body
    if body:
        headers["Content-Type"] = "application/fhir+json"
    response = httpx.request(
        scenario.method,
        server.base_url + scenario.resolved_path(seed_.patient_id),
        content=body or None,
        headers=headers,
        timeout=30.0,
    )
    _expect(response, scenario.expected_status, f"{scenario.name} against {server.name}")


# --- CRD (CDS Hooks order-sign) ------------------------------------------------------------------

COVERAGE_INFORMATION = "ext-coverage-information"
# What the lumbar MRI order must be answered with on the Gold plan: the topic path is measured.
EXPECTED_ANSWER = {("pa-needed", "auth-needed"), ("doc-needed", "clinical")}


def coverage_answer(response: dict[str, Any]) -> set[tuple[str, str]]:
    """(sub-extension url, code) pairs of every coverage-information extension in a response."""
    found: set[tuple[str, str]] = set()
    for action in response.get("systemActions") or []:
        for extension in (action.get("resource") or {}).get("extension") or []:
            if str(extension.get("url", "")).endswith(COVERAGE_INFORMATION):
                for part in extension.get("extension") or []:
                    if "valueCode" in part:
                        found.add((part["url"], part["valueCode"]))
    return found


def crd_call(
    server: Server, signer: crd.CdsSigner, audience: str, *, token: str | None = None
) -> tuple[httpx.Response, str]:
    """One order-sign call (same order as `crd-order-sign`); the response and the JWT sent."""
    template = crd.request_template(HOST, server.port, distinct_orders=False)
    token = token or signer.token(audience)
    _head, body = template.fill(token, template.new_values())
    response = httpx.post(
        server.base_url + crd.SERVICE_PATH,
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        timeout=30.0,
    )
    return response, token


def seed_crd(greenlight: Server, signer: crd.CdsSigner) -> bytes:
    """Check Greenlight's CRD service answers the lumbar MRI with PA + documentation, refuses a
    replayed JWT and an unsigned call; its answer (for the bare app to send back)."""
    audience = crd.service_url(greenlight.base_url)
    response, token = crd_call(greenlight, signer, audience)
    _expect(response, 200, f"seeding POST {crd.SERVICE_PATH}")
    answer = coverage_answer(response.json())
    if not EXPECTED_ANSWER.issubset(answer):
        raise BenchError(
            f"CRD answered {sorted(answer)} for CPT {crd.ORDER_CODE}, expected "
            f"{sorted(EXPECTED_ANSWER)} (is the demo payer loaded, does the topic resolve?)"
        )
    replay, _ = crd_call(greenlight, signer, audience, token=token)
    _expect(replay, 401, f"auth check: POST {crd.SERVICE_PATH} with a replayed JWT")
    unsigned = httpx.post(
        greenlight.base_url + crd.SERVICE_PATH,
        content=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=30.0,
    )
    _expect(unsigned, 401, f"auth check: POST {crd.SERVICE_PATH} without a JWT")
    return response.content


def crd_smoke_test(server: Server, signer: crd.CdsSigner, audience: str) -> None:
    response, _ = crd_call(server, signer, audience)
    _expect(response, 200, f"POST {crd.SERVICE_PATH} against {server.name}")


# --- DTR ($questionnaire-package, $next-question) ------------------------------------------------


def seed_dtr(greenlight: Server, token: str | None, seeded: Seed) -> None:
    """Build the DTR scenarios' requests against Greenlight, check its answers and capture them
    (`bench/dtr.py`), into `seeded`."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=greenlight.base_url, headers=headers, timeout=30.0) as client:
        try:
            found = dtr.seed(client)
        except dtr.DtrError as exc:
            raise BenchError(str(exc)) from exc
    if token:
        anonymous = httpx.post(
            greenlight.base_url + dtr.NEXT_QUESTION_PATH,
            content=found.requests["dtr-next-question"],
            headers={"Content-Type": "application/fhir+json"},
            timeout=30.0,
        )
        _expect(anonymous, 401, f"auth check: POST {dtr.NEXT_QUESTION_PATH} without a token")
    seeded.bodies.update(found.answers)
    seeded.requests.update(found.requests)
    seeded.facts.update(found.facts)
    for name, fact in found.facts.items():
        print(f"  {name}: {fact}")


# --- PAS (Claim/$submit) -------------------------------------------------------------------------


def seed_pas(greenlight: Server, token: str | None, seeded: Seed) -> None:
    """Check that Greenlight certifies the PAS approval variant (A1) as a new request each time
    and capture its answer (`bench/pas.py`), into `seeded`; `token` is one holding only
    `system/Claim.c`, what `$submit` needs."""
    template = pas.request_template(HOST, greenlight.port, token)
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=greenlight.base_url, headers=headers, timeout=60.0) as client:
        try:
            found = pas.seed(client, template)
        except pas.PasError as exc:
            raise BenchError(str(exc)) from exc
    if token:
        anonymous = httpx.post(
            greenlight.base_url + pas.SUBMIT_PATH,
            content=template.fill(pas.new_values()),
            headers={"Content-Type": "application/fhir+json"},
            timeout=30.0,
        )
        _expect(anonymous, 401, f"auth check: POST {pas.SUBMIT_PATH} without a token")
    seeded.bodies["pas-submit"] = found.answer
    seeded.facts.update(found.facts)
    for name, fact in found.facts.items():
        print(f"  {name}: {fact}")


def pas_smoke_test(server: Server, token: str | None) -> None:
    """One new submission, so a misconfigured target fails fast and says why."""
    template = pas.request_template(HOST, server.port, token)
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = httpx.post(
        server.base_url + pas.SUBMIT_PATH,
        content=template.fill(pas.new_values()),
        headers=headers,
        timeout=60.0,
    )
    _expect(response, 200, f"POST {pas.SUBMIT_PATH} against {server.name}")


# --- load runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    scenario: str
    target: str
    result: LoadResult
    # Server CPU seconds over the whole load run (warm-up included) and the requests it served.
    server_cpu_s: float
    wall_s: float
    round: int = 1  # with --rounds: which pass over the targets this run belongs to
    rounds: int = 1

    @property
    def label(self) -> str:
        """The target, with its round when there are several."""
        return self.target if self.rounds == 1 else f"{self.target}, round {self.round}"

    @property
    def server_cpu_ms_per_request(self) -> float:
        completed = self.result.completed_total
        return self.server_cpu_s * 1000 / completed if completed else 0.0

    @property
    def generator_cpu_pct(self) -> float:
        elapsed = self.result.elapsed_s
        return 100 * self.result.generator_cpu_s / elapsed if elapsed else 0.0


def run_load(spec: LoadSpec, env: dict[str, str]) -> LoadResult:
    """Run the load generator in its own process (so it has a core and a loop of its own)."""
    limit = spec.warmup + spec.duration + spec.timeout + 30
    return LoadResult.from_json(_generate("bench.loadgen", spec.to_json(), limit, env))


def run_interleaved(spec: InterleavedSpec, env: dict[str, str]) -> list[LoadResult]:
    """Run the interleaving generator (`bench.interleave`) in its own process."""
    first, second = spec.first, spec.second
    slices = (first.warmup + first.duration + second.warmup + second.duration) / spec.slice_s
    limit = slices * spec.slice_s + slices * 0.1 + max(first.timeout, second.timeout) + 30
    out = json.loads(_generate("bench.interleave", spec.to_json(), limit, env))
    return [LoadResult.from_json(json.dumps(result)) for result in out]


def _generate(module: str, spec_json: str, limit: float, env: dict[str, str]) -> str:
    """Run a generator module on `spec_json` (stdin) within `limit` seconds; its stdout."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(spec_json.encode(), timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator did not finish within {limit:g}s") from exc
    finally:
        stop_process_group(process)
    if process.returncode != 0:
        raise BenchError(f"the load generator failed:\n{err.decode(errors='replace')[-2000:]}")
    return out.decode()


def measure(server: Server, scenario: Scenario, spec: LoadSpec, env: dict[str, str]) -> Run:
    print(f"  {scenario.name:<18} {server.name:<24} ", end="", flush=True)
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    result = run_load(spec, env)
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    print(_result_line(result), flush=True)
    _check_alive(server, scenario)
    return Run(scenario.name, server.name, result, cpu, wall)


def measure_interleaved(
    servers: tuple[Server, Server], scenario: Scenario, spec: InterleavedSpec, env: dict[str, str]
) -> list[Run]:
    """Both servers driven in alternating slices by one generator (`bench.interleave`); each
    one's CPU time is what it used over the whole run (the other slices it sits idle)."""
    cpu_before = [server.cpu_seconds() for server in servers]
    started = time.monotonic()
    results = run_interleaved(spec, env)
    wall = time.monotonic() - started
    runs = []
    for server, before, result in zip(servers, cpu_before, results, strict=True):
        print(f"  {scenario.name:<18} {server.name:<24} {_result_line(result)}", flush=True)
        _check_alive(server, scenario)
        runs.append(Run(scenario.name, server.name, result, server.cpu_seconds() - before, wall))
    return runs


def _result_line(result: LoadResult) -> str:
    return (
        f"{result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
        f"  errors {result.errors}"
    )


def _check_alive(server: Server, scenario: Scenario) -> None:
    if server.process.poll() is not None:
        raise BenchError(
            f"{server.name} died during {scenario.name} "
            f"(exit status {server.process.returncode}):\n{server.log_tail()}"
        )


# A first guess of each target's requests/s, to size the first pool (then learned).
GREENLIGHT_RATE_GUESS = 800.0
BARE_RATE_GUESS = {"ES384": 900.0, "RS384": 2500.0}
PAS_RATE_GUESS = {GREENLIGHT: 100.0, BARE: 2000.0}
POOL_ATTEMPTS = 3
# With --interleave: the start of each measured slice left out (the target's queue fills up).
INTERLEAVE_SETTLE = 0.1


@dataclass
class CrdLoad:
    """What the CRD scenarios need: the EHR's key and each target's learned request rate."""

    signer: crd.CdsSigner
    pools: Path
    rates: dict[str, float]

    def rate(self, target: str) -> float:
        if target in self.rates:
            return self.rates[target]
        return BARE_RATE_GUESS[self.signer.alg] if target == BARE else GREENLIGHT_RATE_GUESS


@dataclass(frozen=True)
class PooledRequests:
    """Requests that must all differ: templates with slots, and how to write a pool of slot
    values for them (`write(path, count)` -> seconds spent)."""

    head: bytes
    body: bytes
    head_slots: int
    # What `count` pool lines are, for the progress line ("ES384 JWTs signed").
    what: str
    write: Callable[[Path, int], float]


def measure_pooled(
    server: Server,
    scenario: Scenario,
    requests: PooledRequests,
    rates: dict[str, float],
    first_guess: float,
    pools: Path,
    args: argparse.Namespace,
    env: dict[str, str],
) -> Run:
    """A run of pooled requests: write a pool large enough for the run (from the target's rate:
    `first_guess`, then learned into `rates`), then drive it; when the pool runs out (the target
    was faster than guessed), write a larger one and run again."""
    rate = rates.get(server.name, first_guess)
    for _attempt in range(POOL_ATTEMPTS):
        spec, pool = _pooled_spec(server, scenario, requests, rate, pools, args)
        run = measure(server, scenario, spec, env)
        pool.unlink(missing_ok=True)
        if not run.result.pool_exhausted:
            # Twice the rate seen: the next run of this target may well be faster.
            rates[server.name] = max(2 * _observed_rate(run, rate), 1.0)
            return run
        rate = max(_observed_rate(run, rate), rate) * 1.6
        print(
            f"  (the pool of {run.result.pool_used:,} requests ran out: "
            "running again with a larger one)"
        )
    raise BenchError(f"{scenario.name} against {server.name}: the request pool kept running out")


def _pooled_spec(
    server: Server,
    scenario: Scenario,
    requests: PooledRequests,
    rate: float,
    pools: Path,
    args: argparse.Namespace,
) -> tuple[LoadSpec, Path]:
    """A pool for a run at `rate` requests/s (with a margin) and the spec that uses it."""
    count = math.ceil(rate * (args.warmup + args.duration + 1) * 1.25) + 4 * args.concurrency
    pool = pools / f"{_slug(server.name)}-{scenario.name}.pool"
    seconds = requests.write(pool, count)
    print(f"  ({count:,} {requests.what} in {seconds:.1f}s)", flush=True)
    spec = LoadSpec(
        host=HOST,
        port=server.port,
        request=b"",
        expected_status=scenario.expected_status,
        concurrency=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        timeout=args.timeout,
        pool_path=str(pool),
        head_template=requests.head,
        body_template=requests.body,
        head_slots=requests.head_slots,
    )
    return spec, pool


def _observed_rate(run: Run, guess: float) -> float:
    result = run.result
    return result.completed_total / result.ran_s if result.ran_s else guess


def _crd_requests(
    server: Server, scenario: Scenario, audience: str, load: CrdLoad, args: argparse.Namespace
) -> PooledRequests:
    """CRD calls to `server`: a fresh signed JWT each (never replayed)."""
    template = crd.request_template(HOST, server.port, distinct_orders=scenario.distinct_orders)
    lifetime = int(min(3600, 2 * (args.warmup + args.duration) + args.timeout + 600))

    def write(path: Path, count: int) -> float:
        return crd.write_pool(path, load.signer, audience, template, count, lifetime=lifetime)

    return PooledRequests(template.head, template.body, 1, f"{load.signer.alg} JWTs signed", write)


def measure_crd(
    server: Server,
    scenario: Scenario,
    audience: str,
    load: CrdLoad,
    args: argparse.Namespace,
    env: dict[str, str],
) -> Run:
    """A CRD run: a pool of fresh signed JWTs (one per request, never replayed)."""
    requests = _crd_requests(server, scenario, audience, load, args)
    return measure_pooled(
        server, scenario, requests, load.rates, load.rate(server.name), load.pools, args, env
    )


def measure_crd_interleaved(
    servers: tuple[Server, Server],
    scenario: Scenario,
    audiences: tuple[str, str],
    load: CrdLoad,
    args: argparse.Namespace,
    env: dict[str, str],
) -> list[Run]:
    """A CRD run of both servers in alternating slices of `args.interleave` seconds (see
    `bench.interleave`), each with its own pool of fresh signed JWTs (for the `aud` of the same
    position in `audiences`)."""
    rates = {server.name: load.rate(server.name) for server in servers}
    for _attempt in range(POOL_ATTEMPTS):
        first, second = (
            _pooled_spec(
                server,
                scenario,
                _crd_requests(server, scenario, audience, load, args),
                rates[server.name],
                load.pools,
                args,
            )
            for server, audience in zip(servers, audiences, strict=True)
        )
        spec = InterleavedSpec(first[0], second[0], args.interleave, INTERLEAVE_SETTLE)
        runs = measure_interleaved(servers, scenario, spec, env)
        first[1].unlink(missing_ok=True)
        second[1].unlink(missing_ok=True)
        if not any(run.result.pool_exhausted for run in runs):
            for server, run in zip(servers, runs, strict=True):
                load.rates[server.name] = max(2 * _observed_rate(run, rates[server.name]), 1.0)
            return runs
        for server, run in zip(servers, runs, strict=True):
            rates[server.name] = (
                max(_observed_rate(run, rates[server.name]), rates[server.name]) * 1.6
            )
        print("  (a request pool ran out: running again with larger ones)")
    raise BenchError(f"{scenario.name}, interleaved: the request pools kept running out")


def measure_pas(
    server: Server,
    scenario: Scenario,
    token: str | None,
    rates: dict[str, float],
    pools: Path,
    args: argparse.Namespace,
    env: dict[str, str],
) -> Run:
    """A PAS run: a pool of fresh Bundle and Claim identifiers (each request a new submission)."""
    template = pas.request_template(HOST, server.port, token)

    def write(path: Path, count: int) -> float:
        return pas.write_pool(path, template, count)

    requests = PooledRequests(template.head, template.body, 0, "fresh identifier pairs", write)
    guess = PAS_RATE_GUESS[BARE if server.name == BARE else GREENLIGHT]
    return measure_pooled(server, scenario, requests, rates, guess, pools, args, env)


# --- growing a database before it is measured (--grow-patients, --grow-orders, bench.growth) ---

_MEMBER_ID_SLOT = "GROWTH-MEMBER-ID"
# Growing is set-up, not measurement: a generous deadline for the generator run that does it.
_GROWTH_RATE_FLOOR = 50.0


def patient_requests(host: str, port: int, token: str) -> tuple[bytes, bytes]:
    """`patient-create`'s request as (head, body) templates: a `%d` Content-Length in the head,
    a `%b` member identifier in the body (`bench.loadgen`'s pooled requests)."""
    identifier = {**PATIENT["identifier"][0], "value": _MEMBER_ID_SLOT}
    raw = orjson.dumps({**PATIENT, "identifier": [identifier]}).replace(b"%", b"%%")
    body = raw.replace(_MEMBER_ID_SLOT.encode("ascii"), b"%b")
    return pooled_head("/fhir/Patient", host, port, token, FHIR_JSON), body


def _send_all(
    instance: Instance,
    what: str,
    spec: LoadSpec,
    count: int,
    env: dict[str, str],
) -> None:
    """Run the generator over a pool of `count` requests until it runs out; all must succeed."""
    result = run_load(spec, env)
    answered = result.completed_total
    if result.errors or answered != count:
        raise BenchError(
            f"growing {instance.server.name}: {answered:,} of {count:,} {what} answered as "
            f"expected, errors {result.error_kinds}\n{instance.server.log_tail()}"
        )


def _growth_spec(
    instance: Instance, pool: Path, templates: tuple[bytes, bytes, int], status: int, count: int
) -> LoadSpec:
    """A generator run over `count` pooled requests (`templates`: head, body, head slots), each
    to be answered `status`."""
    head, body, head_slots = templates
    return LoadSpec(
        host=HOST,
        port=instance.server.port,
        request=b"",
        expected_status=status,
        concurrency=16,
        warmup=0.0,
        duration=count / _GROWTH_RATE_FLOOR + 60,  # ends when the pool runs out
        timeout=30.0,
        pool_path=str(pool),
        head_template=head,
        body_template=body,
        head_slots=head_slots,
    )


def grow(
    instance: Instance,
    signer: crd.CdsSigner | None,
    patients: int,
    orders: int,
    work: Path,
    env: dict[str, str],
) -> float:
    """Create `patients` Patients and answer `orders` new orders on `instance` (`signer` signs
    their JWTs), through its own APIs, pooled through the load generator; the seconds."""
    started = time.monotonic()
    if patients:
        if instance.token is None:
            raise BenchError("growing by Patients needs auth on (a bearer token)")
        head, body = patient_requests(HOST, instance.server.port, instance.token)
        pool = work / "patients.pool"
        pool.write_text(
            "".join(f"GROW-{n:09d}-{secrets.token_hex(4)}\n" for n in range(patients)),
            encoding="ascii",
        )
        print(f"creating {patients:,} Patients on {instance.server.name}", flush=True)
        spec = _growth_spec(instance, pool, (head, body, 0), 201, patients)
        _send_all(instance, "Patient creates", spec, patients, env)
    if orders:
        if signer is None:
            raise BenchError("growing by new orders needs the bench EHR's key (a crd scenario)")
        template = crd.request_template(HOST, instance.server.port, distinct_orders=True)
        pool = work / "orders.pool"
        audience = crd.service_url(instance.server.base_url)
        print(f"signing {orders:,} JWTs for as many new orders", flush=True)
        crd.write_pool(pool, signer, audience, template, orders, lifetime=3600)
        print(f"answering {orders:,} new orders on {instance.server.name}", flush=True)
        spec = _growth_spec(instance, pool, (template.head, template.body, 1), 200, orders)
        _send_all(instance, "order-sign calls", spec, orders, env)
    return time.monotonic() - started


# --- report --------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return "uncommitted"


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def _bare_runs(runs: list[Run]) -> dict[tuple[str, int], Run]:
    """The bare app's run of each (scenario, round): Greenlight is compared with the bare app
    measured in the same round, minutes apart at most."""
    return {(run.scenario, run.round): run for run in runs if run.target == BARE}


def render_table(runs: list[Run]) -> str:
    header = (
        "| scenario | target | req/s | p50 ms | p90 ms | p99 ms | errors "
        "| p50 vs bare | p99 vs bare | req/s vs bare | server CPU ms/req | generator CPU |"
    )
    lines = [header, "|" + "---|" * 12]
    bare = _bare_runs(runs)
    for run in runs:
        r = run.result
        reference = bare.get((run.scenario, run.round))
        if not run.target.startswith(GREENLIGHT) or reference is None:
            p50_ratio = p99_ratio = rps_ratio = "1.00x" if run.target == BARE else "-"
        else:
            p50_ratio = _ratio(r.p50_ms, reference.result.p50_ms)
            p99_ratio = _ratio(r.p99_ms, reference.result.p99_ms)
            rps_ratio = _ratio(r.rps, reference.result.rps)
        lines.append(
            f"| {run.scenario} | {run.label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.errors} | {p50_ratio} | {p99_ratio} | {rps_ratio} "
            f"| {run.server_cpu_ms_per_request:.3f} | {run.generator_cpu_pct:.0f}% |"
        )
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def verdict(runs: list[Run]) -> str | None:
    """The done-when check: `patient-read` p50 within 2x and throughput >= 0.5x of bare."""
    reads = [run for run in runs if run.scenario == "patient-read"]
    gl = next((run for run in reads if run.target.startswith(GREENLIGHT)), None)
    bare = next((run for run in reads if run.target == BARE), None)
    if gl is None or bare is None or not bare.result.p50_ms or not bare.result.rps:
        return None
    p50 = gl.result.p50_ms / bare.result.p50_ms
    rps = gl.result.rps / bare.result.rps
    ok = p50 <= 2.0 and rps >= 0.5
    return (
        f"**patient-read target (p50 <= 2x bare, throughput >= 0.5x bare): "
        f"{_met(ok)}** - p50 {p50:.2f}x "
        f"({'ok' if p50 <= 2.0 else 'over'}), throughput {rps:.2f}x "
        f"({'ok' if rps >= 0.5 else 'under'})."
    )


CRD_P50_TARGET = 1.5
CRD_P99_TARGET = 2.0
TOPIC_TARGET = 1.2


def crd_verdicts(runs: list[Run]) -> list[str]:
    """Issue 4's check on `crd-order-sign`: p50 within 1.5x and p99 within 2x of the bare app
    (the same check on `crd-order-sign-new` is shown for information)."""
    bare = _bare_runs(runs)
    out = []
    ratios: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in runs:
        reference = bare.get((run.scenario, run.round))
        if (
            not run.scenario.startswith("crd-")
            or not run.target.startswith(GREENLIGHT)
            or reference is None
            or not reference.result.p50_ms
            or not reference.result.p99_ms
        ):
            continue
        p50 = run.result.p50_ms / reference.result.p50_ms
        p99 = run.result.p99_ms / reference.result.p99_ms
        ok = p50 <= CRD_P50_TARGET and p99 <= CRD_P99_TARGET
        kind = "target" if run.scenario == "crd-order-sign" else "same check, for information"
        out.append(
            f"**{run.scenario} / {run.label} {kind} (p50 <= {CRD_P50_TARGET:g}x bare, "
            f"p99 <= {CRD_P99_TARGET:g}x bare): {_met(ok)}** - p50 {p50:.2f}x, p99 {p99:.2f}x."
        )
        ratios.setdefault((run.scenario, run.target), []).append((p50, p99))
    for (scenario, target), pairs in ratios.items():
        if len(pairs) < 2:
            continue
        p50 = statistics.median(p for p, _ in pairs)
        p99 = statistics.median(p for _, p in pairs)
        ok = p50 <= CRD_P50_TARGET and p99 <= CRD_P99_TARGET
        out.append(
            f"**{scenario} / {target}, median of {len(pairs)} rounds (each beside the bare app "
            f"of its round): {_met(ok)}** - p50 {p50:.2f}x, p99 {p99:.2f}x."
        )
    return out


# Issue 5: `$next-question` follow-up calls answered within 100 ms at p99 (the IG allows 1 s).
DTR_NEXT_QUESTION_P99_MS = 100.0


def _beside_bare(run: Run, reference: Run | None, *, with_rps: bool) -> str:
    """The verdict line's comparison with the bare app ("" without a bare run)."""
    if reference is None or not reference.result.p50_ms or not reference.result.p99_ms:
        return ""
    r, b = run.result, reference.result
    rate = f"{b.rps:,.0f} req/s, " if with_rps else ""
    return (
        f" Bare app {rate}p50 {b.p50_ms:.2f} ms, p99 {b.p99_ms:.2f} ms: Greenlight p50 "
        f"{r.p50_ms / b.p50_ms:.2f}x, p99 {r.p99_ms / b.p99_ms:.2f}x."
    )


def dtr_verdicts(runs: list[Run]) -> list[str]:
    """Issue 5's check on `dtr-next-question` (p99 <= 100 ms), and each DTR scenario beside the
    bare app (p50 and p99 ratios, for information)."""
    bare = _bare_runs(runs)
    out = []
    for run in runs:
        if not run.scenario.startswith("dtr-") or not run.target.startswith(GREENLIGHT):
            continue
        r = run.result
        beside = _beside_bare(run, bare.get((run.scenario, run.round)), with_rps=False)
        if run.scenario == "dtr-next-question":
            ok = r.requests > 0 and r.errors == 0 and r.p99_ms <= DTR_NEXT_QUESTION_P99_MS
            out.append(
                f"**{run.scenario} / {run.label} target (follow-up p99 <= "
                f"{DTR_NEXT_QUESTION_P99_MS:g} ms, no errors): {_met(ok)}** - p50 "
                f"{r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {r.errors} errors.{beside}"
            )
        else:
            out.append(
                f"**{run.scenario} / {run.label}** (for information) - p50 {r.p50_ms:.2f} ms, "
                f"p99 {r.p99_ms:.2f} ms, {r.errors} errors.{beside}"
            )
    return out


# Issue 6: `Claim/$submit` on the certified path, 16 concurrent, answered within 1 s at p99.
PAS_SUBMIT_P99_MS = 1000.0


def pas_verdicts(runs: list[Run]) -> list[str]:
    """Issue 6's check on `pas-submit` (p99 < 1 s, no errors), beside the bare app."""
    bare = _bare_runs(runs)
    out = []
    for run in runs:
        if run.scenario != "pas-submit" or not run.target.startswith(GREENLIGHT):
            continue
        r = run.result
        beside = _beside_bare(run, bare.get((run.scenario, run.round)), with_rps=True)
        ok = r.requests > 0 and r.errors == 0 and r.p99_ms < PAS_SUBMIT_P99_MS
        out.append(
            f"**{run.scenario} / {run.label} target (certified path, p99 < "
            f"{PAS_SUBMIT_P99_MS:g} ms, no errors): {_met(ok)}** - {r.rps:,.0f} req/s, p50 "
            f"{r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {r.errors} errors, server CPU "
            f"{run.server_cpu_ms_per_request:.1f} ms/req.{beside}"
        )
    return out


@dataclass(frozen=True)
class TopicStartup:
    """Start-up facts of one Greenlight instance started with a generated rules directory."""

    target: str
    topics: int
    synthetic: int
    codes: int
    generate_s: float
    # `load_topics` alone, in a fresh process (bench/topics.py `time`).
    load_s: float
    # From spawning `greenlight serve` to its first answer (imports, migrations, topics).
    ready_s: float
    rss_mb: float


def render_topic_table(startups: list[TopicStartup]) -> str:
    lines = [
        "| target | topics | synthetic | indexed codes | generate s | load_topics s "
        "| load ms/topic | serve ready s | server RSS MB |",
        "|" + "---|" * 9,
    ]
    for s in startups:
        lines.append(
            f"| {s.target} | {s.topics:,} | {s.synthetic:,} | {s.codes:,} | {s.generate_s:.1f} "
            f"| {s.load_s:.2f} | {1000 * s.load_s / s.topics:.2f} | {s.ready_s:.1f} "
            f"| {s.rss_mb:.0f} |"
        )
    return "\n".join(lines)


def topic_verdicts(runs: list[Run], startups: list[TopicStartup]) -> list[str]:
    """Most topics vs fewest, per scenario: p50 and req/s within 1.2x. With several rounds the
    two are compared round by round (each pair measured minutes apart) and the medians judged.
    Both CRD scenarios are targets: `crd-order-sign-new` decides every call with the rules
    engine, `crd-order-sign` mostly reuses the assertion of an unchanged order."""
    if len(startups) < 2:
        return []
    few, many = startups[0], startups[-1]
    by_key = {(run.scenario, run.target, run.round): run for run in runs}
    out = []
    for scenario in dict.fromkeys(run.scenario for run in runs):
        pairs = []
        for round_number in sorted({run.round for run in runs}):
            small = by_key.get((scenario, few.target, round_number))
            large = by_key.get((scenario, many.target, round_number))
            if small is None or large is None or not small.result.p50_ms or not large.result.rps:
                continue
            pairs.append((small.result, large.result))
        if not pairs:
            continue
        p50 = statistics.median(large.p50_ms / small.p50_ms for small, large in pairs)
        rps = statistics.median(small.rps / large.rps for small, large in pairs)
        ok = p50 <= TOPIC_TARGET and rps <= TOPIC_TARGET
        kind = "target" if scenario.startswith("crd-order-sign") else "for information"
        each = "; ".join(
            f"{large.p50_ms:.2f} vs {small.p50_ms:.2f} ms, {large.rps:,.0f} vs {small.rps:,.0f} "
            "req/s"
            for small, large in pairs
        )
        how = f"median of {len(pairs)} rounds, " if len(pairs) > 1 else ""
        out.append(
            f"**{scenario}, {many.topics:,} vs {few.topics:,} topics {kind} (within "
            f"{TOPIC_TARGET:g}x): {_met(ok)}** - {how}p50 {p50:.2f}x, req/s "
            f"{1 / rps if rps else 0:.2f}x ({each}; the check is that the {few.topics:,}-topic "
            f"req/s is at most {TOPIC_TARGET:g}x the {many.topics:,}-topic)."
        )
    return out


def render_markdown(
    runs: list[Run],
    facts: dict[str, str],
    errors: dict[str, dict[str, int]],
    startups: list[TopicStartup] | None = None,
) -> str:
    out = ["# Greenlight benchmark", ""]
    out += [f"- **{key}**: {value}" for key, value in facts.items()]
    out += ["", render_table(runs), ""]
    checks = [verdict(runs), *crd_verdicts(runs), *dtr_verdicts(runs), *pas_verdicts(runs)]
    for check in checks:
        if check:
            out += [check, ""]
    if startups:
        out += ["## Topic scaling", "", render_topic_table(startups), ""]
        out += [f"{check}\n" for check in topic_verdicts(runs, startups)]
    if errors:
        out += ["Errors by kind:", ""]
        out += [f"- {label}: {kinds}" for label, kinds in errors.items()]
        out.append("")
    out += [
        "Latencies are measured by the client (write of the request to the last byte of the "
        "answer) over successful requests of the measured window; percentiles are exact "
        "(nearest rank over every sample). Ratios are Greenlight / bare. Server CPU is the "
        "CPU time of the server's processes divided by the requests they answered (warm-up "
        "included); generator CPU is the load generator's share of one core. See bench/README.md.",
        "",
    ]
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------------


def _topic_counts(text: str | None, parser: argparse.ArgumentParser) -> list[int]:
    if not text:
        return []
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error("--topics takes comma-separated integers, e.g. 10,10000")
    minimum = len(topics.shipped_topics())
    if not counts or any(count < minimum for count in counts):
        parser.error(f"--topics: each count must be at least {minimum} (the shipped topics)")
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load Greenlight and a bare FastAPI app over loopback; print the comparison.",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, from: {', '.join(SCENARIOS)} (default: %(default)s)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="virtual clients (16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, both servers")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--no-auth", action="store_true", help="run Greenlight in demo mode without tokens"
    )
    auth.add_argument(
        "--auth",
        action="store_true",
        help="insist on SMART auth (default: on when the token endpoint exists)",
    )
    parser.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the generator-ceiling run against a raw asyncio server",
    )
    parser.add_argument(
        "--topics",
        metavar="N,M,...",
        help="start Greenlight once per topic count, each with a generated rules directory "
        "(the shipped topics + synthetic ones), and run every scenario against each",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times, in turn (A, B, A, B...); ratios are taken "
        "within a round and their median judged (default %(default)s)",
    )
    parser.add_argument(
        "--fresh-servers",
        action="store_true",
        help="with --rounds: start Greenlight and the bare app afresh for every round (two "
        "processes of the same code differ by up to ~10%% in CPU per request), so that the "
        "median over rounds is not one pair of processes' luck",
    )
    parser.add_argument(
        "--interleave",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="CRD scenarios: drive Greenlight and the bare app in alternating slices of this "
        "many seconds (one generator, one target at a time; --warmup and --duration are each "
        "target's totals), so both see the same phases of the machine (default: one target's "
        "whole run, then the other's)",
    )
    parser.add_argument(
        "--cds-alg",
        choices=crd.ALGORITHMS,
        default="ES384",
        help="how the bench EHR signs its CDS Hooks JWTs (%(default)s)",
    )
    parser.add_argument(
        "--grow-patients",
        type=int,
        default=0,
        metavar="N",
        help="before measuring, create N Patients on each Greenlight (patient-create's body, "
        "each with its own member id): a grown database (bench/README.md, *Growth*)",
    )
    parser.add_argument(
        "--grow-orders",
        type=int,
        default=0,
        metavar="N",
        help="before measuring, answer N new orders (crd-order-sign-new) on each Greenlight",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=READY_TIMEOUT,
        help="seconds a server may take to start (%(default)s; raised for large topic sets)",
    )
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default="sqlite",
        help="Greenlight's database: a SQLite file, or a throwaway PostgreSQL cluster started "
        "(and stopped) by the run (%(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="markdown report (%(default)s)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (database, logs)"
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    args.scenario_list = [SCENARIOS[name] for name in names]
    args.topic_counts = _topic_counts(args.topics, parser)
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    if args.fresh_servers and args.topics:
        parser.error("--fresh-servers is for one Greenlight at a time: not with --topics")
    if args.concurrency < 1 or args.workers < 1:
        parser.error("--concurrency and --workers must be at least 1")
    if not 0 < args.duration <= 1800 or not 0 <= args.warmup <= 600:
        parser.error("--duration must be in (0, 1800] and --warmup in [0, 600]")
    if args.interleave and not INTERLEAVE_SETTLE < args.interleave <= 60:
        parser.error(f"--interleave must be in ({INTERLEAVE_SETTLE:g}, 60] seconds")
    if args.no_auth and any(s.kind == "crd" for s in args.scenario_list):
        parser.error("the crd scenarios need auth on (CDS Hooks JWTs are verified only then)")
    if args.grow_patients < 0 or args.grow_orders < 0:
        parser.error("--grow-patients and --grow-orders must be at least 0")
    if args.grow_patients and args.no_auth:
        parser.error("--grow-patients needs auth on (the Patients are created with a token)")
    if args.grow_orders and not any(s.kind == "crd" for s in args.scenario_list):
        parser.error("--grow-orders needs a crd scenario (the bench EHR's key signs the orders)")
    return args


def _greenlight_base() -> list[str]:
    script = Path(sys.executable).with_name("greenlight")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def _greenlight_command(port: int, workers: int, auth: bool) -> list[str]:
    command = [
        *_greenlight_base(),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return command if auth else [*command, "--demo", "--no-auth"]


def _bare_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="greenlight-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    auth = not args.no_auth and (args.auth or token_endpoint_available())
    if not auth and not args.no_auth:
        print("note: app/api/smart.py (the token endpoint) is missing: running with auth OFF")
    startups: list[TopicStartup] = []
    args.load_before = _load_average()
    with _workspace(args.keep) as work, _databases(args.database) as databases:
        args.database_fact = databases.describe()
        try:
            runs = _drive(args, auth, work, startups, databases)
        finally:
            stop_all()  # Greenlight first, then (leaving the `with`) its database server
    report(args, auth, runs, startups)
    return 0


@dataclass(frozen=True)
class Databases:
    """Where each Greenlight instance gets a new, empty database: a SQLite file in its own
    directory, or a new database on the throwaway PostgreSQL cluster."""

    cluster: PostgresCluster | None = None

    def new_url(self, home: Path) -> str:
        if self.cluster is None:
            return f"sqlite+aiosqlite:///{home / 'bench.db'}"
        try:
            return self.cluster.create_database()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise BenchError(f"creating a PostgreSQL database failed: {exc}") from exc

    def describe(self) -> str:
        if self.cluster is None:
            return "SQLite (WAL, one group-committing write connection) in a temporary directory"
        return (
            f"PostgreSQL {self.cluster.version} (asyncpg), a throwaway cluster on 127.0.0.1 "
            "started for this run as the tests start theirs (app/devtools/postgres.py: fsync, "
            "synchronous_commit and full_page_writes off), a new database per Greenlight"
        )


@contextlib.contextmanager
def _databases(kind: str) -> Iterator[Databases]:
    """The database backend for the run; a PostgreSQL cluster is stopped (and its files deleted)
    on any exit."""
    if kind == "sqlite":
        yield Databases()
        return
    print("starting a throwaway PostgreSQL cluster", flush=True)
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailableError as exc:
        raise BenchError(f"{exc}; `make postgres-server` installs it") from exc
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"PostgreSQL did not start: {exc}") from exc
    print(f"  PostgreSQL {cluster.version} on {HOST}:{cluster.port}", flush=True)
    try:
        yield Databases(cluster)
    finally:
        try:
            cluster.stop()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"stopping PostgreSQL failed: {exc}", file=sys.stderr)


def _load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def _load_fact(before: str, after: str) -> str:
    fact = f"load average (1, 5, 15 min) {before} at the start, {after} at the end"
    cores = os.cpu_count() or 1
    try:
        busy = max(float(before.split()[0]), float(after.split()[0])) > cores
    except (ValueError, IndexError):
        busy = False
    if busy:
        fact += (
            f" - above {cores}, the core count: something else was running, absolute numbers "
            "are low and noisy (server CPU ms/req is the steadiest column)"
        )
    return fact


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every live process in the process group `pgid`, in MB (Linux)."""
    total_kb = 0
    for pid, _ in _group_processes(pgid):
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024


def _subprocess(command: list[str], env: dict[str, str], timeout: float, what: str) -> str:
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} did not finish within {timeout:g}s") from exc
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}):\n{(done.stderr or '')[-2000:]}")
    return done.stdout


@dataclass
class Instance:
    """A started Greenlight and what was captured from it while seeding."""

    server: Server
    token: str | None
    seed: Seed
    home: Path  # its database (SQLite) and data directory


def start_greenlight(
    args: argparse.Namespace,
    auth: bool,
    work: Path,
    base_env: dict[str, str],
    label: str,
    *,
    client: BenchClient | None,
    signer: crd.CdsSigner | None,
    secret: str,
    topic_count: int | None,
    startups: list[TopicStartup],
    databases: Databases,
    with_dtr: bool = False,
    with_pas: bool = False,
) -> Instance:
    """Start (and seed) one Greenlight: its own database, data directory and rules directory."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    home = work / _slug(label)
    home.mkdir()
    env = {
        **base_env,
        "GREENLIGHT_DATABASE_URL": databases.new_url(home),
        "GREENLIGHT_DATA_DIR": str(home / "data"),
        "GREENLIGHT_BASE_URL": base,
        "GREENLIGHT_LOG_LEVEL": "warning",
        "GREENLIGHT_TOKEN_SECRET": secret,
        "GREENLIGHT_TOKEN_LIFETIME_SECONDS": "3600",
    }
    if auth:
        env["GREENLIGHT_AUTH_ENABLED"] = "true"
    if client is not None:
        env["GREENLIGHT_CLIENTS"] = client.registration()
    if signer is not None:
        env["GREENLIGHT_CDS_CLIENTS"] = signer.registration()
    # As a deployed server runs: inbound payloads validated against the IG profiles
    # (GREENLIGHT_VALIDATION's default, `warn`); without packages validation would be skipped,
    # a lighter path than any real set-up, so PAS refuses to run without them.
    if (IG_PACKAGES / "hl7.fhir.r4.core.tgz").exists():
        env["GREENLIGHT_IG_PACKAGES"] = str(IG_PACKAGES)
    elif with_pas:
        raise BenchError(f"pas-submit needs the FHIR IG packages in {IG_PACKAGES}")
    ready_timeout: float = args.ready_timeout
    startup: TopicStartup | None = None
    if topic_count is not None:
        rules = home / "rules"
        print(f"generating {topic_count:,} topics in {rules}", flush=True)
        started = time.monotonic()
        synthetic = topics.generate(rules, topic_count)
        generated = time.monotonic() - started
        env["GREENLIGHT_RULES_DIR"] = str(rules)
        timing = json.loads(
            _subprocess(
                [sys.executable, "-m", "bench.topics", "time", str(rules)],
                env,
                3600,
                f"loading {topic_count} topics",
            )
        )
        print(f"  load_topics: {timing['seconds']:.2f}s for {timing['topics']:,} topics")
        ready_timeout = max(ready_timeout, 3 * timing["seconds"] + 60)
        startup = TopicStartup(
            label,
            int(timing["topics"]),
            synthetic,
            int(timing["codes"]),
            generated,
            float(timing["seconds"]),
            0.0,
            0.0,
        )
    if signer is not None or with_dtr or with_pas:
        print("loading the demo payer (greenlight demo-data)", flush=True)
        _subprocess([*_greenlight_base(), "demo-data"], env, 600, "greenlight demo-data")
    print(f"starting {label} on {base} ({args.workers} worker(s), auth {'on' if auth else 'off'})")
    # From the repository root, like `make run`: relative defaults (the rules directory) resolve;
    # everything Greenlight writes is pointed at the temporary directory above.
    started = time.monotonic()
    server = start_server(
        label, _greenlight_command(port, args.workers, auth), port, env, REPO_ROOT, work
    )
    wait_ready(server, "/fhir/metadata", ready_timeout)
    ready = time.monotonic() - started
    if startup is not None:
        startup = TopicStartup(
            **{**startup.__dict__, "ready_s": ready, "rss_mb": group_rss_mb(server.process.pid)}
        )
        startups.append(startup)
        print(f"  ready after {ready:.1f}s, {startup.rss_mb:.0f} MB resident")
    token = client.fetch_token(base) if client is not None else None
    seeded = seed(server, token)
    if signer is not None:
        seeded.bodies["crd"] = seed_crd(server, signer)
    if with_dtr:
        seed_dtr(server, token, seeded)
    if with_pas:
        claim_token = client.fetch_token(base, PAS_SCOPE) if client is not None else None
        seed_pas(server, claim_token, seeded)
    return Instance(server, token, seeded, home)


def _drive(
    args: argparse.Namespace,
    auth: bool,
    work: Path,
    startups: list[TopicStartup],
    databases: Databases,
) -> list[Run]:
    """Start the servers, seed, run every scenario against each target; the runs in order."""
    scenarios: list[Scenario] = args.scenario_list
    base_env = clean_env()
    base_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [base_env.get("PYTHONPATH")])]
    )
    secret = secrets.token_urlsafe(48)
    client = BenchClient.generate() if auth else None
    needs_crd = any(scenario.kind == "crd" for scenario in scenarios)
    signer = crd.CdsSigner.generate(args.cds_alg) if needs_crd else None
    needs_dtr = any(scenario.kind == "dtr" for scenario in scenarios)
    needs_pas = any(scenario.kind == "pas" for scenario in scenarios)
    pas_rates: dict[str, float] = {}
    pools = work / "pools"
    pools.mkdir()
    load = CrdLoad(signer, pools, {}) if signer is not None else None
    counts: list[int | None] = list(args.topic_counts) or [None]

    runs: list[Run] = []
    bare: Server | None = None
    ceiling: Server | None = None
    first: Instance | None = None
    instances: dict[int | None, Instance] = {}
    bare_for: Instance | None = None  # the Greenlight whose captured bodies the bare app serves
    for round_number in range(1, args.rounds + 1):
        round_work = work
        if args.fresh_servers and round_number > 1:
            for server in [*(i.server for i in instances.values()), *filter(None, [bare])]:
                server.stop()
                _SERVERS.remove(server)
            instances.clear()
            bare = bare_for = None
            round_work = work / f"round-{round_number}"
            round_work.mkdir()
        for count in counts:
            instance = instances.get(count)
            if instance is None:
                label = GREENLIGHT if count is None else f"{GREENLIGHT} ({count:,} topics)"
                instance = start_greenlight(
                    args,
                    auth,
                    round_work,
                    base_env,
                    label,
                    client=client,
                    signer=signer,
                    secret=secret,
                    topic_count=count,
                    startups=startups,
                    databases=databases,
                    with_dtr=needs_dtr,
                    with_pas=needs_pas,
                )
                if args.grow_patients or args.grow_orders:
                    seconds = grow(
                        instance,
                        signer,
                        args.grow_patients,
                        args.grow_orders,
                        pools,
                        base_env,
                    )
                    print(f"  {instance.server.name} grown in {seconds:.0f}s", flush=True)
                instances[count] = instance
            if first is None:
                first = instance
                args.seed_facts = instance.seed.facts
            if bare is None:
                bare_for = instance
                bare, started_ceiling = _start_bare(
                    args,
                    auth,
                    round_work,
                    base_env,
                    instance,
                    signer,
                    secret,
                    with_ceiling=ceiling is None,
                )
                ceiling = ceiling or started_ceiling
            targets = [instance.server, bare] if instance is bare_for else [instance.server]
            print(
                f"round {round_number}/{args.rounds}: running {len(scenarios)} scenario(s) "
                f"against {', '.join(t.name for t in targets)}: {args.concurrency} clients, "
                f"{args.warmup:g}s warm-up + {args.duration:g}s each"
            )
            for scenario in scenarios:
                token = instance.token
                if client is not None and scenario.authenticated and scenario.kind != "crd":
                    # fresh for each scenario; $submit's holds only the scope it needs
                    scope = PAS_SCOPE if scenario.kind == "pas" else CLIENT_SCOPE
                    token = client.fetch_token(instance.server.base_url, scope)
                if scenario.kind == "crd" and args.interleave and bare in targets:
                    assert load is not None and bare is not None
                    audience = crd.service_url(instance.server.base_url)
                    for server in targets:
                        crd_smoke_test(server, load.signer, audience)
                    pair = (instance.server, bare)
                    interleaved = measure_crd_interleaved(
                        pair, scenario, (audience, audience), load, args, base_env
                    )
                    runs += [
                        replace(run, round=round_number, rounds=args.rounds) for run in interleaved
                    ]
                    continue
                for server in targets:
                    if scenario.kind == "crd":
                        assert load is not None
                        audience = crd.service_url(instance.server.base_url)
                        crd_smoke_test(server, load.signer, audience)
                        run = measure_crd(server, scenario, audience, load, args, base_env)
                    elif scenario.kind == "pas":
                        pas_smoke_test(server, token)
                        run = measure_pas(server, scenario, token, pas_rates, pools, args, base_env)
                    else:
                        smoke_test(server, scenario, instance.seed, token)
                        spec = _fixed_spec(args, server, scenario, instance.seed, token)
                        run = measure(server, scenario, spec, base_env)
                    runs.append(replace(run, round=round_number, rounds=args.rounds))
            if args.rounds == 1 and count is not None and count != counts[-1]:
                # one Greenlight at a time: the next one gets the machine (with several rounds
                # every instance stays up, idle while another is measured)
                instance.server.stop()
                _SERVERS.remove(instance.server)
    if ceiling is not None and first is not None:
        scenario = SCENARIOS["patient-read"]
        spec = _fixed_spec(args, ceiling, scenario, first.seed, first.token)
        runs.append(measure(ceiling, scenario, spec, base_env))
    return runs


def _fixed_spec(
    args: argparse.Namespace, server: Server, scenario: Scenario, seeded: Seed, token: str | None
) -> LoadSpec:
    return LoadSpec(
        host=HOST,
        port=server.port,
        request=scenario.request_bytes(
            host=HOST,
            port=server.port,
            patient_id=seeded.patient_id,
            token=token,
            body=seeded.body(scenario),
        ),
        expected_status=scenario.expected_status,
        concurrency=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        timeout=args.timeout,
    )


def _start_bare(
    args: argparse.Namespace,
    auth: bool,
    work: Path,
    base_env: dict[str, str],
    greenlight: Instance,
    signer: crd.CdsSigner | None,
    secret: str,
    *,
    with_ceiling: bool = True,
) -> tuple[Server, Server | None]:
    """The bare app (answering `greenlight`'s captured bodies) and the raw ceiling server
    (unless `--no-ceiling` or not `with_ceiling`)."""
    fixtures = work / "fixtures"
    fixtures.mkdir()
    for name, body in greenlight.seed.bodies.items():
        (fixtures / f"{name}.json").write_bytes(body)
    bare_port = free_port()
    bare_env = {**base_env, "BENCH_BARE_FIXTURES": str(fixtures)}
    if auth:
        bare_env["BENCH_BARE_TOKEN_SECRET"] = secret
        bare_env["BENCH_BARE_TOKEN_AUDIENCE"] = f"{greenlight.server.base_url}/fhir"
    if signer is not None:
        bare_env["BENCH_BARE_CDS_JWKS"] = json.dumps(signer.public_jwks())
        bare_env["BENCH_BARE_CDS_ISSUER"] = crd.ISSUER
        bare_env["BENCH_BARE_CDS_JKU"] = crd.JKU
        bare_env["BENCH_BARE_CDS_AUDIENCE"] = crd.service_url(greenlight.server.base_url)
    print(f"starting the bare app on http://{HOST}:{bare_port}")
    bare = start_server(
        BARE, _bare_command(bare_port, args.workers), bare_port, bare_env, REPO_ROOT, work
    )
    wait_ready(bare, "/fhir/metadata")
    ceiling: Server | None = None
    if with_ceiling and not args.no_ceiling:
        ceiling_port = free_port()
        ceiling = start_server(
            CEILING,
            [sys.executable, "-m", "bench.bare_app", "--port", str(ceiling_port)],
            ceiling_port,
            bare_env,
            REPO_ROOT,
            work,
        )
        wait_ready(ceiling, "/")
    return bare, ceiling


def report(
    args: argparse.Namespace, auth: bool, runs: list[Run], startups: list[TopicStartup]
) -> None:
    scenario_kinds = {scenario.kind for scenario in args.scenario_list}
    auth_fact = (
        "on: SMART Backend Services bearer token (HS256) on every /fhir scenario but "
        "metadata, verified by both targets"
        if auth
        else "off (Greenlight in demo mode with --no-auth; no tokens sent or verified)"
    )
    if "crd" in scenario_kinds:
        auth_fact += (
            f"; CDS Hooks: a fresh {args.cds_alg} JWT per call (kid, jku, 64-hex jti), "
            "signature and claims verified by both targets, jti replay refused"
        )
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{os.cpu_count()} cores, {_cpu_model()}, {platform.system()} {platform.release()}"
        ),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": (
            f"greenlight {_version('greenlight')} ({_git_commit()}), "
            f"fastapi {_version('fastapi')}, starlette {_version('starlette')}, "
            f"uvicorn {_version('uvicorn')} (httptools, uvloop)"
        ),
        "load": (
            f"{args.concurrency} concurrent keep-alive clients, {args.warmup:g}s warm-up + "
            f"{args.duration:g}s measured per run, one generator process on the same machine"
            + (
                f"; {args.rounds} rounds, the targets measured in turn in each"
                if args.rounds > 1
                else ""
            )
            + (
                f"; CRD scenarios interleaved: one generator drives the two targets in "
                f"alternating {args.interleave:g}s slices, the first {INTERLEAVE_SETTLE:g}s of "
                "each measured slice not measured"
                if args.interleave and "crd" in scenario_kinds
                else ""
            )
        ),
        "workers": f"{args.workers} uvicorn worker(s) for both Greenlight and the bare app",
        "auth": auth_fact,
        "database": getattr(args, "database_fact", args.database),
        "machine load": _load_fact(getattr(args, "load_before", "?"), _load_average()),
    }
    if "crd" in scenario_kinds:
        facts["crd"] = (
            "order-sign built from the Inferno CRD kit fixture (read at run time): full "
            "prefetch (Patient, Coverage of demo member 10A3D58WH456 on the Gold plan, user "
            "Practitioner), one ServiceRequest for CPT 72148 (lumbar-mri: PA + clinical "
            "documentation), no fhirServer; demo payer loaded"
        )
    if "dtr" in scenario_kinds:
        facts["dtr"] = (
            "demo payer loaded; request bodies built at run time from the Inferno DTR kit "
            "fixtures and Greenlight's own step-1 answer, answers checked while seeding"
        )
    if "pas" in scenario_kinds:
        facts["pas"] = (
            f"demo payer loaded; Greenlight validates request Bundles against the PAS profiles "
            f"(GREENLIGHT_VALIDATION default `warn`, GREENLIGHT_IG_PACKAGES={IG_PACKAGES}, as "
            f"for every scenario); tokens for pas-submit hold only {PAS_SCOPE}; a "
            "pool of fresh Bundle/Claim identifiers per run, each request a new submission"
        )
    if scenario_kinds & {"dtr", "pas"}:
        for name, fact in getattr(args, "seed_facts", {}).items():
            facts[name] = fact
    if startups:
        facts["topics"] = (
            "per Greenlight instance, a generated rules directory: the shipped topics + "
            "synthetic ones (bench/topics.py)"
        )
    if args.grow_patients or args.grow_orders:
        facts["growth"] = (
            f"before it was measured, each Greenlight was grown through its own APIs by "
            f"{args.grow_patients:,} Patients (distinct member ids) and {args.grow_orders:,} new "
            "orders (crd-order-sign-new calls)"
        )
    facts["command"] = "python -m bench " + " ".join(sys.argv[1:])
    error_kinds = {
        f"{run.scenario} / {run.label}": run.result.error_kinds
        for run in runs
        if run.result.error_kinds
    }
    markdown = render_markdown(runs, facts, error_kinds, startups)
    print()
    print(markdown)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown, encoding="utf-8")
    print(f"wrote {output}")


def stop_all() -> None:
    while _SERVERS:
        _SERVERS.pop().stop()


@contextlib.contextmanager
def servers_stopped_on_exit() -> Iterator[None]:
    """Every started server stopped when the block ends, however it ends (a SIGTERM or SIGHUP
    meanwhile exits through it: `_on_sigterm`)."""
    previous = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with servers_stopped_on_exit():
        try:
            return run(args)
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
