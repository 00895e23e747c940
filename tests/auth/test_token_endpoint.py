"""`POST /auth/token` and SMART discovery, against a live server on both backends.

Requirement: client_credentials with a private_key_jwt client assertion (RS384/ES384, JWKS inline
or by URL); unknown client, bad signature, expired or replayed assertion, `alg: none` -> 401
`invalid_client`; answers are RFC 6749 JSON with `Cache-Control: no-store`.
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from app.auth.client_assertion import ASSERTION_TYPE
from tests.auth.conftest import Clients
from tests.auth.smart_client import (
    DROP,
    JwksHost,
    hmac_jwt,
    oauth_error,
    request_token,
    token_url,
    unsigned_jwt,
)
from tests.support.live_server import LiveServer


def test_rs384_inline_jwks_gets_a_bearer_token(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    response = request_token(auth_server, assertion, "system/Patient.rs")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == auth_server.settings.token_lifetime_seconds
    assert body["scope"] == "system/Patient.rs"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "reader"
    assert claims["aud"] == auth_server.fhir
    assert claims["scope"] == "system/Patient.rs"
    assert claims["exp"] - claims["iat"] == auth_server.settings.token_lifetime_seconds


def test_es384_jwks_url_gets_a_bearer_token(
    auth_server: LiveServer, clients: Clients, jwks_host: JwksHost
) -> None:
    assertion = clients.writer.assertion(token_url(auth_server))
    response = request_token(auth_server, assertion, "system/Patient.cruds system/Coverage.rs")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Patient.cruds system/Coverage.rs"
    assert jwks_host.requests, "the server fetched the client's JWKS from its URL"


def test_jwks_url_is_cached(auth_server: LiveServer, clients: Clients, jwks_host: JwksHost) -> None:
    for _ in range(2):
        response = request_token(
            auth_server, clients.writer.assertion(token_url(auth_server)), "system/Patient.rs"
        )
        assert response.status_code == 200, response.text
    fetched = len(jwks_host.requests)
    for _ in range(3):
        response = request_token(
            auth_server, clients.writer.assertion(token_url(auth_server)), "system/Patient.rs"
        )
        assert response.status_code == 200, response.text
    assert len(jwks_host.requests) == fetched


def test_granted_scope_drops_what_the_client_may_not_have(
    auth_server: LiveServer, clients: Clients
) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    response = request_token(
        auth_server, assertion, "system/Patient.rs system/Coverage.rs system/*.rs launch"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Patient.rs"


def test_narrower_scope_under_a_wildcard_v1_scope_is_granted(
    auth_server: LiveServer, clients: Clients
) -> None:
    assertion = clients.legacy.assertion(token_url(auth_server))
    response = request_token(auth_server, assertion, "system/Claim.rs system/Patient.read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Claim.rs system/Patient.read"


def test_no_allowed_scope_is_invalid_scope(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    response = request_token(auth_server, assertion, "system/Patient.cud system/Coverage.rs")
    description = oauth_error(response, 400, "invalid_scope")
    assert "system/Patient.cud (not registered for this client)" in description
    assert "system/Coverage.rs (not registered for this client)" in description


def test_expired_assertion_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    now = int(time.time())
    assertion = clients.reader.assertion(token_url(auth_server), exp=now - 120, iat=now - 300)
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "expired" in description


def test_assertion_living_too_long_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server), lifetime=3600)
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "future" in description


def test_replayed_jti_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    jti = uuid.uuid4().hex
    first = clients.reader.assertion(token_url(auth_server), jti=jti)
    assert request_token(auth_server, first, "system/Patient.rs").status_code == 200
    description = oauth_error(
        request_token(auth_server, first, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "replay" in description
    # A new assertion reusing the jti (even freshly signed) is a replay too.
    again = clients.reader.assertion(token_url(auth_server), jti=jti)
    oauth_error(request_token(auth_server, again, "system/Patient.rs"), 401, "invalid_client")


def test_alg_none_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    claims = clients.reader.claims(token_url(auth_server))
    assertion = unsigned_jwt({"alg": "none", "typ": "JWT", "kid": clients.reader.kid}, claims)
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "alg" in description


def test_hs256_assertion_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    claims = clients.reader.claims(token_url(auth_server))
    assertion = hmac_jwt(
        {"alg": "HS256", "typ": "JWT", "kid": clients.reader.kid},
        claims,
        b"a-shared-secret-that-the-server-never-agreed-to",
    )
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_hmac_keyed_with_the_public_key_is_refused(
    auth_server: LiveServer, clients: Clients
) -> None:
    """Algorithm confusion: HS384 with the client's public key as the HMAC secret."""
    public_pem = clients.reader.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assertion = hmac_jwt(
        {"alg": "HS384", "typ": "JWT", "kid": clients.reader.kid},
        clients.reader.claims(token_url(auth_server)),
        public_pem,
    )
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_unknown_client_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.stranger.assertion(token_url(auth_server))
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "not registered" in description


