"""Creating, changing and removing PAS Subscriptions, and their `$status`.

Each change writes the Subscription resource (a new version), the `pas_subscriptions` row the
outbox delivers from, and any handshake to send, in one transaction. Only the client that
created a subscription may change it, delete it or ask its status (PAS spec-59).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from app.config import Settings
from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError, not_found
from app.fhir.validation.policy import PAS_V201, PAS_V221, check_inbound
from app.pas.codes import PAS_SUBSCRIPTION, PasVersion, fhir_base
from app.pas.outbox import DROPPED, PENDING, enqueue
from app.pas.subscriptions import Channel, notification_bundle, parse_channel, status_bundle
from app.store.repository import ResourceStore, ResourceWriter, new_id
from app.store.stored import StoredResource, now_us
from app.store.tables import pas_outbox, pas_subscriptions

_PREFER = {"2.0.1": PAS_V201, "2.2.1": PAS_V221}


def _forbidden(subscription_id: str) -> FhirError:
    return FhirError.single(
        403,
        "forbidden",
        f"Subscription/{subscription_id} belongs to another client: only the sending system "
        "manages its subscriptions (PAS spec-59)",
        "Subscription",
    )


class SubscriptionService:
    """The Subscription interactions this server implements itself."""

    def __init__(
        self, store: ResourceStore, settings: Settings, wake: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self.settings = settings
        self.wake = wake

    def url(self, version: PasVersion, subscription_id: str) -> str:
        return f"{fhir_base(self.settings.base_url, version)}/Subscription/{subscription_id}"

    def _channel(self, payload: Any, version: PasVersion) -> tuple[dict[str, Any], Channel]:
        resource = check_resource(payload, expected_type="Subscription")
        allow_http = self.settings.demo or self.settings.subscription_allow_http
        channel = parse_channel(resource, version, allow_http=allow_http)
        check_inbound(
            resource,
            self.settings,
            profile=PAS_SUBSCRIPTION if version == "2.2.1" else None,
            prefer=_PREFER[version],
        )
        return dict(resource), channel

    async def _row(self, subscription_id: str) -> Any:
        async with self.store.database.reader.connect() as conn:
            return (
                await conn.execute(
                    select(pas_subscriptions).where(
                        pas_subscriptions.c.subscription_id == subscription_id
                    )
                )
            ).first()

    async def create(self, payload: Any, owner: str, version: PasVersion) -> StoredResource:
        """Store a new Subscription as `requested` and queue its handshake."""
        resource, channel = self._channel(payload, version)
        subscription_id = new_id()
        resource["id"] = subscription_id
        resource["status"] = "requested"
        async with self.store.database.writer.begin() as conn:
            stored = await ResourceWriter(conn, self.store.registry).create(
                resource, subscription_id
            )
            await conn.execute(
                insert(pas_subscriptions).values(
                    subscription_id=subscription_id,
                    owner=owner,
                    status="requested",
                    created_us=now_us(),
                    events_count=0,
                    pas_version=version,
                    **_channel_values(channel),
                )
            )
            await self._handshake(conn, version, subscription_id)
        self.wake()
        return stored

    async def _handshake(self, conn: Any, version: PasVersion, subscription_id: str) -> None:
        url = self.url(version, subscription_id)
        await enqueue(
            conn,
            "handshake",
            subscription_id,
            notification_bundle(url, "requested", "handshake", 0),
        )

    async def update(
        self,
        subscription_id: str,
        payload: Any,
        owner: str,
        version: PasVersion,
        if_match: int | None = None,
    ) -> tuple[StoredResource, bool]:
        """Replace a Subscription; a changed channel goes back to `requested` and handshakes."""
        resource, channel = self._channel(payload, version)
        if resource.get("id") != subscription_id:
            raise FhirError.single(
                400, "invalid", "The body's id must equal the URL id", "Subscription.id"
            )
        row = await self._row(subscription_id)
        if row is None:
            raise not_found("Subscription", subscription_id)
        if row.owner != owner:
            raise _forbidden(subscription_id)
        values = _channel_values(channel)
        changed = any(getattr(row, key) != value for key, value in values.items())
        status = "requested" if changed or row.status in ("error", "off") else row.status
        resource["status"] = status
        async with self.store.database.writer.begin() as conn:
            stored, _ = await ResourceWriter(conn, self.store.registry).update(
                resource, subscription_id, if_match
            )
            await conn.execute(
                update(pas_subscriptions)
                .where(pas_subscriptions.c.subscription_id == subscription_id)
                .values(status=status, **values)
            )
            if status == "requested":
                await self._handshake(conn, version, subscription_id)
        self.wake()
        return stored, False

    async def delete(self, subscription_id: str, owner: str, if_match: int | None = None) -> None:
        """Delete a Subscription; notifications still queued for it are dropped."""
        row = await self._row(subscription_id)
        if row is None:
            raise not_found("Subscription", subscription_id)
        if row.owner != owner:
            raise _forbidden(subscription_id)
        async with self.store.database.writer.begin() as conn:
            await ResourceWriter(conn, self.store.registry).delete(
                "Subscription", subscription_id, if_match
            )
            await conn.execute(
                update(pas_subscriptions)
                .where(pas_subscriptions.c.subscription_id == subscription_id)
                .values(status="off")
            )
            await conn.execute(
                update(pas_outbox)
                .where(
                    pas_outbox.c.subscription_id == subscription_id,
                    pas_outbox.c.status == PENDING,
                )
                .values(status=DROPPED, last_error="subscription deleted")
            )

    async def status(self, subscription_id: str, owner: str, version: PasVersion) -> dict[str, Any]:
        """The `$status` Bundle (Backport)."""
        row = await self._row(subscription_id)
        if row is None or row.status == "off":
            raise not_found("Subscription", subscription_id)
        if row.owner != owner:
            raise _forbidden(subscription_id)
        return status_bundle(
            self.url(row.pas_version, subscription_id), row.status, int(row.events_count)
        )


def _channel_values(channel: Channel) -> dict[str, Any]:
    return {
        "endpoint": channel.endpoint,
        "headers": orjson.dumps(list(channel.headers)).decode(),
        "payload_type": channel.payload_type,
        "content": channel.content,
        "org_filters": orjson.dumps(list(channel.org_filters)).decode(),
        "heartbeat_seconds": channel.heartbeat_seconds,
    }
