"""TLS for `greenlight serve`: the certificate chain and private key it serves HTTPS with.

CRD sec-2 (with HRex's security page, which every Da Vinci IG imports): communications between
CRD clients and CRD servers use TLS. A deployment behind a TLS-terminating proxy or load balancer
sets neither file. Otherwise `GREENLIGHT_TLS_CERT_FILE` (PEM: the server certificate, then any
intermediates) and `GREENLIGHT_TLS_KEY_FILE` (its PEM private key, unencrypted) make the server
itself speak HTTPS only: a plain-HTTP request to its port gets no answer.

Whatever the system's OpenSSL configuration would allow, the server refuses protocol versions
below TLS 1.2 (HRex's exchange security; CRD sec-3): `server_context` is uvicorn's SSL context
factory.

The pair is checked before the server starts, so that a mistake stops it with the setting named
rather than failing every handshake later: both files or neither, each readable, the key
matching the certificate, and a public base URL (`GREENLIGHT_BASE_URL`) in `https://`, since
CDS Hooks JWTs are addressed (`aud`) to the service URL under that base.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings

#: the oldest protocol version served (HRex: TLS 1.2 or later)
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2
CERT_SETTING = "GREENLIGHT_TLS_CERT_FILE"
KEY_SETTING = "GREENLIGHT_TLS_KEY_FILE"


class TlsConfigError(ValueError):
    """The TLS settings cannot be served with; the message names the setting."""


@dataclass(frozen=True)
class TlsFiles:
    """A certificate chain and its key, checked to load together."""

    certificate: Path
    key: Path


def _readable(path: Path, setting: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def tls_files(settings: Settings) -> TlsFiles | None:
    """The files to serve HTTPS with, or None when TLS is left to a proxy; `TlsConfigError` when
    the settings are incomplete or the files do not make a usable pair."""
    certificate, key = settings.tls_cert_file, settings.tls_key_file
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        missing, given = (
            (CERT_SETTING, KEY_SETTING) if certificate is None else (KEY_SETTING, CERT_SETTING)
        )
        raise TlsConfigError(f"{missing} is not set: {given} needs it (TLS takes both)")
    if not settings.base_url.startswith("https://"):
        raise TlsConfigError(
            f"GREENLIGHT_BASE_URL must start with https:// when TLS is on (it is "
            f"{settings.base_url}): CDS Hooks JWTs are addressed to the service URL under it"
        )
    _readable(certificate, CERT_SETTING)
    _readable(key, KEY_SETTING)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate, key)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"{CERT_SETTING} and {KEY_SETTING} do not load as a PEM certificate chain and its "
            f"unencrypted private key ({exc.reason or exc})"
        ) from None
    return TlsFiles(certificate, key)


def server_context(_config: object, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's SSL context for the configured files (`default`), never below
    `MINIMUM_TLS_VERSION` (uvicorn's `ssl_context_factory`)."""
    context = default()
    if context.minimum_version < MINIMUM_TLS_VERSION:
        context.minimum_version = MINIMUM_TLS_VERSION
    return context
