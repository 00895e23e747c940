"""Content negotiation in one place: `Accept`, `_format`, `_pretty` and request `Content-Type`.

Greenlight speaks FHIR JSON only. An XML (or other) request for the response answers 406, an XML
(or other) request body answers 415; both say that JSON is the only format.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.fhir.outcomes import FhirError

_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_ACCEPTABLE_MEDIA = {
    "*/*",
    "application/*",
    "application/json",
    "application/fhir+json",
    "application/json+fhir",
}
_ACCEPTABLE_BODY = {"application/fhir+json", "application/json", "application/json+fhir"}


@dataclass(frozen=True)
class Negotiated:
    """What the client asked of the response."""

    pretty: bool = False


def _media_types(header: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()]


def negotiate(request: Request) -> Negotiated:
    """Check the response format the client asks for; raise 406 unless it is JSON."""
    params = request.query_params
    requested_format = params.get("_format")
    if requested_format is not None:
        if requested_format.strip().lower() not in _JSON_FORMATS:
            raise FhirError.single(
                406,
                "not-supported",
                f"_format={requested_format} is not supported: this server answers "
                "application/fhir+json only",
                "_format",
            )
    else:
        accept = request.headers.get("accept")
        if accept:
            media = _media_types(accept)
            if media and not any(m in _ACCEPTABLE_MEDIA for m in media):
                raise FhirError.single(
                    406,
                    "not-supported",
                    f"Accept: {accept} cannot be met: this server answers "
                    "application/fhir+json only",
                    "Accept",
                )
    pretty = params.get("_pretty", "false").strip().lower() == "true"
    return Negotiated(pretty=pretty)


def check_body_media_type(request: Request) -> None:
    """Raise 415 unless the request body is declared as JSON (a missing header is JSON)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _ACCEPTABLE_BODY:
        raise FhirError.single(
            415,
            "not-supported",
            f"Content-Type {media} is not supported: send application/fhir+json",
            "Content-Type",
        )
