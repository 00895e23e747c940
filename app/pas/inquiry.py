"""Claim/$inquire: the current answer for earlier requests, found by example.

Matching (PAS spec-52/53): a stored request is a candidate only when it was submitted to the
same PAS version's endpoint (PAS conf-1: the versions are separate endpoints) and the inquiry
shares a member id with it (the patient's or the coverage's member / subscriber ids) **and** a
provider identifier (NPI, TIN, payer id of the requester, care team or ordering provider). Among the
candidates, identifiers narrow the answer when they match something: the Claim identifier, the
item trace numbers, the authorization (REF-BB) and administrative reference (REF-NT) numbers,
and the numbers this server returned. Requests replaced by an update answer with the request
that replaced them (spec-47/48); every item's current result is returned, changed and cancelled
ones included (spec-46).

PAS 2.0.1 answers one Inquiry Response Bundle (an OperationOutcome entry says so when nothing
matched, since the Bundle needs an entry); PAS 2.2.1 answers `Parameters` with one `return`
Bundle per request found. When the inquiry's member is not a member of this payer at all, the
answer is a Claim Inquiry Response carrying the X12 AAA error 75 (subscriber not found), as a
278 inquiry response would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.fhir.validation.policy import check_inbound
from app.pas.adjudicate import AdministrativeError, extension, request_keys
from app.pas.bundle import Entry, RequestBundle, check_request_bundle, references
from app.pas.codes import (
    CLAIM_INQUIRY_RESPONSE,
    CORRECT_AND_RESUBMIT,
    EXT_ADMIN_REFERENCE_NUMBER,
    EXT_AUTHORIZATION_NUMBER,
    INQUIRY_REQUEST_BUNDLE,
    SUBSCRIBER_NOT_FOUND,
    PasVersion,
)
from app.pas.response import (
    error_element,
    first_identifier,
    inquiry_bundle,
    inquiry_claim_response,
)
from app.pas.service import PREFER, PasService, StoredRequest
from app.store.tables import pas_request_keys, pas_requests
from cds_hooks.membership import find_membership

MAX_ANSWERS = 50
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
NOTHING_FOUND = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "information",
            "code": "not-found",
            "diagnostics": "No prior authorization request matches this inquiry (member and "
            "provider identifiers, and the request identifiers given).",
        }
    ],
}


def _supporting(claim_response: dict[str, Any], stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The request entries the ClaimResponse references, and what they reference in turn."""
    request = RequestBundle.stored(stored)
    wanted = [claim_response.get(name) for name in ("patient", "insurer", "requestor")]
    for item in claim_response.get("item") or []:
        for _path, reference in references(item, "item"):
            wanted.append({"reference": reference})
    found: dict[int, Entry] = {}
    queue = [e for e in (request.resolve(ref) for ref in wanted) if e is not None]
    while queue:
        entry = queue.pop()
        if entry.index in found or entry.type == "Claim":
            continue
        found[entry.index] = entry
        for _path, reference in references(entry.resource, entry.path):
            target = request.resolve(reference, entry)
            if target is not None and target.index not in found:
                queue.append(target)
    return [
        {"fullUrl": entry.full_url, "resource": entry.resource}
        for entry in sorted(found.values(), key=lambda e: e.index)
    ]


def _reference_numbers(request: RequestBundle) -> set[str]:
    keys = {value for kind, value in request_keys(request, None, None) if kind == "claim"}
    for item in request.claim.resource.get("item") or []:
        for url in (EXT_AUTHORIZATION_NUMBER, EXT_ADMIN_REFERENCE_NUMBER):
            number = (extension(item, url) or {}).get("valueString")
            if number:
                keys.add(str(number))
    return keys


async def _matching(pas: PasService, request: RequestBundle, version: PasVersion) -> list[str]:
    claim = request.claim
    patient = request.resource(claim.resource.get("patient"), claim)
    coverages = [
        request.resource((i or {}).get("coverage"), claim)
        for i in claim.resource.get("insurance") or []
    ]
    keys: set[tuple[str, str]] = set()
    for coverage in coverages or [None]:
        keys |= request_keys(request, patient, coverage)
    members = {v for k, v in keys if k == "member"}
    providers = {v for k, v in keys if k == "provider"}
    if not members or not providers:
        return []
    numbers = _reference_numbers(request)
    member_key = pas_request_keys.alias("member_key")
    provider_key = pas_request_keys.alias("provider_key")
    async with pas.database.reader.connect() as conn:
        candidates = [
            str(row.request_id)
            for row in (
                await conn.execute(
                    select(pas_requests.c.request_id)
                    .join(member_key, member_key.c.request_id == pas_requests.c.request_id)
                    .join(provider_key, provider_key.c.request_id == pas_requests.c.request_id)
                    .where(
                        pas_requests.c.pas_version == version,
                        member_key.c.kind == "member",
                        member_key.c.value.in_(members),
                        provider_key.c.kind == "provider",
                        provider_key.c.value.in_(providers),
                    )
                    .distinct()
                )
            ).all()
        ]
        if not candidates or not numbers:
            return candidates
        narrowed = [
            str(row.request_id)
            for row in (
                await conn.execute(
                    select(pas_request_keys.c.request_id)
                    .where(
                        pas_request_keys.c.request_id.in_(candidates),
                        pas_request_keys.c.kind.in_(("claim", "reference")),
                        pas_request_keys.c.value.in_(numbers),
                    )
                    .distinct()
                )
            ).all()
        ]
    return narrowed or candidates


