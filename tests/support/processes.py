"""A command run as a server process for the length of a block: started, polled until a URL
answers 200, and stopped (terminate, then kill) when the block ends."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


@contextmanager
def serving_process(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    ready_url: str,
    verify: ssl.SSLContext | bool = True,
    start_seconds: float = 30,
    stop_seconds: float = 10,
    keep_stderr: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """The process of `command`, once `ready_url` answers 200. With `keep_stderr`, a process
    that exits before it is ready fails the test with the end of its standard error (left
    unread otherwise: a long-lived server could fill the pipe)."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                if httpx.get(ready_url, verify=verify, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                said = process.stderr.read().decode()[-2000:] if process.stderr else ""
                pytest.fail(f"{command[0]} exited before it was ready: {said}")
            assert time.monotonic() < deadline, f"{ready_url} did not answer in time"
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
