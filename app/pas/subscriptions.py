"""PAS Subscriptions (R5 Backport on R4, rest-hook only) and the notifications they receive.

A client POSTs a Subscription to the PAS topic; it is stored with status `requested` (the 201
answer says so, even when the handshake is quick), a handshake is queued in the outbox, and the
outbox worker moves it to `active` once the endpoint accepts the handshake, or `error` when it
never does. Checks (400 naming the element): `criteria` is the PAS topic, `channel.type` is
rest-hook (PAS spec-56), the endpoint is an https URL (http only in demo mode or with
`GREENLIGHT_SUBSCRIPTION_ALLOW_HTTP`), the payload is FHIR JSON, each header is `Name: value`,
and on the PAS 2.2.1 base the content is `full-resource` (PAS spec-62).

Filters: `org-identifier=<id>` and `orgIdentifier=<id>` (both spellings are in the IG; several
ids may be comma-separated) restrict the subscription to requests whose submitting organization
(Claim.provider) carries one of the ids, or whose ISA06 sender id is one of them. On the PAS
2.2.1 base the filter criteria are required to be exactly that, `org-identifier=[sending system
identifier]` (PAS spec-58; 400 otherwise); on the 2.0.1 base other filter expressions (the
Inferno kit's `Encounter.patient=...`) are kept on the resource and ignored. Whatever the
filters, a subscription only ever hears about requests submitted by the same authenticated
client that created it (PAS spec-59), to the same PAS version's endpoint.

Notifications are `history` Bundles whose first entry is the SubscriptionStatus Parameters
(Backport `backport-subscription-status-r4`). `id-only` (PAS 2.0.1) events name the
ClaimResponse; `full-resource` (PAS 2.2.1, spec-61) events carry the whole PAS Response Bundle
as the focus. `channel.header` values are sent verbatim. Heartbeats are sent only when the
Subscription asks for them (`backport-heartbeat-period`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from app.fhir.outcomes import FhirError, Issue
from app.pas.codes import PAS_TOPIC, PasVersion

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT_PERIOD = BACKPORT + "backport-heartbeat-period"
STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
ORG_FILTER_NAMES = ("org-identifier", "orgIdentifier")
CONTENTS = ("empty", "id-only", "full-resource")
_SKIPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Channel:
    """What the outbox needs to deliver to one subscription."""

    endpoint: str
    headers: tuple[str, ...]
    payload_type: str
    content: str
    org_filters: tuple[str, ...]
    heartbeat_seconds: int | None

    def http_headers(self) -> dict[str, str]:
        """`channel.header` entries as HTTP headers (verbatim), and the payload Content-Type."""
        headers = {"Content-Type": self.payload_type}
        for line in self.headers:
            name, _, value = line.partition(":")
            if name.strip().lower() not in _SKIPPED_HEADERS:
                headers[name.strip()] = value.strip()
        return headers


def _bad(message: str, expression: str, code: str = "invalid") -> FhirError:
    return FhirError(400, Issue("error", code, message, (expression,)))


def _extension_values(node: Any, url: str) -> list[Any]:
    found = []
    for item in (node or {}).get("extension") or []:
        if isinstance(item, dict) and item.get("url") == url:
            found.append(next((v for k, v in item.items() if k.startswith("value")), None))
    return found


def _check_org_filter(subscription: dict[str, Any]) -> None:
    """PAS 2.2.1: the filter criteria are `org-identifier=<ids>` (PAS spec-58)."""
    extensions = (subscription.get("_criteria") or {}).get("extension") or []
    criteria = [
        (position, e.get("valueString"))
        for position, e in enumerate(extensions)
        if isinstance(e, dict) and e.get("url") == FILTER_CRITERIA
    ]
    if not criteria:
        raise _bad(
            "A PAS subscription names the sending system it monitors: filter criteria "
            "org-identifier=[sending system identifier] (PAS spec-58)",
            "Subscription._criteria.extension",
            "required",
        )
    for position, criterion in criteria:
        name, equals, value = str(criterion or "").partition("=")
        ids = [v.strip() for v in value.split(",")]
        if name.strip() not in ORG_FILTER_NAMES or not equals or not all(ids):
            raise _bad(
                f"Filter criteria {criterion!r} is not org-identifier=[sending system identifier] "
                "(several ids comma-separated) (PAS spec-58)",
                f"Subscription._criteria.extension[{position}]",
            )


def org_filters(subscription: dict[str, Any]) -> tuple[str, ...]:
    """The organization ids of the `org-identifier` / `orgIdentifier` filters."""
    values: list[str] = []
    for criterion in _extension_values(subscription.get("_criteria"), FILTER_CRITERIA):
        for part in str(criterion or "").split("&"):
            name, _, value = part.partition("=")
            if name.strip() in ORG_FILTER_NAMES:
                values.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(values))


def parse_channel(
    subscription: dict[str, Any], version: PasVersion, *, allow_http: bool
) -> Channel:
    """Check a PAS Subscription and read its channel; raise 400 naming the element."""
    criteria = subscription.get("criteria")
    if criteria != PAS_TOPIC:
        raise _bad(
            f"This server supports the PAS topic only: criteria must be {PAS_TOPIC}",
            "Subscription.criteria",
            "not-supported",
        )
    channel = subscription.get("channel")
    if not isinstance(channel, dict):
        raise _bad("Subscription.channel is required", "Subscription.channel", "required")
    if channel.get("type") != "rest-hook":
        raise _bad(
            f"Only rest-hook channels are supported (PAS spec-56), not {channel.get('type')!r}",
            "Subscription.channel.type",
            "not-supported",
        )
    endpoint = channel.get("endpoint")
    parts = urlsplit(str(endpoint or ""))
    schemes = ("https", "http") if allow_http else ("https",)
    if not endpoint or parts.scheme not in schemes or not parts.netloc:
        raise _bad(
            f"channel.endpoint must be an {' or '.join(schemes)} URL",
            "Subscription.channel.endpoint",
        )
    payload_type = str(channel.get("payload") or "application/fhir+json")
    if payload_type.split(";", 1)[0].strip() not in ("application/fhir+json", "application/json"):
        raise _bad("channel.payload must be application/fhir+json", "Subscription.channel.payload")
    contents = _extension_values(channel.get("_payload"), PAYLOAD_CONTENT)
    content = str(contents[0]) if contents else "full-resource"
    if content not in CONTENTS:
        raise _bad(
            f"Unknown payload content {content!r}", "Subscription.channel._payload.extension"
        )
    if version == "2.2.1" and content != "full-resource":
        raise _bad(
            "PAS 2.2.1 subscriptions carry full-resource notifications (PAS spec-62)",
            "Subscription.channel._payload.extension",
            "not-supported",
        )
    if version == "2.2.1":
        _check_org_filter(subscription)
    headers = channel.get("header") or []
    for position, header in enumerate(headers):
        name, colon, _ = str(header).partition(":")
        if not colon or not name.strip():
            raise _bad(
                "A channel header is `Name: value`", f"Subscription.channel.header[{position}]"
            )
    heartbeats = _extension_values(channel, HEARTBEAT_PERIOD)
    heartbeat = int(heartbeats[0]) if heartbeats and heartbeats[0] else None
    return Channel(
        endpoint=str(endpoint),
        headers=tuple(str(h) for h in headers),
        payload_type=payload_type,
        content=content,
        org_filters=org_filters(subscription),
        heartbeat_seconds=heartbeat,
    )


def matches(owner: str, filters: tuple[str, ...], submitter: str, keys: set[str]) -> bool:
    """Whether a subscription hears about a request (same client; an org id in common)."""
    if owner != submitter:
        return False
    return not filters or bool(set(filters) & keys)


def _instant(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_parameters(
    subscription_url: str,
    status: str,
    kind: str,
    events: int,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A SubscriptionStatus (Backport R4 Parameters)."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url}},
        {"name": "topic", "valueCanonical": PAS_TOPIC},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events)},
    ]
    if event is not None:
        parameters.append({"name": "notification-event", "part": event["part"]})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def notification_bundle(
    subscription_url: str,
    status: str,
    kind: str,
    events: int,
    *,
    event_number: int | None = None,
    focus_url: str | None = None,
    focus_resource: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A notification (handshake, heartbeat or event) as the `history` Bundle to POST."""
    now = datetime.now(UTC)
    event = None
    if event_number is not None:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event_number)},
            {"name": "timestamp", "valueInstant": _instant(now)},
        ]
        if focus_url is not None:
            parts.append({"name": "focus", "valueReference": {"reference": focus_url}})
        event = {"part": parts}
    parameters = status_parameters(subscription_url, status, kind, events, event)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{parameters['id']}",
            "resource": parameters,
            "request": {"method": "GET", "url": f"{subscription_url}/$status"},
            "response": {"status": "200"},
        }
    ]
    if focus_url is not None and event is not None:
        focus: dict[str, Any] = {"fullUrl": focus_url}
        if focus_resource is not None:
            focus["resource"] = focus_resource
        focus["request"] = {"method": "GET", "url": focus_url}
        focus["response"] = {"status": "200"}
        entries.append(focus)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": _instant(now),
        "entry": entries,
    }


def status_bundle(subscription_url: str, status: str, events: int) -> dict[str, Any]:
    """The `$status` answer: a searchset Bundle holding the SubscriptionStatus."""
    parameters = status_parameters(subscription_url, status, "query-status", events)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{parameters['id']}",
                "resource": parameters,
                "search": {"mode": "match"},
            }
        ],
    }
