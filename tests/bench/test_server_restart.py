"""The bench harness's server primitive: `Server.restart` starts a new process of the same command
on the same port, and the old one is gone."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from bench.harness import _SERVERS, HOST, free_port, start_server, wait_ready


def test_restart_runs_a_new_process_of_the_same_command_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", HOST]
    server = start_server("restart check", command, port, {}, tmp_path, tmp_path)
    try:
        wait_ready(server, "/", 30)
        first = server.process
        server.restart("/", 30)
        assert server.process.pid != first.pid
        assert first.poll() is not None  # the old process has ended
        assert server.process.poll() is None
        assert httpx.get(f"{server.base_url}/", timeout=5).status_code == 200
        assert server.port == port
    finally:
        server.stop()
        _SERVERS.remove(server)
