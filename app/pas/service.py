"""Claim/$submit end to end: check, adjudicate, store in one transaction, answer.

One transaction per accepted request writes: the `pas_requests` row (first, so a concurrent
duplicate fails before anything else is written), its lookup keys, the review case, the Claim
and the ClaimResponse (version 1) as FHIR resources, the CommunicationRequest and Task that
ask for documentation when an item is pended without it, and the AuditEvent of the submission
(`app.pas.audit`). Any error rolls all of it back.

- Resubmission: the same Bundle (same `Bundle.identifier` from the same client, identical
  content) returns the current answer of the stored request and writes nothing (PAS "missing
  response"). A Bundle identifier reused with different content is a new request (the Inferno
  kit sends every payload under `A12345`).
- Updates (PAS 2.2 ClaimUpdate): a Claim whose `related` (relationship prior) points at a Claim
  in the Bundle that is one of this client's stored requests (matched by that Claim's exact
  content) replaces it: the earlier request becomes `superseded`, its open case is closed, and
  the new request is adjudicated in full (cancelled items answer C). No update is accepted after
  a denial or a cancellation (422), nor against a request that was already replaced (409).
  A `related` Claim that is not one of ours starts a new request. An update flags what changed
  against the Claim it updates (`app.pas.update_flags`, PAS spec-69..72), else 400.
- `notify_change` queues an event notification for every subscription that hears about the
  request (`app.pas.subscriptions.matches`), inside the caller's transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.config import Settings
from app.fhir.outcomes import FhirError, Issue
from app.fhir.validation.policy import PAS_V201, PAS_V221, check_inbound, validates_inbound
from app.pas.adjudicate import Adjudication, Adjudicator
from app.pas.audit import submit_audit_event
from app.pas.bundle import Entry, RequestBundle, check_claim, check_request_bundle
from app.pas.codes import REQUEST_BUNDLE, PasVersion, fhir_base
from app.pas.outbox import LIVE_STATUSES, enqueue
from app.pas.quantities import check_item_quantities
from app.pas.response import (
    ResponseIds,
    build_claim_response,
    documentation_requests,
    response_bundle,
)
from app.pas.subscriptions import matches, notification_bundle
from app.pas.update_flags import check_update_flags
from app.store.db import SqlConnection
from app.store.repository import ResourceStore, ResourceWriter
from app.store.stored import now_us
from app.store.tables import pas_request_keys, pas_requests, pas_subscriptions
from app.um.cases import ReviewCase, insert_case, locked_case, record_decision
from app.um.deadlines import due_time

PREFER = {"2.0.1": PAS_V201, "2.2.1": PAS_V221}
CLOSED_CASES = ("denied", "not-certified")


def content_hash(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class StoredRequest:
    """A stored PAS request (a `pas_requests` row)."""

    request_id: str
    submitter: str
    pas_version: PasVersion
    claim_id: str
    claim_response_id: str
    case_id: str
    received_us: int
    status: str
    related_request_id: str | None
    superseded_by: str | None
    bundle: dict[str, Any]
    extras: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Any) -> StoredRequest:
        return cls(
            request_id=row.request_id,
            submitter=row.submitter,
            pas_version=row.pas_version,
            claim_id=row.claim_id,
            claim_response_id=row.claim_response_id,
            case_id=row.case_id,
            received_us=row.received_us,
            status=row.status,
            related_request_id=row.related_request_id,
            superseded_by=row.superseded_by,
            bundle=orjson.loads(row.bundle),
            extras=tuple(orjson.loads(row.extras)),
        )


@dataclass(frozen=True)
class Submitted:
    """The answer to a $submit: the response Bundle and whether the request was new."""

    bundle: dict[str, Any]
    request_id: str
    created: bool


class _DuplicateError(Exception):
    pass


class PasService:
    """The PAS operations over the store, the rules and the outbox."""

    def __init__(
        self,
        store: ResourceStore,
        settings: Settings,
        adjudicator: Adjudicator,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.adjudicator = adjudicator
        self.wake = wake
        # SQLite: this process's PAS writes queue here (FIFO) rather than in SQLite's busy
        # handler, whose growing sleeps give a long latency tail under concurrent writes.
        self._write_lock = asyncio.Lock() if store.database.is_sqlite else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlConnection]:
        """One write transaction (committed at the end of the block, rolled back on error)."""
        if self._write_lock is None:
            async with self.database.writer.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.database.writer.begin() as conn:
            yield conn

    @property
    def database(self) -> Any:
        return self.store.database

    def base(self, version: PasVersion) -> str:
        return fhir_base(self.settings.base_url, version)

    # ------------------------------------------------------------------ reads

    async def request(self, request_id: str) -> StoredRequest | None:
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(pas_requests).where(pas_requests.c.request_id == request_id)
                )
            ).first()
        return None if row is None else StoredRequest.from_row(row)

    async def _find(self, submitter: str, bundle_key: str, digest: str) -> StoredRequest | None:
        async with self.database.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(pas_requests).where(
                        pas_requests.c.submitter == submitter,
                        pas_requests.c.bundle_key == bundle_key,
                        pas_requests.c.content_hash == digest,
                    )
                )
            ).first()
        return None if row is None else StoredRequest.from_row(row)

    async def response_for(
        self, stored: StoredRequest, claim_response: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The PAS Response Bundle of a stored request, with its current ClaimResponse."""
        if claim_response is None:
            claim_response = (
                await self.store.read("ClaimResponse", stored.claim_response_id)
            ).json()
        extras = []
        for reference in stored.extras:
            resource_type, _, resource_id = reference.partition("/")
            extras.append((await self.store.read(resource_type, resource_id)).json())
        return response_bundle(
            claim_response,
            stored.bundle,
            extras,
            self.base(stored.pas_version),
            datetime.now(UTC),
        )

    # ------------------------------------------------------------------ $submit

    async def submit(self, payload: Any, submitter: str, version: PasVersion) -> Submitted:
        request = check_request_bundle(payload, parse="none")
        if version == "2.2.1":
            check_item_quantities(request.claim)  # PAS prof-2, prof-3
        issues = check_inbound(
            payload, self.settings, profile=REQUEST_BUNDLE, prefer=PREFER[version]
        )
        # the profile validator has walked the Claim; parse it with the R4 models only when it
        # did not (validation off, packages missing) or found an error in it (not a mere
        # warning such as dom-6's missing narrative), to answer 400 for bad structure
        if not validates_inbound(self.settings, PREFER[version]) or any(
            issue.severity in ("error", "fatal") and e.startswith(request.claim.path)
            for issue in issues
            for e in issue.expression
        ):
            check_claim(request)
        digest = content_hash(payload)
        existing = await self._find(submitter, request.identifier_key, digest)
        if existing is not None:
            return Submitted(await self.response_for(existing), existing.request_id, False)
        prior = await self._prior(request, submitter, version)
        received = datetime.now(UTC)
        adjudication = await self.adjudicator.adjudicate(request, received.date())
        try:
            return await self._store(
                request, adjudication, submitter, version, digest, received, prior
            )
        except _DuplicateError:
            existing = await self._find(submitter, request.identifier_key, digest)
            if existing is None:  # pragma: no cover - the row that collided must exist
                raise
            return Submitted(await self.response_for(existing), existing.request_id, False)

    async def _prior(
        self, request: RequestBundle, submitter: str, version: PasVersion
    ) -> tuple[StoredRequest, Entry] | None:
        """The stored request a ClaimUpdate replaces, with the prior Claim's entry in the Bundle
        (None when it is not an update of ours)."""
        claim = request.claim
        for related in claim.resource.get("related") or []:
            codes = {
                c.get("code")
                for c in ((related or {}).get("relationship") or {}).get("coding") or []
            }
            if codes and "prior" not in codes:
                continue
            prior_entry = request.resolve((related or {}).get("claim"), claim)
            if prior_entry is None or prior_entry.type != "Claim":
                continue
            digest = content_hash(prior_entry.resource)
            async with self.database.reader.connect() as conn:
                row = (
                    await conn.execute(
                        select(pas_requests)
                        .join(
                            pas_request_keys,
                            pas_request_keys.c.request_id == pas_requests.c.request_id,
                        )
                        .where(
                            pas_request_keys.c.kind == "claim-hash",
                            pas_request_keys.c.value == digest,
                            pas_requests.c.submitter == submitter,
                            pas_requests.c.pas_version == version,
                        )
                        .order_by(pas_requests.c.received_us.desc())
                        .limit(1)
                    )
                ).first()
            if row is not None:
                return StoredRequest.from_row(row), prior_entry
        return None

    async def _store(
        self,
        request: RequestBundle,
        adjudication: Adjudication,
        submitter: str,
        version: PasVersion,
        digest: str,
        received: datetime,
        prior: tuple[StoredRequest, Entry] | None,
    ) -> Submitted:
        request_id = str(uuid.uuid4())
        ids = ResponseIds.new(
            self.base(version), version, str(uuid.uuid4()), claim_id=str(uuid.uuid4())
        )
        claim_response = build_claim_response(request, adjudication, ids, received)
        extras = documentation_requests(request, adjudication, ids, received)
        case = ReviewCase(
            case_id=ids.reference_number,
            request_id=request_id,
            claim_id=ids.claim_id,
            claim_response_id=ids.claim_response_id,
            status=adjudication.case_status,
            priority=adjudication.priority,
            received_us=int(received.timestamp() * 1_000_000),
            due_us=int(due_time(received, adjudication.priority).timestamp() * 1_000_000),
            trace={
                **adjudication.trace,
                "authorizationNumber": ids.authorization_number,
                "validDays": min((i.valid_days for i in adjudication.items), default=90),
            },
            decided_us=None if adjudication.pended else int(received.timestamp() * 1_000_000),
            decided_by=None if adjudication.pended else "rules",
        )
        keys = set(adjudication.keys)
        keys.add(("claim-hash", content_hash(request.claim.resource)))
        keys.add(("reference", ids.reference_number))
        keys.add(("reference", ids.authorization_number))
        claim = dict(request.claim.resource)
        claim["id"] = ids.claim_id
        try:
            async with self.write() as conn:
                if prior is not None:
                    await self._supersede(conn, prior[0], request_id)
                    # after the prior's own rules (denied, cancelled: 422); a 400 rolls back
                    check_update_flags(request.claim, prior[1])
                try:
                    await conn.execute(
                        pas_requests.insert().values(
                            request_id=request_id,
                            submitter=submitter,
                            bundle_key=request.identifier_key[:512],
                            content_hash=digest,
                            pas_version=version,
                            claim_id=ids.claim_id,
                            claim_response_id=ids.claim_response_id,
                            case_id=case.case_id,
                            received_us=case.received_us,
                            status="cancelled" if adjudication.cancelled else "active",
                            related_request_id=prior[0].request_id if prior else None,
                            bundle=orjson.dumps(request.bundle).decode(),
                            extras=orjson.dumps(
                                [f"{e['resourceType']}/{e['id']}" for e in extras]
                            ).decode(),
                        )
                    )
                except IntegrityError as exc:
                    raise _DuplicateError from exc
                await conn.execute(
                    pas_request_keys.insert(),
                    [{"request_id": request_id, "kind": k, "value": v} for k, v in keys],
                )
                await insert_case(conn, case)
                writer = ResourceWriter(conn, self.store.registry)
                await writer.create(claim, ids.claim_id)
                written = await writer.create(claim_response, ids.claim_response_id)
                claim_response = written.json()
                extras = [(await writer.create(extra, extra["id"])).json() for extra in extras]
                await writer.create(
                    submit_audit_event(
                        submitter=submitter,
                        claim_id=ids.claim_id,
                        claim_response=claim_response,
                        version_id=written.version_id,
                        items=adjudication.items,
                        bundle_identifier=request.bundle.get("identifier"),
                        case_id=case.case_id,
                        case_status=case.status,
                        pas_version=version,
                        received=received,
                    )
                )
        except IntegrityError as exc:  # PostgreSQL reports the unique violation at commit
            if "uq_pas_requests_dedupe" in str(exc):
                raise _DuplicateError from exc
            raise
        bundle = response_bundle(
            claim_response, request.bundle, extras, ids.fhir_base, datetime.now(UTC)
        )
        return Submitted(bundle, request_id, True)

    async def _supersede(self, conn: SqlConnection, prior: StoredRequest, request_id: str) -> None:
        """Close the request an update replaces, or refuse the update (4xx saying why)."""
        current = (
            await conn.execute(
                select(pas_requests.c.status, pas_requests.c.superseded_by)
                .where(pas_requests.c.request_id == prior.request_id)
                .with_for_update()
            )
        ).first()
        case = await locked_case(conn, prior.case_id)
        if current is None or case is None:  # pragma: no cover - rows written together
            raise FhirError.single(409, "conflict", "The prior request is not known")
        if current.superseded_by:
            raise FhirError.single(
                409,
                "conflict",
                f"The prior request (reference {prior.case_id}) was already updated; send the "
                "update against its current version",
                "Bundle.entry[0].resource.related",
            )
        if current.status == "cancelled" or case.status == "cancelled":
            raise FhirError(
                422,
                Issue(
                    "error",
                    "business-rule",
                    f"The prior request (reference {prior.case_id}) was cancelled and cannot "
                    "be updated; submit a new request",
                    ("Bundle.entry[0].resource.related",),
                ),
            )
        if case.status in CLOSED_CASES:
            raise FhirError(
                422,
                Issue(
                    "error",
                    "business-rule",
                    f"The prior request (reference {prior.case_id}) was denied; a denied "
                    "request cannot be updated: submit a new request",
                    ("Bundle.entry[0].resource.related",),
                ),
            )
        await conn.execute(
            update(pas_requests)
            .where(pas_requests.c.request_id == prior.request_id)
            .values(status="superseded", superseded_by=request_id)
        )
        if case.status == "pended":
            await record_decision(
                conn,
                case.case_id,
                "cancelled",
                now_us(),
                "update",
                {"superseded_by": request_id},
            )

    # ------------------------------------------------------------------ notifications

    async def notify_change(
        self, conn: SqlConnection, stored: StoredRequest, claim_response: dict[str, Any]
    ) -> int:
        """Queue an event notification for each subscription that hears about `stored`."""
        keys = {
            str(value)
            for (value,) in (
                await conn.execute(
                    select(pas_request_keys.c.value).where(
                        pas_request_keys.c.request_id == stored.request_id,
                        pas_request_keys.c.kind == "submitter",
                    )
                )
            ).all()
        }
        rows = (
            await conn.execute(
                select(pas_subscriptions)
                .where(pas_subscriptions.c.status.in_(LIVE_STATUSES))
                .with_for_update()
            )
        ).all()
        queued = 0
        bundle: dict[str, Any] | None = None
        for row in rows:
            filters = tuple(orjson.loads(row.org_filters))
            if row.pas_version != stored.pas_version:
                continue  # one endpoint per PAS version (conf-1): its own subscriptions
            if not matches(row.owner, filters, stored.submitter, keys):
                continue
            events = int(row.events_count) + 1
            await conn.execute(
                update(pas_subscriptions)
                .where(pas_subscriptions.c.subscription_id == row.subscription_id)
                .values(events_count=events)
            )
            url = f"{self.base(row.pas_version)}/Subscription/{row.subscription_id}"
            focus_url: str | None = None
            focus_resource: dict[str, Any] | None = None
            if row.content == "full-resource":
                if bundle is None:
                    bundle = await self.response_for(stored, claim_response)
                focus_url = f"{self.base(stored.pas_version)}/Bundle/{bundle['id']}"
                focus_resource = bundle
            elif row.content == "id-only":
                focus_url = f"{self.base(stored.pas_version)}/ClaimResponse/{claim_response['id']}"
            payload = notification_bundle(
                url,
                "active",
                "event-notification",
                events,
                event_number=events,
                focus_url=focus_url,
                focus_resource=focus_resource,
            )
            await enqueue(conn, "event-notification", row.subscription_id, payload)
            queued += 1
        return queued
