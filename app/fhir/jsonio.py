"""JSON in and out: orjson, FHIR media types, and responses that are serialized exactly once.

Nothing leaves the server with `null` fields: `strip_nulls` is applied to every payload built in
Python, and stored resources are written without them.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

FHIR_JSON = "application/fhir+json"
FHIR_JSON_UTF8 = f"{FHIR_JSON}; charset=utf-8"


def strip_nulls(value: Any) -> Any:
    """A copy of `value` without None members or empty objects and lists (invalid in FHIR)."""
    if isinstance(value, dict):
        cleaned = {k: strip_nulls(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {} and v != []}
    if isinstance(value, list):
        items = [strip_nulls(v) for v in value if v is not None]
        return [v for v in items if v != {} and v != []]
    return value


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, option=option)


def reformat(body: bytes, *, pretty: bool) -> bytes:
    """Stored JSON as sent on the wire (re-indented only when `_pretty=true`)."""
    return dumps(orjson.loads(body), pretty=True) if pretty else body


class FhirResponse(Response):
    """A response whose body is FHIR JSON bytes serialized once."""

    media_type = FHIR_JSON_UTF8


def fhir_response(
    body: dict[str, Any] | bytes,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    *,
    pretty: bool = False,
) -> FhirResponse:
    if isinstance(body, bytes):
        content = reformat(body, pretty=pretty)
    else:
        content = dumps(strip_nulls(body), pretty=pretty)
    return FhirResponse(content=content, status_code=status_code, headers=headers)
