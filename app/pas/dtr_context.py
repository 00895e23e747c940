"""Prior authorization requests found by a DTR `context` (PAS ainfo-3, ainfo-6; DTR spec-109).

When a pended PAS response asks for a payer questionnaire, the number it issues for the request
(the TRN that goes with LOINC 102089-0: here the review case's reference number, carried as the
CommunicationRequest and Task identifier and as the Task's `questionnaires-needed` (PAS 2.0.1) or
`questionnaire-context` (PAS 2.2.1) input) is what the DTR client sends as `context` to
`$questionnaire-package`.

A context matches a request by a number the payer issued (its reference or authorization number:
`pas_request_keys` kind `reference`, unique) or by one the requester issued (`Claim.identifier`,
an item trace number: kind `claim`). Requester numbers are not unique (the Inferno kit sends every
payload with the same ones), so the caller keeps only the member's own requests and takes the
newest. A request that was replaced by an update resolves to its current version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select

from app.store.db import Database
from app.store.tables import pas_request_keys, pas_requests, review_cases

#: Key kinds of numbers the payer issued, and of numbers the requester issued.
PAYER_ISSUED = "reference"
REQUESTER_ISSUED = "claim"
_MAX_UPDATES = 50  # a chain of updates longer than this is not followed further


@dataclass(frozen=True)
class RequestItem:
    """One Claim.item as adjudication saw it (from the review case's trace)."""

    sequence: int
    rule: str | None  # "pended", "auto-approval", "no-auth", ... (`app.pas.adjudicate`)
    topic_id: str | None
    order_ref: str | None  # the order the topic was decided from ("ServiceRequest/123")

    @property
    def pended(self) -> bool:
        return self.rule == "pended"


@dataclass(frozen=True)
class PaRequest:
    """A stored prior authorization request, as much of it as DTR needs."""

    request_id: str
    reference_number: str  # the review case id: the number the pended response issued
    case_status: str  # `app.um.cases.STATUSES`
    member_coverage_id: str | None  # the payer's Coverage the member was matched to
    received_us: int
    payer_issued: bool  # matched by a number the payer issued (not a requester's number)
    items: tuple[RequestItem, ...]
    bundle: dict[str, Any]

    def order(self, reference: str | None) -> dict[str, Any] | None:
        """The order resource `Type/id` in the request Bundle (None for the Claim item itself,
        which adjudication reads as an order when a topic names its service)."""
        if not reference or "/" not in reference:
            return None
        resource_type, _, resource_id = reference.partition("/")
        for entry in self.bundle.get("entry") or []:
            resource = (entry or {}).get("resource") or {}
            if resource.get("resourceType") == resource_type and resource.get("id") == resource_id:
                found: dict[str, Any] = resource
                return found
        return None


def _items(trace: dict[str, Any]) -> tuple[RequestItem, ...]:
    items = []
    for item in trace.get("items") or []:
        if not isinstance(item, dict):
            continue
        items.append(
            RequestItem(
                sequence=int(item.get("sequence") or 0),
                rule=item.get("rule"),
                topic_id=item.get("topic"),
                order_ref=item.get("order"),
            )
        )
    return tuple(items)


async def find_requests(database: Database, context: str) -> list[PaRequest]:
    """The current versions of the requests `context` names, newest first (payer-issued
    matches before requester-issued ones); empty when it names none."""
    async with database.reader.connect() as conn:
        matches = (
            await conn.execute(
                select(pas_request_keys.c.request_id, pas_request_keys.c.kind).where(
                    pas_request_keys.c.value == context[:255],
                    pas_request_keys.c.kind.in_((PAYER_ISSUED, REQUESTER_ISSUED)),
                )
            )
        ).all()
        payer_issued: dict[str, bool] = {}
        for request_id, kind in matches:
            payer_issued[request_id] = payer_issued.get(request_id, False) or kind == PAYER_ISSUED
        found: dict[str, PaRequest] = {}
        for request_id, by_payer in payer_issued.items():
            current = request_id
            for _ in range(_MAX_UPDATES):  # an updated request: its replacement is current
                row = (
                    await conn.execute(
                        select(pas_requests.c.superseded_by).where(
                            pas_requests.c.request_id == current
                        )
                    )
                ).first()
                if row is None or not row.superseded_by:
                    break
                current = str(row.superseded_by)
            if current in found:
                continue
            row = (
                await conn.execute(
                    select(
                        pas_requests.c.request_id,
                        pas_requests.c.received_us,
                        pas_requests.c.bundle,
                        review_cases.c.case_id,
                        review_cases.c.status,
                        review_cases.c.trace,
                    )
                    .join(review_cases, review_cases.c.request_id == pas_requests.c.request_id)
                    .where(pas_requests.c.request_id == current)
                )
            ).first()
            if row is None:
                continue
            trace = orjson.loads(row.trace)
            found[current] = PaRequest(
                request_id=current,
                reference_number=str(row.case_id),
                case_status=str(row.status),
                member_coverage_id=(trace.get("member") or {}).get("coverage"),
                received_us=int(row.received_us),
                payer_issued=by_payer,
                items=_items(trace),
                bundle=orjson.loads(row.bundle),
            )
    return sorted(found.values(), key=lambda r: (not r.payer_issued, -r.received_us))