async def _current(pas: PasService, request_id: str) -> StoredRequest | None:
    """The request, or the one that replaced it (following updates)."""
    stored = await pas.request(request_id)
    seen = set()
    while stored is not None and stored.superseded_by and stored.request_id not in seen:
        seen.add(stored.request_id)
        stored = await pas.request(stored.superseded_by)
    return stored


def _not_a_member(request: RequestBundle, version: PasVersion, base: str) -> dict[str, Any]:
    """A Claim Inquiry Response reporting X12 AAA 75 (subscriber not found): what a 278 inquiry
    answers when the member is unknown. It names no Claim (data-absent-reason, PAS spec-44)."""
    claim = request.claim
    coverage = next(
        (
            entry
            for insurance in claim.resource.get("insurance") or []
            if (entry := request.resolve((insurance or {}).get("coverage"), claim)) is not None
        ),
        None,
    )
    error = AdministrativeError(
        code=SUBSCRIBER_NOT_FOUND,
        followup=CORRECT_AND_RESUBMIT,
        element="Coverage.subscriberId",
        path=coverage.path if coverage else f"{claim.path}.insurance",
        text="No member of this payer matches the coverage of the inquiry.",
    )
    answer: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [CLAIM_INQUIRY_RESPONSE]},
        "identifier": list(claim.resource.get("identifier") or []),
        "status": "active",
        "type": claim.resource.get("type"),
        "use": "preauthorization",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]},
        "outcome": "error",
        "error": [error_element(version, error)],
    }
    supporting = []
    for name, element in (("patient", "patient"), ("requestor", "provider")):
        entry = request.resolve(claim.resource.get(element), claim)
        if entry is not None:
            answer[name] = {"reference": entry.full_url}
            supporting.append({"fullUrl": entry.full_url, "resource": entry.resource})
    # the insurer answering is this payer: a logical reference, not an echo of the inquiry's copy
    insurer = request.resource(claim.resource.get("insurer"), claim) or {}
    logical = {"identifier": first_identifier(insurer), "display": insurer.get("name")}
    answer["insurer"] = {k: v for k, v in logical.items() if v} or {"display": "the payer"}
    return inquiry_bundle([(answer, supporting)], base, datetime.now(UTC))


async def _member_known(pas: PasService, request: RequestBundle) -> bool:
    claim = request.claim
    patient = request.resource(claim.resource.get("patient"), claim)
    for insurance in claim.resource.get("insurance") or []:
        coverage = request.resource((insurance or {}).get("coverage"), claim)
        if coverage is not None and (await find_membership(pas.store, coverage, patient)).found:
            return True
    return False


async def inquire(pas: PasService, payload: Any, version: PasVersion) -> dict[str, Any]:
    """Answer a $inquire (a Bundle for PAS 2.0.1, Parameters for 2.2.1)."""
    request = check_request_bundle(payload, inquiry=True, parse="claim")
    check_inbound(payload, pas.settings, profile=INQUIRY_REQUEST_BUNDLE, prefer=PREFER[version])
    if not await _member_known(pas, request):
        bundle = _not_a_member(request, version, pas.base(version))
        if version == "2.2.1":
            return {
                "resourceType": "Parameters",
                "parameter": [{"name": "return", "resource": bundle}],
            }
        return bundle
    found: dict[str, StoredRequest] = {}
    for request_id in await _matching(pas, request, version):
        current = await _current(pas, request_id)
        if current is not None:
            found.setdefault(current.request_id, current)
    ordered = sorted(found.values(), key=lambda s: s.received_us, reverse=True)[:MAX_ANSWERS]
    answers = []
    for stored in ordered:
        claim_response = (await pas.store.read("ClaimResponse", stored.claim_response_id)).json()
        claim_url = f"{pas.base(stored.pas_version)}/Claim/{stored.claim_id}"
        answer = inquiry_claim_response(claim_response, claim_url)
        answers.append((answer, _supporting(answer, stored.bundle)))
    base = pas.base(version)
    now = datetime.now(UTC)
    if version == "2.2.1":
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "return", "resource": inquiry_bundle([answer], base, now)}
                for answer in answers
            ],
        }
    bundle = inquiry_bundle(answers, base, now)
    if not answers:
        bundle["entry"] = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": NOTHING_FOUND}]
    return bundle
