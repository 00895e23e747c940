"""The notification outbox: rows written in the transaction that causes them, delivered by a worker.

At-least-once delivery, nothing lost across crashes and restarts:

- `enqueue` inserts a row inside the caller's transaction (a decision and its notification
  commit together, or neither does).
- The worker claims due rows in a short transaction, setting a lease (`locked_until_us`); on
  PostgreSQL the claim uses `SELECT ... FOR UPDATE SKIP LOCKED`, so several workers (processes)
  never claim the same row; on SQLite the writer's `BEGIN IMMEDIATE` serializes claims.
- It POSTs outside any transaction, then records the result: delivered, or the next attempt
  after a backoff (base * 2^(n-1), at most 15 minutes) until the attempts run out (`dead`; the
  Subscription goes to `error`). A process that dies mid-delivery leaves a lease that expires,
  and the row is delivered by whoever runs next.
- Rows of one subscription are delivered in order: a row is only claimed when no earlier row of
  that subscription is still pending.
- A handshake that succeeds makes the Subscription `active`; one that keeps failing makes it
  `error` (Backport). Heartbeats are queued only for subscriptions that asked for them.

The worker polls once a second (`pas_outbox_poll_seconds`) for as long as the server runs,
whatever else it is doing. A poll that finds nothing to do makes two look-ups: rows due, and
subscriptions wanting heartbeats. On SQLite both go through the point reader (plain SQL on the
loop, microseconds each): through the async driver they cost ~5 ms of CPU per idle poll in
thread hand-offs and statement compilation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import orjson
from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.sql import Select

from app.config import Settings
from app.pas.codes import PasVersion, fhir_base
from app.pas.subscriptions import Channel, notification_bundle
from app.registry import Registry
from app.store.db import Database, SqlConnection
from app.store.repository import ResourceWriter
from app.store.stored import now_us
from app.store.tables import pas_outbox, pas_subscriptions

log = logging.getLogger("greenlight.outbox")

MAX_BACKOFF_SECONDS = 15 * 60
PENDING, DELIVERED, DEAD, DROPPED = "pending", "delivered", "dead", "dropped"
LIVE_STATUSES = ("requested", "active")

# The idle poll's look-ups on SQLite, for the point reader (`SqlitePointReader.rows`).
_ANYTHING_DUE_SQL = (
    "SELECT 1 FROM pas_outbox WHERE status = ? AND next_attempt_us <= ? AND locked_until_us <= ? "
    "LIMIT 1"
)
_HEARTBEAT_SUBSCRIPTIONS_SQL = (
    "SELECT subscription_id, pas_version, events_count, heartbeat_seconds, last_sent_us, "
    "created_us FROM pas_subscriptions WHERE status = 'active' AND heartbeat_seconds IS NOT NULL"
)


class _HeartbeatSubscription(NamedTuple):
    """An active subscription that asked for heartbeats (the columns the worker needs)."""

    subscription_id: str
    pas_version: PasVersion  # as stored by the subscription service
    events_count: int
    heartbeat_seconds: int
    last_sent_us: int | None
    created_us: int


async def enqueue(
    conn: SqlConnection, kind: str, subscription_id: str, payload: dict[str, Any]
) -> None:
    """Queue one notification inside the caller's transaction."""
    stamp = now_us()
    await conn.execute(
        insert(pas_outbox).values(
            kind=kind,
            subscription_id=subscription_id,
            payload=orjson.dumps(payload).decode(),
            status=PENDING,
            attempts=0,
            next_attempt_us=stamp,
            locked_until_us=0,
            created_us=stamp,
        )
    )


@dataclass(frozen=True)
class _Claimed:
    outbox_id: int
    kind: str
    subscription_id: str
    payload: str
    attempts: int


def channel_of(row: Any) -> Channel:
    return Channel(
        endpoint=row.endpoint,
        headers=tuple(orjson.loads(row.headers)),
        payload_type=row.payload_type,
        content=row.content,
        org_filters=tuple(orjson.loads(row.org_filters)),
        heartbeat_seconds=row.heartbeat_seconds,
    )


