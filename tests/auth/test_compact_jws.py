"""The one-pass compact JWS reader (`app.auth.compact_jws`): engineering tests.

Tokens are signed by PyJWT with fresh `cryptography` keys; what `parse_compact_jws` reads is
compared with what PyJWT itself reads from the same token, and every malformed shape the module
promises to refuse is built from a valid token by changing one thing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.types import Options

from app.auth.compact_jws import (
    ClaimError,
    MalformedJwsError,
    check_time_claims,
    parse_compact_jws,
    signature_verifies,
)

NOW = 1_800_000_000.0
LEEWAY = 60.0
CLAIMS: dict[str, Any] = {
    "iss": "https://ehr.example/cds-client",
    "aud": "https://payer.example/cds-services/order-sign-crd",
    "exp": 1_800_000_300,
    "iat": 1_800_000_000,
    "jti": "a" * 64,
    "nested": {"list": [1, 2.5, None, True], "text": "é"},
}

# PyJWT options that check the signature only (the claims are about a moment in the future)
_NO_CLAIMS: Options = {"verify_exp": False, "verify_iat": False, "verify_aud": False}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP384R1())
P256_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key(alg: str) -> PrivateKey:
    return EC_KEY if alg == "ES384" else RSA_KEY


def _token(alg: str = "ES384", claims: dict[str, Any] | None = None, **headers: Any) -> str:
    return jwt.encode(
        CLAIMS if claims is None else claims,
        _key(alg),
        algorithm=alg,
        headers={"kid": f"{alg}-key", "typ": "JWT", **headers},
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _with_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def _refusal(token: str) -> str:
    with pytest.raises(MalformedJwsError) as caught:
        parse_compact_jws(token)
    return str(caught.value)


def _non_canonical(segment: str) -> str:
    """`segment` with non-zero padding bits in its last character (it decodes to the same bytes
    with a lenient decoder)."""
    assert len(segment) % 4 in (2, 3), "only a partial last group has padding bits"
    last = _ALPHABET.index(segment[-1])
    assert last % 4 == 0, "a canonical last character has its padding bits clear"
    return segment[:-1] + _ALPHABET[last + 1]


# --- valid tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_valid_token_reads_as_pyjwt_reads_it_and_verifies(alg: str) -> None:
    token = _token(alg)
    jws = parse_compact_jws(token)

    assert jws.header == jwt.get_unverified_header(token)
    assert jws.header == {"alg": alg, "typ": "JWT", "kid": f"{alg}-key"}
    assert jws.claims == jwt.decode(token, options={"verify_signature": False})
    assert jws.claims == CLAIMS
    assert jws.signing_input == token.rsplit(".", 1)[0].encode("ascii")
    assert _b64(jws.signature) == token.rsplit(".", 1)[1]

    public_key = _key(alg).public_key()
    assert signature_verifies(jws, public_key, alg)
    # PyJWT, verifying the same token with the same key, agrees
    assert (
        jwt.decode(
            token,
            public_key,
            algorithms=[alg],
            options=_NO_CLAIMS,
        )
        == CLAIMS
    )


def test_es384_signatures_are_raw_r_and_s_not_der() -> None:
    token = _token("ES384")
    jws = parse_compact_jws(token)
    der = EC_KEY.sign(jws.signing_input, ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(48, "big") + s.to_bytes(48, "big")

    as_raw = parse_compact_jws(_with_segment(token, 2, _b64(raw)))
    assert signature_verifies(as_raw, EC_KEY.public_key(), "ES384")
    as_der = parse_compact_jws(_with_segment(token, 2, _b64(der)))
    assert not signature_verifies(as_der, EC_KEY.public_key(), "ES384")


def test_up_to_two_padding_characters_are_tolerated() -> None:
    token = _token("RS384")
    head, payload, signature = token.split(".")
    payload_padding = "=" * (-len(payload) % 4)
    assert payload_padding and len(signature) % 4 == 2
    padded_token = f"{head}.{payload}{payload_padding}.{signature}=="
    padded = parse_compact_jws(padded_token)
    plain = parse_compact_jws(token)
    assert (padded.header, padded.claims, padded.signature) == (
        plain.header,
        plain.claims,
        plain.signature,
    )
    # the signing input is the text as sent (RFC 7515 §5.2): the padding is part of it, so the
    # signature made over the unpadded text does not verify, for PyJWT neither
    assert padded.signing_input == f"{head}.{payload}{payload_padding}".encode()
    assert not signature_verifies(padded, RSA_KEY.public_key(), "RS384")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(padded_token, RSA_KEY.public_key(), algorithms=["RS384"], options=_NO_CLAIMS)


# --- malformed tokens --------------------------------------------------------------------------


def test_a_compact_jws_has_exactly_three_segments() -> None:
    head, payload, signature = _token().split(".")
    assert "three segments" in _refusal(f"{head}.{payload}")
    assert "three segments" in _refusal(f"{head}.{payload}.{signature}.{signature}")
    assert "three segments" in _refusal(f"{head}{payload}{signature}")


@pytest.mark.parametrize(("index", "name"), [(0, "header"), (1, "payload"), (2, "signature")])
def test_junk_characters_are_refused_in_every_segment(index: int, name: str) -> None:
    token = _token()
    assert f"the {name} is not base64url" in _refusal(_with_segment(token, index, "!!!!"))
    segment = token.split(".")[index]
    for junk in ("+", "/", " ", "*", "="):
        broken = _with_segment(token, index, segment[:4] + junk + segment[5:])
        assert "not base64url" in _refusal(broken), junk


@pytest.mark.parametrize(("index", "name"), [(0, "header"), (1, "payload"), (2, "signature")])
def test_a_segment_length_of_one_more_than_a_multiple_of_four_is_refused(
    index: int, name: str
) -> None:
    token = _token("RS384")
    segment = token.split(".")[index]
    cut = segment[: len(segment) - (len(segment) % 4) - 3]  # a length of 4k + 1
    assert len(cut) % 4 == 1
    assert f"the {name} is not base64url" in _refusal(_with_segment(token, index, cut))


def test_non_canonical_base64url_is_refused_in_every_segment() -> None:
    header = _json_segment({"alg": "RS384"})  # 16 bytes: 22 characters, 4 padding bits
    payload = _json_segment({"a": 1})  # 8 bytes: 11 characters, 2 padding bits
    signature = parse_compact_jws(_token("RS384")).signature
    sig = _b64(signature)
    assert parse_compact_jws(f"{header}.{payload}.{sig}").claims == {"a": 1}

    assert "header is not canonical" in _refusal(f"{_non_canonical(header)}.{payload}.{sig}")
    assert "payload is not canonical" in _refusal(f"{header}.{_non_canonical(payload)}.{sig}")
    assert "signature is not canonical" in _refusal(f"{header}.{payload}.{_non_canonical(sig)}")


def test_more_than_two_padding_characters_are_refused() -> None:
    head, payload, signature = _token("RS384").split(".")
    assert "padding" in _refusal(f"{head}.{payload}===.{signature}")
    assert "padding" in _refusal(f"{head}.{payload}.{signature}====")
    assert "padding" in _refusal(f"{head}====.{payload}.{signature}")
    # padding that does not complete a group of four is refused too
    assert len(signature) % 4 == 2
    assert "padding" in _refusal(f"{head}.{payload}.{signature}=")


@pytest.mark.parametrize("value", [[1, 2], "text", 42, None, True])
def test_header_and_payload_must_be_json_objects(value: object) -> None:
    head, payload, signature = _token().split(".")
    segment = _json_segment(value)
    assert "the header is not a JSON object" in _refusal(f"{segment}.{payload}.{signature}")
    assert "the payload is not a JSON object" in _refusal(f"{head}.{segment}.{signature}")


def test_header_and_payload_must_be_json() -> None:
    head, payload, signature = _token().split(".")
    junk = _b64(b"{not json")
    assert "the header is not JSON" in _refusal(f"{junk}.{payload}.{signature}")
    assert "the payload is not JSON" in _refusal(f"{head}.{junk}.{signature}")
    assert "the payload is not JSON" in _refusal(f"{head}..{signature}")


def test_a_crit_header_is_refused() -> None:
    token = _token(crit=["exp"])
    assert "crit" in _refusal(token)
    with pytest.raises(jwt.InvalidTokenError, match="critical"):  # PyJWT refuses it as well
        jwt.get_unverified_header(token)


def test_a_token_that_is_not_ascii_is_refused() -> None:
    head, payload, signature = _token().split(".")
    assert "ASCII" in _refusal(f"{head}.{payload}é.{signature}")


# --- signatures that do not verify --------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_tampered_payload_does_not_verify(alg: str) -> None:
    token = _token(alg)
    tampered = _with_segment(token, 1, _json_segment({**CLAIMS, "iss": "https://attacker"}))
    jws = parse_compact_jws(tampered)
    assert jws.claims["iss"] == "https://attacker"
    assert not signature_verifies(jws, _key(alg).public_key(), alg)


def test_a_signature_by_another_key_does_not_verify() -> None:
    forged = jwt.encode(CLAIMS, OTHER_EC_KEY, algorithm="ES384")
    assert not signature_verifies(parse_compact_jws(forged), EC_KEY.public_key(), "ES384")
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged_rsa = jwt.encode(CLAIMS, other_rsa, algorithm="RS384")
    assert not signature_verifies(parse_compact_jws(forged_rsa), RSA_KEY.public_key(), "RS384")


def test_an_es384_token_checked_with_a_p256_key_is_false() -> None:
    jws = parse_compact_jws(_token("ES384"))
    assert signature_verifies(jws, P256_KEY.public_key(), "ES384") is False
    # the same for a token really signed with the P-256 key: ES384 needs P-384
    p256_signed = jwt.encode(CLAIMS, P256_KEY, algorithm="ES256")
    p256_jws = parse_compact_jws(p256_signed)
    assert signature_verifies(p256_jws, P256_KEY.public_key(), "ES256")
    assert signature_verifies(p256_jws, P256_KEY.public_key(), "ES384") is False


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_raw_signature_of_the_wrong_length_does_not_verify(alg: str) -> None:
    token = _token(alg)
    signature = parse_compact_jws(token).signature
    for wrong in (signature[:-1], signature + b"\x00", b"\x00" + signature, b""):
        jws = parse_compact_jws(_with_segment(token, 2, _b64(wrong)))
        assert jws.signature == wrong
        assert signature_verifies(jws, _key(alg).public_key(), alg) is False


# --- time claims --------------------------------------------------------------------------------


def _claim_error(claims: dict[str, Any]) -> ClaimError:
    with pytest.raises(ClaimError) as caught:
        check_time_claims(claims, NOW, LEEWAY)
    return caught.value


def test_expired_at_exactly_now_minus_leeway() -> None:
    assert _claim_error({"exp": NOW - LEEWAY}).kind == "expired"
    assert _claim_error({"exp": int(NOW - LEEWAY)}).kind == "expired"
    assert _claim_error({"exp": NOW - LEEWAY - 3600}).kind == "expired"


def test_accepted_within_the_leeway() -> None:
    check_time_claims({"exp": NOW - LEEWAY + 0.001, "iat": NOW - 300}, NOW, LEEWAY)
    check_time_claims({"exp": int(NOW - LEEWAY + 1)}, NOW, LEEWAY)
    check_time_claims({"iat": NOW + LEEWAY, "nbf": NOW + LEEWAY}, NOW, LEEWAY)
    check_time_claims({}, NOW, LEEWAY)  # required claims are the verifier's business


@pytest.mark.parametrize("name", ["iat", "nbf"])
def test_iat_or_nbf_beyond_the_leeway_in_the_future_is_refused(name: str) -> None:
    error = _claim_error({"exp": NOW + 300, name: NOW + LEEWAY + 1})
    assert error.kind == "immature"
    assert name in str(error)
    assert _claim_error({name: NOW + LEEWAY + 0.001}).kind == "immature"


@pytest.mark.parametrize("value", ["1800000300", "soon", True, False, [NOW], {"at": NOW}])
def test_a_time_claim_that_is_not_a_number_is_invalid(value: object) -> None:
    for name in ("exp", "iat", "nbf"):
        error = _claim_error({name: value})
        assert error.kind == "invalid"
        assert name in str(error)
