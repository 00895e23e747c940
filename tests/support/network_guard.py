"""Keeps the test suite on this machine: resolving any name but loopback fails at once.

The Inferno fixtures name real EHR servers (`fhirServer: https://inferno.healthit.gov/...`).
Tests mock those with pytest-httpx; should a request ever escape the mock, this guard makes it
fail immediately instead of sending a DNS query or a packet off the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str | bytes | None) -> bool:
    if host is None:
        return True  # a passive bind
    name = host.decode() if isinstance(host, bytes) else host
    if name in _LOOPBACK_NAMES or name == "":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            raise socket.gaierror(
                socket.EAI_NONAME, f"test network guard: {host!r} is not on this machine"
            )
        return original(host, *args, **kwargs)

    return getaddrinfo
