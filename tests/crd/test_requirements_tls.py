"""CRD sec-2: communications between CRD clients and CRD servers use TLS. `greenlight serve`
given a certificate and its key (`GREENLIGHT_TLS_CERT_FILE`, `GREENLIGHT_TLS_KEY_FILE`) answers
CDS Hooks over HTTPS only: proven against the real command, as a process on a loopback port, with
a certificate made here (a test authority and a server certificate for 127.0.0.1), and never
below TLS 1.2 (CRD sec-3, HRex's minimum). Settings that cannot be served with stop the command
before it starts, naming the setting (app/tls.py).
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app import cli
from app.config import Settings, get_settings
from app.devtools.postgres import free_port
from app.tls import (
    CERT_SETTING,
    KEY_SETTING,
    MINIMUM_TLS_VERSION,
    TlsConfigError,
    server_context,
    tls_files,
)
from tests.auth.smart_client import JwksHost
from tests.conftest import FHIR_PACKAGES, DatabaseFactory, SettingsFactory
from tests.crd.conftest import CrdPayer, CrdServer, crd_payer
from tests.crd.hook_requests import order_sign
from tests.crd.requirement_helpers import GOLD_MEMBER, coverage_by_order
from tests.support.live_server import LiveServer
from tests.support.processes import serving_process

ROOT = Path(__file__).resolve().parents[2]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    issuer: str,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """A certificate valid from five minutes ago for a day, with (extension, critical) pairs."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test authority and a server certificate for 127.0.0.1 it signed, as PEM files:
    (authority certificate, server certificate, server key)."""
    authority_key = ec.generate_private_key(ec.SECP256R1())
    signing_only = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    authority_name = "Greenlight test authority"
    authority = _certificate(
        authority_name,
        authority_name,
        authority_key.public_key(),
        authority_key,
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (signing_only, True),
            (x509.SubjectKeyIdentifier.from_public_key(authority_key.public_key()), False),
        ],
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "127.0.0.1",
        authority_name,
        server_key.public_key(),
        authority_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()), False),
        ],
    )
    paths = (directory / "authority.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(server_key))
    return paths


def _environment(settings: Settings, **values: str) -> dict[str, str]:
    """The process environment of `greenlight serve` on `settings`' database and CDS clients,
    without any `GREENLIGHT_*` value of the test's own environment."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GREENLIGHT_")}
    assert settings.cds_clients is not None and settings.token_secret is not None
    return {
        **inherited,
        "GREENLIGHT_DATABASE_URL": settings.database_url,
        "GREENLIGHT_DATA_DIR": str(settings.data_dir),
        "GREENLIGHT_IG_PACKAGES": str(FHIR_PACKAGES),
        "GREENLIGHT_CDS_CLIENTS": settings.cds_clients,
        "GREENLIGHT_TOKEN_SECRET": settings.token_secret,
        "GREENLIGHT_LOG_LEVEL": "warning",
        **{f"GREENLIGHT_{name.upper()}": value for name, value in values.items()},
    }


@contextmanager
def _serving(port: int, environment: dict[str, str], trust: ssl.SSLContext) -> Iterator[str]:
    """`greenlight serve` on `port` until the block ends; yields its https base URL once it
    answers discovery."""
    base = f"https://127.0.0.1:{port}"
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serving_process(
        command,
        cwd=ROOT,
        env=environment,
        ready_url=f"{base}/cds-services",
        verify=trust,
        start_seconds=60,
        stop_seconds=15,
        keep_stderr=True,
    ):
        yield base


@dataclass(frozen=True)
class HttpsPayer:
    """`greenlight serve` over HTTPS on the demo payer: its base URL and port, the CDS client
    it trusts, and the test authority that signed its certificate."""

    base: str
    port: int
    payer: CrdPayer
    authority: Path

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.authority))


