"""Bearer tokens on `/fhir`, against a live server on both backends.

Requirement: tokens are checked on every `/fhir` request except `metadata` (and SMART discovery);
a missing, malformed, forged or expired token -> 401 with `WWW-Authenticate: Bearer` and an
OperationOutcome. Auth is on by default; demo mode may turn it off and says so in its log.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from app.config import Settings
from app.main import create_app
from tests.auth.conftest import Clients
from tests.auth.smart_client import access_token, operation_outcome, token_url
from tests.conftest import SettingsFactory
from tests.support.live_server import LiveServer


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": f"Guard-{uuid.uuid4().hex[:8]}", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def _our_token(server: LiveServer, **overrides: Any) -> str:
    """An access token signed with the server's own secret (to forge expiry, audience...)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": server.base_url,
        "sub": "reader",
        "aud": server.fhir,
        "scope": "system/Patient.rs",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    secret = server.settings.token_secret
    assert secret
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "at+jwt"})


def _unauthorized(response: httpx.Response) -> str:
    diagnostics = operation_outcome(response, 401, "login")
    assert response.headers["www-authenticate"].startswith("Bearer ")
    return diagnostics


def test_valid_token_reads(auth_server: LiveServer, clients: Clients) -> None:
    writer = access_token(auth_server, clients.writer, "system/Patient.cruds")
    with auth_server.client(writer) as http:
        created = http.post(
            "/fhir/Patient", json=_patient(), headers={"Content-Type": "application/fhir+json"}
        )
        assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    family = created.json()["name"][0]["family"]
    reader = access_token(auth_server, clients.reader, "system/Patient.rs")
    with auth_server.client(reader) as http:
        read = http.get(f"/fhir/Patient/{patient_id}")
        assert read.status_code == 200, read.text
        assert read.json()["id"] == patient_id
        found = http.get("/fhir/Patient", params={"family": family})
        assert found.status_code == 200, found.text
        assert found.json()["total"] == 1
        again = http.get(f"/fhir/Patient/{patient_id}")  # served from the verified-token cache
        assert again.status_code == 200, again.text


def test_no_token_is_401(auth_server: LiveServer) -> None:
    with auth_server.client() as http:
        response = http.get("/fhir/Patient")
    _unauthorized(response)
    assert "error=" not in response.headers["www-authenticate"]


def test_garbage_token_is_401(auth_server: LiveServer) -> None:
    with auth_server.client("not.a.token") as http:
        response = http.get("/fhir/Patient")
    _unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_other_auth_scheme_is_401(auth_server: LiveServer) -> None:
    with auth_server.client() as http:
        response = http.get("/fhir/Patient", headers={"Authorization": "Basic cmVhZGVyOng="})
    _unauthorized(response)


def test_expired_access_token_is_401(auth_server: LiveServer) -> None:
    now = int(time.time())
    token = _our_token(auth_server, iat=now - 600, exp=now - 1)
    with auth_server.client(token) as http:
        response = http.get("/fhir/Patient")
    assert "expired" in _unauthorized(response)


def test_token_signed_with_another_secret_is_401(auth_server: LiveServer) -> None:
    now = int(time.time())
    claims = {
        "iss": auth_server.base_url,
        "sub": "reader",
        "aud": auth_server.fhir,
        "scope": "system/*.cruds",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    forged = jwt.encode(
        claims, "another-secret-of-sufficient-length-0123456789", headers={"typ": "at+jwt"}
    )
    with auth_server.client(forged) as http:
        _unauthorized(http.get("/fhir/Patient"))


def test_token_for_another_audience_is_401(auth_server: LiveServer) -> None:
    token = _our_token(auth_server, aud="https://other.example/fhir")
    with auth_server.client(token) as http:
        _unauthorized(http.get("/fhir/Patient"))


def test_client_assertion_is_not_an_access_token(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    with auth_server.client(assertion) as http:
        _unauthorized(http.get("/fhir/Patient"))


def test_every_interaction_needs_a_token(auth_server: LiveServer) -> None:
    with auth_server.client() as http:
        _unauthorized(http.get("/fhir/Patient/some-id"))
        _unauthorized(http.get("/fhir/Patient/some-id/_history"))
        _unauthorized(http.get("/fhir/Patient/some-id/_history/1"))
        _unauthorized(
            http.post(
                "/fhir/Patient", json=_patient(), headers={"Content-Type": "application/fhir+json"}
            )
        )
        _unauthorized(
            http.put(
                "/fhir/Patient/some-id",
                json={**_patient(), "id": "some-id"},
                headers={"Content-Type": "application/fhir+json"},
            )
        )
        _unauthorized(http.delete("/fhir/Patient/some-id"))


def test_metadata_needs_no_token(auth_server: LiveServer) -> None:
    with auth_server.client() as http:
        response = http.get("/fhir/metadata")
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_auth_is_on_by_default() -> None:
    assert Settings.model_fields["auth_enabled"].default is True
    assert Settings.model_fields["demo"].default is False


def test_auth_off_outside_demo_refuses_to_start(
    make_settings: SettingsFactory, tmp_path: Any
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/off.db", demo=False)
    with pytest.raises(RuntimeError, match="demo mode"):
        create_app(settings)


def test_auth_off_in_demo_says_so_loudly(
    make_settings: SettingsFactory, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/demo.db", demo=True)
    with caplog.at_level(logging.WARNING, logger="greenlight"):
        create_app(settings)
    assert any("AUTHENTICATION IS OFF" in record.getMessage() for record in caplog.records)


def test_auth_on_without_a_secret_refuses_to_start(
    make_settings: SettingsFactory, tmp_path: Any
) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/nosecret.db",
        demo=False,
        auth_enabled=True,
        token_secret=None,
    )
    with pytest.raises(RuntimeError, match="TOKEN_SECRET"):
        create_app(settings)


def test_short_secret_refuses_to_start(make_settings: SettingsFactory, tmp_path: Any) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/short.db",
        demo=False,
        auth_enabled=True,
        token_secret="too-short",
    )
    with pytest.raises(RuntimeError, match="at least 32 bytes"):
        create_app(settings)