async def set_subscription_status(
    conn: SqlConnection, registry: Registry, subscription_id: str, status: str
) -> None:
    """Change a Subscription's status in the table and as a new resource version."""
    await conn.execute(
        update(pas_subscriptions)
        .where(pas_subscriptions.c.subscription_id == subscription_id)
        .values(status=status)
    )
    writer = ResourceWriter(conn, registry)
    current = await writer.current("Subscription", subscription_id)
    if current is None or current.deleted or current.body is None:
        return
    resource = current.json()
    if resource.get("status") != status:
        resource["status"] = status
        await writer.update(resource, subscription_id)


class OutboxWorker:
    """Delivers queued notifications; one per process, started and stopped with the app."""

    def __init__(
        self,
        database: Database,
        registry: Registry,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.database = database
        self.registry = registry
        self.settings = settings
        self._http = http or httpx.AsyncClient(
            follow_redirects=False, timeout=settings.pas_notify_timeout_seconds
        )
        self._owns_http = http is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="pas-outbox")

    def wake(self) -> None:
        """Deliver now rather than at the next poll (called after a commit that queued work)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._owns_http:
            await self._http.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the worker must outlive a database hiccup; it is logged
                log.exception("outbox pass failed")
                busy = 0
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self.settings.pas_outbox_poll_seconds
                )

    async def run_once(self, limit: int = 16) -> int:
        """One pass: queue due heartbeats, claim due rows, deliver them; the number delivered
        or attempted."""
        await self._queue_heartbeats()
        claimed = await self._claim(limit)
        if claimed:
            await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    def _due(self, stamp: int) -> Select[Any]:
        earlier = pas_outbox.alias("earlier")
        return (
            select(
                pas_outbox.c.outbox_id,
                pas_outbox.c.kind,
                pas_outbox.c.subscription_id,
                pas_outbox.c.payload,
                pas_outbox.c.attempts,
            )
            .where(
                pas_outbox.c.status == PENDING,
                pas_outbox.c.next_attempt_us <= stamp,
                pas_outbox.c.locked_until_us <= stamp,
                ~exists(
                    select(earlier.c.outbox_id).where(
                        and_(
                            earlier.c.subscription_id == pas_outbox.c.subscription_id,
                            earlier.c.status == PENDING,
                            earlier.c.outbox_id < pas_outbox.c.outbox_id,
                        )
                    )
                ),
            )
            .order_by(pas_outbox.c.outbox_id)
        )

    async def _claim(self, limit: int) -> list[_Claimed]:
        stamp = now_us()
        lease = int(self.settings.pas_outbox_lease_seconds * 1_000_000)
        if self.database.is_sqlite and not await self._anything_due(stamp):
            return []  # SQLite: look before taking the one write lock every poll
        query = self._due(stamp).limit(limit)
        if not self.database.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=pas_outbox)
        async with self.database.writer.begin() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                return []
            await conn.execute(
                update(pas_outbox)
                .where(pas_outbox.c.outbox_id.in_([r.outbox_id for r in rows]))
                .values(locked_until_us=stamp + lease, attempts=pas_outbox.c.attempts + 1)
            )
        return [
            _Claimed(r.outbox_id, r.kind, r.subscription_id, r.payload, r.attempts + 1)
            for r in rows
        ]

    async def _anything_due(self, stamp: int) -> bool:
        point = self.database.point_reader
        if point is not None:
            return bool(point.rows(_ANYTHING_DUE_SQL, (PENDING, stamp, stamp)))
        async with self.database.reader.connect() as conn:
            due = select(pas_outbox.c.outbox_id).where(
                pas_outbox.c.status == PENDING,
                pas_outbox.c.next_attempt_us <= stamp,
                pas_outbox.c.locked_until_us <= stamp,
            )
            return (await conn.execute(due.limit(1))).first() is not None

    async def _subscription(self, subscription_id: str) -> Any:
        async with self.database.reader.connect() as conn:
            return (
                await conn.execute(
                    select(pas_subscriptions).where(
                        pas_subscriptions.c.subscription_id == subscription_id
                    )
                )
            ).first()

    async def _deliver(self, row: _Claimed) -> None:
        subscription = await self._subscription(row.subscription_id)
        if subscription is None or subscription.status not in LIVE_STATUSES:
            await self._finish(row, DROPPED, "the subscription is gone or off")
            return
        channel = channel_of(subscription)
        error: str | None = None
        try:
            response = await self._http.post(
                channel.endpoint,
                content=row.payload.encode(),
                headers=channel.http_headers(),
                timeout=self.settings.pas_notify_timeout_seconds,
            )
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error is None:
            await self._delivered(row)
            return
        limit = (
            self.settings.pas_handshake_attempts
            if row.kind == "handshake"
            else self.settings.pas_notify_max_attempts
        )
        log.info(
            "notification %s (%s) to subscription %s failed (attempt %d of %d): %s",
            row.outbox_id,
            row.kind,
            row.subscription_id,
            row.attempts,
            limit,
            error,
        )
        if row.attempts >= limit:
            await self._finish(row, DEAD, error, subscription_status="error")
        else:
            await self._retry(row, error)

    async def _delivered(self, row: _Claimed) -> None:
        stamp = now_us()
        async with self.database.writer.begin() as conn:
            await conn.execute(
                update(pas_outbox)
                .where(pas_outbox.c.outbox_id == row.outbox_id)
                .values(status=DELIVERED, delivered_us=stamp, locked_until_us=0, last_error=None)
            )
            await conn.execute(
                update(pas_subscriptions)
                .where(pas_subscriptions.c.subscription_id == row.subscription_id)
                .values(last_sent_us=stamp)
            )
            if row.kind == "handshake":
                current = (
                    await conn.execute(
                        select(pas_subscriptions.c.status).where(
                            pas_subscriptions.c.subscription_id == row.subscription_id
                        )
                    )
                ).scalar_one_or_none()
                if current == "requested":
                    await set_subscription_status(
                        conn, self.registry, row.subscription_id, "active"
                    )

    async def _retry(self, row: _Claimed, error: str) -> None:
        delay = min(
            self.settings.pas_notify_backoff_seconds * (2 ** (row.attempts - 1)),
            MAX_BACKOFF_SECONDS,
        )
        async with self.database.writer.begin() as conn:
            await conn.execute(
                update(pas_outbox)
                .where(pas_outbox.c.outbox_id == row.outbox_id)
                .values(
                    next_attempt_us=now_us() + int(delay * 1_000_000),
                    locked_until_us=0,
                    last_error=error,
                )
            )

    async def _finish(
        self, row: _Claimed, status: str, error: str, subscription_status: str | None = None
    ) -> None:
        async with self.database.writer.begin() as conn:
            await conn.execute(
                update(pas_outbox)
                .where(pas_outbox.c.outbox_id == row.outbox_id)
                .values(status=status, locked_until_us=0, last_error=error)
            )
            if subscription_status is not None:
                await set_subscription_status(
                    conn, self.registry, row.subscription_id, subscription_status
                )

    async def _heartbeat_subscriptions(self) -> list[_HeartbeatSubscription]:
        point = self.database.point_reader
        if point is not None:
            rows = point.rows(_HEARTBEAT_SUBSCRIPTIONS_SQL, ())
            return [_HeartbeatSubscription(*row) for row in rows]
        columns = [pas_subscriptions.c[name] for name in _HeartbeatSubscription._fields]
        async with self.database.reader.connect() as conn:
            found = await conn.execute(
                select(*columns).where(
                    pas_subscriptions.c.status == "active",
                    pas_subscriptions.c.heartbeat_seconds.is_not(None),
                )
            )
            return [_HeartbeatSubscription(*row) for row in found.all()]

    async def _queue_heartbeats(self) -> None:
        """A heartbeat for each active subscription that asked for them and has been quiet."""
        stamp = now_us()
        due = [
            r
            for r in await self._heartbeat_subscriptions()
            if (r.last_sent_us or r.created_us) + int(r.heartbeat_seconds) * 1_000_000 <= stamp
        ]
        for row in due:
            async with self.database.writer.begin() as conn:
                waiting = (
                    await conn.execute(
                        select(pas_outbox.c.outbox_id)
                        .where(
                            pas_outbox.c.subscription_id == row.subscription_id,
                            pas_outbox.c.status == PENDING,
                        )
                        .limit(1)
                    )
                ).first()
                if waiting is not None:
                    continue
                base = fhir_base(self.settings.base_url, row.pas_version)
                url = f"{base}/Subscription/{row.subscription_id}"
                bundle = notification_bundle(url, "active", "heartbeat", int(row.events_count))
                await enqueue(conn, "heartbeat", row.subscription_id, bundle)
                await conn.execute(
                    update(pas_subscriptions)
                    .where(pas_subscriptions.c.subscription_id == row.subscription_id)
                    .values(last_sent_us=stamp)
                )
