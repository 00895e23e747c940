"""The client-assertion verifier without a server: JWKS by URL (fetched with httpx, mocked with
pytest-httpx for the client's key host only), key rotation, client registration checks, and the
jti replay table on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import func, insert, select

from app.auth.client_assertion import (
    ClientAssertionVerifier,
    OAuthError,
    ReplayGuard,
    register_clients,
)
from app.config import ClientConfig
from app.store.db import Database, create_database
from app.store.migrate import upgrade_database
from app.store.tables import used_assertion_ids
from tests.auth.smart_client import ClientKey, new_ec_key, new_rsa_key
from tests.conftest import DatabaseFactory

KEY_HOST = "keys.client.example"
JWKS_URL = f"https://{KEY_HOST}/.well-known/jwks.json"
TOKEN_URL = "https://payer.example/auth/token"

only_the_key_host = pytest.mark.httpx_mock(should_mock=lambda request: request.url.host == KEY_HOST)


@pytest.fixture
def migrated_url(backend: str, new_database_url: DatabaseFactory) -> Iterator[str]:
    url = new_database_url(backend)
    upgrade_database(url)
    yield url


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Database]:
    database = create_database(migrated_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def keys() -> tuple[ClientKey, ClientKey]:
    """Two ES384 keys of the same client: the old one and the one it rotates to."""
    return (
        ClientKey("rotating", "key-2024", "ES384", new_ec_key()),
        ClientKey("rotating", "key-2025", "ES384", new_ec_key()),
    )


def _verifier(database: Database, *, min_refresh_seconds: float) -> ClientAssertionVerifier:
    config = ClientConfig(client_id="rotating", scopes=["system/*.rs"], jwks_url=JWKS_URL)
    clients = register_clients([config], min_refresh_seconds=min_refresh_seconds)
    return ClientAssertionVerifier(clients, TOKEN_URL, ReplayGuard(database.writer))


async def _refused(verifier: ClientAssertionVerifier, assertion: str) -> str:
    with pytest.raises(OAuthError) as caught:
        await verifier.verify(assertion)
    assert caught.value.error == "invalid_client"
    assert caught.value.status == 401
    return caught.value.description


@only_the_key_host
async def test_key_rotation_refetches_the_jwks_on_unknown_kid(
    httpx_mock: HTTPXMock, database: Database, keys: tuple[ClientKey, ClientKey]
) -> None:
    old, new = keys
    httpx_mock.add_response(url=JWKS_URL, json=old.jwks())
    httpx_mock.add_response(url=JWKS_URL, json=new.jwks(), is_reusable=True)
    verifier = _verifier(database, min_refresh_seconds=0)

    verified = await verifier.verify(old.assertion(TOKEN_URL))
    assert verified.client.client_id == "rotating"
    await verifier.verify(old.assertion(TOKEN_URL))
    assert len(httpx_mock.get_requests()) == 1, "cached by kid"

    await verifier.verify(new.assertion(TOKEN_URL))
    assert len(httpx_mock.get_requests()) == 2, "refetched once for the unknown kid"

    description = await _refused(verifier, old.assertion(TOKEN_URL))
    assert "kid" in description, "the retired key is no longer accepted"


@only_the_key_host
async def test_refetch_for_unknown_kid_is_rate_limited(
    httpx_mock: HTTPXMock, database: Database, keys: tuple[ClientKey, ClientKey]
) -> None:
    old, _new = keys
    httpx_mock.add_response(url=JWKS_URL, json=old.jwks())
    verifier = _verifier(database, min_refresh_seconds=60)
    await verifier.verify(old.assertion(TOKEN_URL))
    for attempt in range(3):
        await _refused(verifier, old.assertion(TOKEN_URL, headers={"kid": f"random-{attempt}"}))
    assert len(httpx_mock.get_requests()) == 1


@only_the_key_host
async def test_unreachable_jwks_is_invalid_client(
    httpx_mock: HTTPXMock, database: Database, keys: tuple[ClientKey, ClientKey]
) -> None:
    httpx_mock.add_response(url=JWKS_URL, status_code=503)
    verifier = _verifier(database, min_refresh_seconds=60)
    description = await _refused(verifier, keys[0].assertion(TOKEN_URL))
    assert "could not be fetched" in description


@only_the_key_host
async def test_jwks_fetch_errors_keep_the_known_keys(
    httpx_mock: HTTPXMock, database: Database, keys: tuple[ClientKey, ClientKey]
) -> None:
    old, _new = keys
    httpx_mock.add_response(url=JWKS_URL, json=old.jwks())
    httpx_mock.add_exception(httpx.ConnectTimeout("key host down"), url=JWKS_URL)
    verifier = _verifier(database, min_refresh_seconds=0)
    await verifier.verify(old.assertion(TOKEN_URL))
    remote = verifier.clients["rotating"].keys.remote
    assert remote is not None
    remote.ttl_seconds = 0  # stale: the next verification refetches, and that fetch fails
    await verifier.verify(old.assertion(TOKEN_URL))
    assert len(httpx_mock.get_requests()) == 2


async def test_alg_must_match_the_key_type(database: Database) -> None:
    rsa_key = ClientKey("mixed", "k1", "RS384", new_rsa_key())
    config = ClientConfig(client_id="mixed", scopes=["system/*.rs"], jwks=rsa_key.jwks())
    verifier = ClientAssertionVerifier(
        register_clients([config]), TOKEN_URL, ReplayGuard(database.writer)
    )
    await verifier.verify(rsa_key.assertion(TOKEN_URL))
    ec_impostor = ClientKey("mixed", "k1", "ES384", new_ec_key())
    description = await _refused(verifier, ec_impostor.assertion(TOKEN_URL))
    assert "no ES384 key" in description


def _config(**values: Any) -> ClientConfig:
    return ClientConfig.model_validate({"client_id": "c", "scopes": ["system/*.rs"], **values})


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ([_config()], "exactly one of"),
        ([_config(jwks={"keys": []}, jwks_url=JWKS_URL)], "exactly one of"),
        ([_config(jwks={"keys": []})], "no RS384"),
        ([_config(jwks={"not-keys": []})], "keys"),
        ([_config(jwks_url=JWKS_URL), _config(jwks_url=JWKS_URL)], "registered twice"),
    ],
)
def test_client_registration_errors(configs: list[ClientConfig], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        register_clients(configs)


def test_weak_or_unsupported_keys_are_not_registered() -> None:
    weak = ClientKey("c", "weak", "RS384", new_rsa_key(1024)).public_jwk()
    p256 = {
        "kty": "EC",
        "crv": "P-256",
        "kid": "p256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    secret = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    no_kid = ClientKey("c", "x", "RS384", new_rsa_key()).public_jwk()
    del no_kid["kid"]
    with pytest.raises(RuntimeError, match="no RS384"):
        register_clients([_config(jwks={"keys": [weak, p256, secret, no_kid]})])


async def test_replay_guard_records_each_jti_once(database: Database) -> None:
    guard = ReplayGuard(database.writer)
    assert await guard.first_use("client-a", "jti-1", 4_000_000_000)
    assert not await guard.first_use("client-a", "jti-1", 4_000_000_000)
    assert await guard.first_use("client-b", "jti-1", 4_000_000_000), "jti is per client"


async def test_replay_guard_purges_expired_rows(database: Database) -> None:
    async with database.writer.begin() as conn:
        await conn.execute(
            insert(used_assertion_ids).values(client_id="old", jti="gone", expires_at=1000)
        )
    guard = ReplayGuard(database.writer)
    assert await guard.first_use("client-a", "fresh", 4_000_000_000)
    async with database.reader.connect() as conn:
        remaining = (
            await conn.execute(select(func.count()).select_from(used_assertion_ids))
        ).scalar_one()
    assert remaining == 1


async def test_concurrent_first_calls_purge_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen calls at once on a new guard (a worker's start, or the minute elapsed): one purge,
    not one per call waiting for the first one's COMMIT."""
    guard = ReplayGuard(database.writer)
    purges = 0
    real_purge = guard._purge_expired

    async def counted() -> None:
        nonlocal purges
        purges += 1
        await real_purge()

    monkeypatch.setattr(guard, "_purge_expired", counted)
    firsts = await asyncio.gather(
        *(guard.first_use("client-a", f"jti-{n}", 4_000_000_000) for n in range(16))
    )
    assert firsts == [True] * 16
    assert purges == 1
