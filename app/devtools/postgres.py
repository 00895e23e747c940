"""A throwaway PostgreSQL cluster: its own data directory and port, stopped and deleted after use.

Used by the test session (`tests/conftest.py`, through `tests.support.postgres`) and by
`python -m bench --database postgresql`. It runs the server binaries of the machine's PostgreSQL
package (installed but stopped; `make postgres-server` installs it). As root, the cluster runs as
the `postgres` system user (initdb refuses root). Durability is traded for speed, as suits
throwaway data: `fsync`, `synchronous_commit` and `full_page_writes` are off. Each call of
`create_database` makes a new empty database, so callers never share state.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are not on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bin_dir() -> Path:
    """The newest installed server's bin directory (Debian's versioned layout first)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found (apt-get install -y postgresql)"
    )


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None
    user: str = "greenlight"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        done = subprocess.run(  # noqa: S603 - fixed argv of the PostgreSQL binaries, no shell
            self._cmd(*args), capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace').strip()}"
            )

    @classmethod
    def start(cls) -> PostgresCluster:
        """initdb and start a cluster; on any failure (or interruption) nothing is left behind."""
        bin_dir = _bin_dir()
        root = Path(tempfile.mkdtemp(prefix="greenlight-pg-"))
        run_as = "postgres" if os.geteuid() == 0 else None
        cluster = cls(bin_dir, root, free_port(), run_as)
        try:
            if run_as:
                shutil.chown(root, user=run_as, group=run_as)
            cluster._init_and_start()
        except BaseException:
            with contextlib.suppress(Exception):
                cluster.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    def _init_and_start(self) -> None:
        data = self.root / "data"
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            self.user,
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    @property
    def version(self) -> str:
        """The server's major version, from Debian's `/usr/lib/postgresql/<major>/bin` layout."""
        name = self.bin_dir.parent.name
        return name if name.replace(".", "").isdigit() else "?"

    def stop(self) -> None:
        """Stop the server (immediate shutdown: the data is thrown away) and delete its files."""
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy async URL."""
        name = f"gl_{uuid.uuid4().hex[:12]}"
        self._run(
            str(self.bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            name,
        )
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{name}"
