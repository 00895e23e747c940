"""A signed JWT in compact serialization, read once: header, claims, signing input, signature.

The CDS Hooks verifier needs the header (`alg`, `kid`, `jku`) and the `iss` claim before it can
pick the key, then the signature and the time claims. PyJWT's API reads the token again for each
of those steps (three full base64url and JSON decodes, each checking the alphabet a character at
a time); here it is read once and the same checks are made:

- exactly three segments; each strict base64url (alphabet only, no length that cannot be
  base64, canonical: re-encoding gives the segment back; up to two `=` of padding tolerated, as
  PyJWT does); header and payload are JSON objects;
- a `crit` header is refused: Greenlight understands no JWS extension (RFC 7515 §4.1.11);
- the signature is checked by PyJWT's own algorithm objects (`prepare_key` refuses a key of the
  wrong type or curve; ECDSA signatures are the raw `r || s` of RFC 7518 §3.4);
- time claims as PyJWT: `exp` and `iat` (and `nbf`, when present) are numbers; expired when
  `exp <= now - leeway`; not valid yet when `iat` or `nbf` is after `now + leeway`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from jwt.exceptions import InvalidKeyError

_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")
_NUMBER = (int, float)


class MalformedJwsError(ValueError):
    """The text is not a compact JWS with JSON header and claims."""


class ClaimError(ValueError):
    """A time claim is missing, not a number, expired or not valid yet (`kind` says which)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CompactJws:
    """The decoded parts of a compact JWS; nothing here is verified yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _segment(segment: bytes, name: str) -> bytes:
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4):
        raise MalformedJwsError(f"invalid {name} padding")
    if len(stripped) % 4 == 1 or not _BASE64URL.fullmatch(stripped):
        raise MalformedJwsError(f"the {name} is not base64url")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except binascii.Error as exc:
        raise MalformedJwsError(f"the {name} is not base64url") from exc
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise MalformedJwsError(f"the {name} is not canonical base64url")
    return decoded


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedJwsError(f"the {name} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedJwsError(f"the {name} is not a JSON object")
    return value


def parse_compact_jws(token: str) -> CompactJws:
    """Split and decode `token`, or raise `MalformedJwsError`."""
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MalformedJwsError("the token is not ASCII") from exc
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedJwsError("a compact JWS has three segments")
    header = _json_object(_segment(parts[0], "header"), "header")
    if "crit" in header:
        raise MalformedJwsError("the header has crit: no JWS extension is supported")
    claims = _json_object(_segment(parts[1], "payload"), "payload")
    signature = _segment(parts[2], "signature")
    return CompactJws(header, claims, raw[: len(parts[0]) + 1 + len(parts[1])], signature)


def signature_verifies(jws: CompactJws, key: Any, alg: str) -> bool:
    """Whether `key` signed `jws` with `alg` (False for a key `alg` cannot use)."""
    algorithm = jwt.get_algorithm_by_name(alg)
    try:
        prepared = algorithm.prepare_key(key)
    except (InvalidKeyError, TypeError, ValueError):
        return False
    return bool(algorithm.verify(jws.signing_input, prepared, jws.signature))


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise ClaimError("invalid", f"the {name} claim must be a number")
    return float(value)


def check_time_claims(claims: dict[str, Any], now: float, leeway: float) -> None:
    """`exp`, `iat` and `nbf` against `now` with `leeway` seconds of skew; `ClaimError` if not."""
    exp = _number(claims, "exp")
    if exp is not None and exp <= now - leeway:
        raise ClaimError("expired", "the JWT has expired")
    for name in ("iat", "nbf"):
        moment = _number(claims, name)
        if moment is not None and moment > now + leeway:
            raise ClaimError("immature", f"the JWT is not valid yet ({name})")