def test_signature_by_another_key_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    impostor = clients.stranger.with_client("reader")
    assertion = impostor.assertion(token_url(auth_server), headers={"kid": clients.reader.kid})
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "signature" in description


def test_tampered_claims_are_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    header, _, signature = assertion.split(".")
    forged = clients.reader.claims(token_url(auth_server), lifetime=200)
    tampered = unsigned_jwt({"alg": "RS384", "kid": clients.reader.kid}, forged)
    tampered = f"{header}.{tampered.split('.')[1]}.{signature}"
    oauth_error(request_token(auth_server, tampered, "system/Patient.rs"), 401, "invalid_client")


def test_wrong_audience_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(auth_server.fhir)
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "aud" in description


def test_missing_jti_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server), jti=DROP)
    description = oauth_error(
        request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client"
    )
    assert "jti" in description


def test_missing_exp_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server), exp=DROP)
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_sub_must_equal_iss(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server), sub="legacy")
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_unregistered_kid_is_refused(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server), headers={"kid": "unknown-kid"})
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_foreign_jku_is_refused(
    auth_server: LiveServer, clients: Clients, jwks_host: JwksHost
) -> None:
    assertion = clients.writer.assertion(
        token_url(auth_server), headers={"jku": jwks_host.url("/attacker/jwks.json")}
    )
    oauth_error(request_token(auth_server, assertion, "system/Patient.rs"), 401, "invalid_client")


def test_client_id_parameter_must_match(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    response = request_token(auth_server, assertion, "system/Patient.rs", client_id="legacy")
    oauth_error(response, 401, "invalid_client")


def test_unsupported_grant_type(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    response = request_token(
        auth_server, assertion, "system/Patient.rs", grant_type="authorization_code"
    )
    oauth_error(response, 400, "unsupported_grant_type")


def test_missing_grant_type_and_scope_are_invalid_requests(auth_server: LiveServer) -> None:
    url = token_url(auth_server)
    oauth_error(httpx.post(url, data={"scope": "system/Patient.rs"}), 400, "invalid_request")
    response = httpx.post(url, data={"grant_type": "client_credentials"})
    oauth_error(response, 400, "invalid_request")


def test_missing_or_unknown_assertion_type_is_invalid_client(
    auth_server: LiveServer, clients: Clients
) -> None:
    url = token_url(auth_server)
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    oauth_error(httpx.post(url, data=form), 401, "invalid_client")
    assertion = clients.reader.assertion(url)
    response = request_token(
        auth_server,
        assertion,
        "system/Patient.rs",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    )
    oauth_error(response, 401, "invalid_client")


def test_repeated_parameter_is_invalid_request(auth_server: LiveServer, clients: Clients) -> None:
    assertion = clients.reader.assertion(token_url(auth_server))
    body = (
        "grant_type=client_credentials&scope=system%2FPatient.rs&scope=system%2FPatient.rs"
        f"&client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}"
    )
    response = httpx.post(
        token_url(auth_server),
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    oauth_error(response, 400, "invalid_request")


def test_json_body_is_invalid_request(auth_server: LiveServer, clients: Clients) -> None:
    response = httpx.post(
        token_url(auth_server),
        json={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
    )
    oauth_error(response, 400, "invalid_request")


def test_garbage_assertion_is_invalid_client(auth_server: LiveServer) -> None:
    response = request_token(auth_server, "not-a-jwt", "system/Patient.rs")
    oauth_error(response, 401, "invalid_client")


def test_smart_configuration_needs_no_token(auth_server: LiveServer) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        response = httpx.get(f"{auth_server.base_url}{path}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        config = response.json()
        assert config["token_endpoint"] == token_url(auth_server)
        assert config["grant_types_supported"] == ["client_credentials"]
        assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
        assert "client-confidential-asymmetric" in config["capabilities"]
        assert "system/Patient.rs" in config["scopes_supported"]
        assert "greenlight/um.reviewer" in config["scopes_supported"]


def test_capability_statement_names_the_token_endpoint(auth_server: LiveServer) -> None:
    response = httpx.get(f"{auth_server.fhir}/metadata")
    assert response.status_code == 200, response.text
    security = response.json()["rest"][0]["security"]
    uris = security["extension"][0]["extension"]
    assert {"url": "token", "valueUri": token_url(auth_server)} in uris