@pytest.fixture(scope="module")
def https_payer(
    tmp_path_factory: pytest.TempPathFactory,
    jwks_host: JwksHost,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> Iterator[HttpsPayer]:
    authority, certificate, key = _certificates(tmp_path_factory.mktemp("tls"))
    payer = crd_payer(jwks_host, make_settings, new_database_url("sqlite"))
    port = free_port()
    environment = _environment(
        payer.settings,
        base_url=f"https://127.0.0.1:{port}",
        tls_cert_file=str(certificate),
        tls_key_file=str(key),
    )
    trust = ssl.create_default_context(cafile=str(authority))
    with _serving(port, environment, trust) as base:
        yield HttpsPayer(base, port, payer, authority)


@pytest.mark.requirement("CRD", "sec-2")
def test_greenlight_serve_answers_cds_hooks_over_tls_only(https_payer: HttpsPayer) -> None:
    """Over HTTPS, verified against the test authority: discovery lists every service and a
    signed order-sign call (its JWT addressed to the https service URL) is answered with the
    lumbar MRI's coverage information. A plain-HTTP request to the same port gets no HTTP answer."""
    base, payer, trust = https_payer.base, https_payer.payer, https_payer.trust()
    discovery = httpx.get(f"{base}/cds-services", verify=trust, timeout=10).json()
    assert len(discovery["services"]) == 6
    crd = CrdServer(LiveServer(payer.settings, base), payer.issuer, payer.jwks_url, payer.key)
    body = order_sign(GOLD_MEMBER, "72148", fhir_server=False)
    with httpx.Client(base_url=base, verify=trust, timeout=30) as client:
        answered = client.post(
            "/cds-services/order-sign-crd",
            json=body,
            headers={"Authorization": f"Bearer {crd.jwt('order-sign-crd')}"},
        )
        assert answered.status_code == 200, answered.text
        assert answered.url.scheme == "https"
    (parts,) = coverage_by_order(answered.json())["ServiceRequest/servreq-g0180-1"]
    assert parts["covered"] == ["covered"] and parts["pa-needed"] == ["auth-needed"]
    with pytest.raises(httpx.TransportError):  # no cleartext service on the port
        httpx.get(f"http://127.0.0.1:{https_payer.port}/cds-services", timeout=5)
    with pytest.raises(httpx.ConnectError):  # and the certificate is what is trusted
        httpx.get(f"{base}/cds-services", verify=ssl.create_default_context(), timeout=5)


def _handshake(port: int, authority: Path, newest: ssl.TLSVersion) -> str:
    """The protocol version a client offering versions up to `newest` (down to TLS 1.0, at
    OpenSSL security level 0 so that it really offers them) gets from the server on `port`, or
    the reason the handshake failed."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(authority)
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1, on purpose
        client.minimum_version = ssl.TLSVersion.TLSv1
        client.maximum_version = newest
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return str(tls.version())
    except ssl.SSLError as exc:
        return str(exc.reason)


@pytest.mark.requirement("CRD", "sec-3")
def test_greenlight_serve_refuses_tls_older_than_1_2(https_payer: HttpsPayer) -> None:
    """HRex's minimum, enforced by the server itself: the same client, offering at most TLS 1.1
    (or 1.0), has its handshake refused, and offering TLS 1.2 or 1.3 is served. The context
    factory raises the floor whatever the default context would accept."""
    port, authority = https_payer.port, https_payer.authority
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    for version in old:  # refused during the handshake (uvloop closes without an alert)
        refusal = _handshake(port, authority, version)
        assert refusal in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING")
    assert _handshake(port, authority, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(port, authority, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"

    def permissive() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        return context

    def tls_13_only() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    assert server_context(None, permissive).minimum_version == MINIMUM_TLS_VERSION
    assert server_context(None, tls_13_only).minimum_version == ssl.TLSVersion.TLSv1_3


def _settings(make_settings: SettingsFactory, **overrides: object) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", **overrides)


def test_tls_needs_both_files_an_https_base_and_a_matching_pair(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    authority, certificate, key = _certificates(tmp_path)
    assert tls_files(_settings(make_settings)) is None  # TLS left to a proxy
    https = {"base_url": "https://payer.example.org"}
    files = tls_files(
        _settings(make_settings, tls_cert_file=certificate, tls_key_file=key, **https)
    )
    assert files is not None and (files.certificate, files.key) == (certificate, key)
    cases: list[tuple[dict[str, object], str]] = [
        ({"tls_cert_file": certificate}, f"{KEY_SETTING} is not set"),
        ({"tls_key_file": key}, f"{CERT_SETTING} is not set"),
        (
            {
                "tls_cert_file": certificate,
                "tls_key_file": key,
                "base_url": "http://payer.example.org",
            },
            "GREENLIGHT_BASE_URL must start with https://",
        ),
        (
            {"tls_cert_file": tmp_path / "absent.pem", "tls_key_file": key},
            f"{CERT_SETTING}: cannot read",
        ),
        (  # the authority's certificate with the server's key: not a pair
            {"tls_cert_file": authority, "tls_key_file": key},
            "do not load as a PEM certificate chain",
        ),
        ({"tls_cert_file": key, "tls_key_file": key}, "do not load as a PEM certificate chain"),
    ]
    for overrides, message in cases:
        with pytest.raises(TlsConfigError, match=message):
            tls_files(_settings(make_settings, **{**https, **overrides}))


def test_greenlight_serve_refuses_to_start_on_a_broken_tls_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command exits with status 2 and the setting named, before touching the database."""
    _authority, certificate, _key = _certificates(tmp_path)
    database = tmp_path / "never-created.db"
    for name in [k for k in os.environ if k.startswith("GREENLIGHT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GREENLIGHT_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("GREENLIGHT_BASE_URL", "https://payer.example.org")
    monkeypatch.setenv("GREENLIGHT_TLS_CERT_FILE", str(certificate))
    get_settings.cache_clear()
    try:
        assert cli.main(["serve", "--port", str(free_port())]) == 2
    finally:
        get_settings.cache_clear()
    assert f"error: {KEY_SETTING} is not set" in capsys.readouterr().err
    assert not database.exists()
