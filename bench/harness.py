"""Orchestration: start Greenlight and the bare app, seed, drive each scenario, report.

Everything runs on loopback. Both servers are subprocesses in their own sessions (process
groups), so stopping one stops its uvicorn workers too; they are stopped on any exit, including
errors, Ctrl-C and SIGTERM. Every wait has a deadline, so a run always ends.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.loadgen import LoadResult, LoadSpec
from bench.scenarios import DEFAULT_SCENARIOS, PATIENT_BYTES, SCENARIOS, Scenario

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.md"
CLIENT_ID = "greenlight-bench"
CLIENT_SCOPE = "system/*.cruds"
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


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group `pgid` (Linux)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        # fields[0] is `state` (field 3 of stat(5)): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


@dataclass
class Server:
    """A server subprocess in its own session; `stop()` ends the whole process group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

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
    log_path = logs / f"{name.replace(' ', '-').strip('()')}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, log_path)
    _SERVERS.append(server)
    return server


def wait_ready(server: Server, path: str) -> None:
    """Poll `path` until it answers (any HTTP status), the process dies, or READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
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
                raise BenchError(f"{server.name} did not answer within {READY_TIMEOUT:g}s")
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

    def fetch_token(self, base_url: str) -> str:
        token_url = f"{base_url}/auth/token"
        form = {
            "grant_type": "client_credentials",
            "scope": CLIENT_SCOPE,
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
    if scenario.body:
        headers["Content-Type"] = "application/fhir+json"
    response = httpx.request(
        scenario.method,
        server.base_url + scenario.resolved_path(seed_.patient_id),
        content=scenario.body or None,
        headers=headers,
        timeout=30.0,
    )
    _expect(response, scenario.expected_status, f"{scenario.name} against {server.name}")


# --- load runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    scenario: str
    target: str
    result: LoadResult
    # Server CPU seconds over the whole load run (warm-up included) and the requests it served.
    server_cpu_s: float
    wall_s: float

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
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    limit = spec.warmup + spec.duration + spec.timeout + 30
    try:
        out, err = process.communicate(spec.to_json().encode(), timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator did not finish within {limit:g}s") from exc
    finally:
        stop_process_group(process)
    if process.returncode != 0:
        raise BenchError(f"the load generator failed:\n{err.decode(errors='replace')[-2000:]}")
    return LoadResult.from_json(out.decode())


def measure(server: Server, scenario: Scenario, spec: LoadSpec, env: dict[str, str]) -> Run:
    label = server.name
    print(f"  {scenario.name:<16} {label:<14} ", end="", flush=True)
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    result = run_load(spec, env)
    wall = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    print(
        f"{result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
        f"  errors {result.errors}",
        flush=True,
    )
    if server.process.poll() is not None:
        raise BenchError(
            f"{server.name} died during {scenario.name} "
            f"(exit status {server.process.returncode}):\n{server.log_tail()}"
        )
    return Run(scenario.name, label, result, cpu, wall)


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


def render_table(runs: list[Run]) -> str:
    header = (
        "| scenario | target | req/s | p50 ms | p90 ms | p99 ms | errors "
        "| p50 vs bare | req/s vs bare | server CPU ms/req | generator CPU |"
    )
    lines = [header, "|" + "---|" * 11]
    bare = {run.scenario: run for run in runs if run.target == BARE}
    for run in runs:
        r = run.result
        reference = bare.get(run.scenario)
        if run.target != GREENLIGHT or reference is None:
            p50_ratio = rps_ratio = "1.00x" if run.target == BARE else "-"
        else:
            p50_ratio = _ratio(r.p50_ms, reference.result.p50_ms)
            rps_ratio = _ratio(r.rps, reference.result.rps)
        lines.append(
            f"| {run.scenario} | {run.target} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.errors} | {p50_ratio} | {rps_ratio} "
            f"| {run.server_cpu_ms_per_request:.3f} | {run.generator_cpu_pct:.0f}% |"
        )
    return "\n".join(lines)


def verdict(runs: list[Run]) -> str | None:
    """The done-when check: `patient-read` p50 within 2x and throughput >= 0.5x of bare."""
    by_key = {(run.scenario, run.target): run for run in runs}
    gl = by_key.get(("patient-read", GREENLIGHT))
    bare = by_key.get(("patient-read", BARE))
    if gl is None or bare is None or not bare.result.p50_ms or not bare.result.rps:
        return None
    p50 = gl.result.p50_ms / bare.result.p50_ms
    rps = gl.result.rps / bare.result.rps
    ok = p50 <= 2.0 and rps >= 0.5
    return (
        f"**patient-read target (p50 <= 2x bare, throughput >= 0.5x bare): "
        f"{'MET' if ok else 'MISSED'}** - p50 {p50:.2f}x "
        f"({'ok' if p50 <= 2.0 else 'over'}), throughput {rps:.2f}x "
        f"({'ok' if rps >= 0.5 else 'under'})."
    )


def render_markdown(
    runs: list[Run], facts: dict[str, str], errors: dict[str, dict[str, int]]
) -> str:
    out = ["# Greenlight benchmark", ""]
    out += [f"- **{key}**: {value}" for key, value in facts.items()]
    out += ["", render_table(runs), ""]
    check = verdict(runs)
    if check:
        out += [check, ""]
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
    if args.concurrency < 1 or args.workers < 1:
        parser.error("--concurrency and --workers must be at least 1")
    if not 0 < args.duration <= 1800 or not 0 <= args.warmup <= 600:
        parser.error("--duration must be in (0, 1800] and --warmup in [0, 600]")
    return args


def _greenlight_command(port: int, workers: int, auth: bool) -> list[str]:
    script = Path(sys.executable).with_name("greenlight")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    command = [*base, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
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
    with _workspace(args.keep) as work:
        try:
            runs = _drive(args, auth, work)
        finally:
            stop_all()
    report(args, auth, runs)
    return 0


def _drive(args: argparse.Namespace, auth: bool, work: Path) -> list[Run]:
    """Start the servers, seed, run every scenario against each target; the runs in order."""
    scenarios: list[Scenario] = args.scenario_list
    base_env = clean_env()
    base_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [base_env.get("PYTHONPATH")])]
    )
    gl_port = free_port()
    gl_base = f"http://{HOST}:{gl_port}"
    secret = secrets.token_urlsafe(48)
    client = BenchClient.generate() if auth else None
    gl_env = {
        **base_env,
        "GREENLIGHT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
        "GREENLIGHT_DATA_DIR": str(work / "data"),
        "GREENLIGHT_BASE_URL": gl_base,
        "GREENLIGHT_LOG_LEVEL": "warning",
        "GREENLIGHT_TOKEN_SECRET": secret,
        "GREENLIGHT_TOKEN_LIFETIME_SECONDS": "3600",
    }
    if client is not None:
        gl_env["GREENLIGHT_CLIENTS"] = client.registration()
    print(
        f"starting Greenlight on {gl_base} "
        f"({args.workers} worker(s), auth {'on' if auth else 'off'})"
    )
    # From the repository root, like `make run`: relative defaults (the rules directory) resolve;
    # everything Greenlight writes is pointed at the temporary directory above.
    greenlight = start_server(
        GREENLIGHT,
        _greenlight_command(gl_port, args.workers, auth),
        gl_port,
        gl_env,
        REPO_ROOT,
        work,
    )
    wait_ready(greenlight, "/fhir/metadata")
    token = client.fetch_token(gl_base) if client is not None else None
    seeded = seed(greenlight, token)
    fixtures = work / "fixtures"
    fixtures.mkdir()
    for name, body in seeded.bodies.items():
        (fixtures / f"{name}.json").write_bytes(body)

    bare_port = free_port()
    bare_env = {**base_env, "BENCH_BARE_FIXTURES": str(fixtures)}
    if auth:
        bare_env["BENCH_BARE_TOKEN_SECRET"] = secret
        bare_env["BENCH_BARE_TOKEN_AUDIENCE"] = f"{gl_base}/fhir"
    print(f"starting the bare app on http://{HOST}:{bare_port}")
    bare = start_server(
        BARE, _bare_command(bare_port, args.workers), bare_port, bare_env, REPO_ROOT, work
    )
    wait_ready(bare, "/fhir/metadata")
    ceiling: Server | None = None
    if not args.no_ceiling:
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

    def spec_for(server: Server, scenario: Scenario) -> LoadSpec:
        return LoadSpec(
            host=HOST,
            port=server.port,
            request=scenario.request_bytes(
                host=HOST, port=server.port, patient_id=seeded.patient_id, token=token
            ),
            expected_status=scenario.expected_status,
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
            timeout=args.timeout,
        )

    runs: list[Run] = []
    print(
        f"running {len(scenarios)} scenario(s): {args.concurrency} clients, "
        f"{args.warmup:g}s warm-up + {args.duration:g}s each"
    )
    for scenario in scenarios:
        if client is not None and scenario.authenticated:
            token = client.fetch_token(gl_base)  # a fresh token for each scenario
        for server in (greenlight, bare):
            smoke_test(server, scenario, seeded, token)
            runs.append(measure(server, scenario, spec_for(server, scenario), base_env))
    if ceiling is not None:
        runs.append(
            measure(
                ceiling,
                SCENARIOS["patient-read"],
                spec_for(ceiling, SCENARIOS["patient-read"]),
                base_env,
            )
        )
    return runs


def report(args: argparse.Namespace, auth: bool, runs: list[Run]) -> None:
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
        ),
        "workers": f"{args.workers} uvicorn worker(s) for both Greenlight and the bare app",
        "auth": (
            "on: SMART Backend Services bearer token (HS256) on patient-read and "
            "patient-create, verified by both targets"
            if auth
            else "off (Greenlight in demo mode with --no-auth; no tokens sent or verified)"
        ),
        "database": "SQLite (aiosqlite, WAL) in a temporary directory",
        "command": "python -m bench " + " ".join(sys.argv[1:]),
    }
    error_kinds = {
        f"{run.scenario} / {run.target}": run.result.error_kinds
        for run in runs
        if run.result.error_kinds
    }
    markdown = render_markdown(runs, facts, error_kinds)
    print()
    print(markdown)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown, encoding="utf-8")
    print(f"wrote {output}")


def stop_all() -> None:
    while _SERVERS:
        _SERVERS.pop().stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    previous = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
