"""PAS response content: the ClaimResponse, the documentation requests and the response Bundle.

- The response Bundle starts with the ClaimResponse (PAS spec-30), then the CommunicationRequest
  and Task asking for documentation (when an item is pended without it), then every entry of the
  request but the Claim(s), with its `fullUrl` unchanged (spec-33), so each reference resolves
  and each resource appears once (spec-31). The Claim is not echoed (the IG allows omitting it):
  `ClaimResponse.request` names the Claim as stored on this server, `[base]/Claim/[id]`.
- `ClaimResponse.item.itemSequence` echoes `Claim.item.sequence` (spec-34); each item carries
  `adjudication.extension(reviewAction)` with the X12 306 code, the authorization (A1/A2) or
  reference number, and the reasons as `processNote`s the item points at (`noteNumber`).
- Business errors (X12 AAA) go in `ClaimResponse.error` (spec-41), with the element and the path.
- `inquiry_claim_response` turns a stored ClaimResponse into a Claim Inquiry Response.
- A reviewer's decision on pended items is applied by `app.pas.review` (the next version).

2.0.1 and 2.2.1 differ in a few shapes (errorElement, where serviceLineNumber goes, the Task's
questionnaire input); `version` selects them.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.pas.adjudicate import Adjudication, ItemResult, extension
from app.pas.bundle import RequestBundle
from app.pas.codes import (
    ADJUDICATION,
    CLAIM_INQUIRY_RESPONSE,
    CLAIM_RESPONSE,
    COMMUNICATION_REQUEST,
    EXT_ADMIN_REFERENCE_NUMBER,
    EXT_AUTHORIZATION_NUMBER,
    EXT_COMMUNICATED_DIAGNOSIS,
    EXT_CONTENT_MODIFIER,
    EXT_ERROR_ELEMENT,
    EXT_ERROR_FOLLOWUP,
    EXT_ERROR_PATH,
    EXT_ITEM_AUTHORIZED_DETAIL,
    EXT_ITEM_AUTHORIZED_PROVIDER,
    EXT_ITEM_PREAUTH_ISSUE_DATE,
    EXT_ITEM_PREAUTH_PERIOD,
    EXT_ITEM_REQUESTED_SERVICE_DATE,
    EXT_ITEM_TRACE_NUMBER,
    EXT_PA_LINE_NUMBER,
    EXT_REVIEW_ACTION,
    EXT_REVIEW_ACTION_CODE,
    EXT_SERVICE_LINE_NUMBER,
    INQUIRY_RESPONSE_BUNDLE,
    LOINC,
    PAS_TEMP,
    PAYER_QUESTIONNAIRE_LOINC,
    RESPONSE_BUNDLE,
    REVIEW_ACTION_DISPLAY,
    TASK,
    X12_306,
    X12_755,
    X12_889,
    X12_901,
    PasVersion,
)

REFERENCE_SYSTEM = "https://greenlight.example.org/fhir/sid/pas-reference-number"
AUTHORIZATION_SYSTEM = "https://greenlight.example.org/fhir/sid/authorization-number"
CERTIFIED = frozenset({"A1", "A2", "A6"})


@dataclass(frozen=True)
class ResponseIds:
    """The identities a response is built with (fixed when the request is accepted)."""

    fhir_base: str
    version: PasVersion
    claim_response_id: str
    claim_id: str
    reference_number: str
    authorization_number: str
    communication_request_id: str
    task_id: str

    @classmethod
    def new(
        cls, fhir_base: str, version: PasVersion, claim_response_id: str, claim_id: str
    ) -> ResponseIds:
        stamp = datetime.now().strftime("%y%m%d")
        return cls(
            fhir_base=fhir_base,
            version=version,
            claim_response_id=claim_response_id,
            claim_id=claim_id,
            reference_number=f"GLR{stamp}{secrets.token_hex(4).upper()}",
            authorization_number=f"GLA{stamp}{secrets.token_hex(4).upper()}",
            communication_request_id=str(uuid.uuid4()),
            task_id=str(uuid.uuid4()),
        )

    def url(self, resource_type: str, resource_id: str) -> str:
        return f"{self.fhir_base}/{resource_type}/{resource_id}"


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def review_action(
    code: str, number: str | None, reasons: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The reviewAction extension: number, X12 306 code, X12 HCR03 reasons."""
    parts: list[dict[str, Any]] = []
    if number:
        parts.append({"url": "number", "valueString": number})
    parts.append(
        {
            "url": EXT_REVIEW_ACTION_CODE,
            "valueCodeableConcept": concept(X12_306, code, REVIEW_ACTION_DISPLAY.get(code)),
        }
    )
    for reason in reasons or []:
        parts.append({"url": "reasonCode", "valueCodeableConcept": reason})
    return {"url": EXT_REVIEW_ACTION, "extension": parts}


def review_action_code(item: dict[str, Any]) -> str | None:
    """The X12 306 code of a ClaimResponse.item (None when absent)."""
    for adjudication in item.get("adjudication") or []:
        action = extension(adjudication, EXT_REVIEW_ACTION)
        for part in (action or {}).get("extension") or []:
            if part.get("url") == EXT_REVIEW_ACTION_CODE:
                for coding in (part.get("valueCodeableConcept") or {}).get("coding") or []:
                    if coding.get("system") == X12_306:
                        return str(coding.get("code"))
    return None


def period(start: date, days: int) -> dict[str, str]:
    return {"start": start.isoformat(), "end": (start + timedelta(days=max(days, 1))).isoformat()}


def _requested_period(item: dict[str, Any]) -> dict[str, Any] | None:
    if item.get("servicedPeriod"):
        return dict(item["servicedPeriod"])
    if item.get("servicedDate"):
        return {"start": item["servicedDate"], "end": item["servicedDate"]}
    return None


def _ref(request: RequestBundle, reference: Any) -> dict[str, Any] | None:
    """A reference to the request entry `reference` points at, by that entry's fullUrl."""
    entry = request.resolve(reference)
    return {"reference": entry.full_url} if entry is not None else None


class Notes:
    """`ClaimResponse.processNote`, one per distinct text, numbered from 1."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []

    def number(self, text: str) -> int:
        for note in self.notes:
            if note["text"] == text:
                return int(note["number"])
        number = len(self.notes) + 1
        self.notes.append({"number": number, "type": "display", "text": text})
        return number


def error_element(version: PasVersion, error: Any) -> dict[str, Any]:
    element: dict[str, Any] = (
        {"url": EXT_ERROR_ELEMENT, "valueString": error.element}
        if version == "2.0.1"
        else {
            "url": EXT_ERROR_ELEMENT,
            "extension": [{"url": "error", "valueString": error.element}],
        }
    )
    return {
        "extension": [
            {
                "url": EXT_ERROR_FOLLOWUP,
                "valueCodeableConcept": concept(X12_889, *error.followup),
            },
            element,
            {"url": EXT_ERROR_PATH, "valueString": error.path},
        ],
        "code": concept(X12_901, *error.code),
    }


def _item(
    request: RequestBundle,
    claim_item: dict[str, Any],
    result: ItemResult,
    ids: ResponseIds,
    notes: Notes,
    today: date,
) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = []
    trace = extension(claim_item, EXT_ITEM_TRACE_NUMBER)
    if trace is not None:
        extensions.append(copy.deepcopy(trace))
    previous = extension(claim_item, EXT_AUTHORIZATION_NUMBER)
    if previous is not None:
        extensions.append(copy.deepcopy(previous))
    extensions.append({"url": EXT_ADMIN_REFERENCE_NUMBER, "valueString": ids.reference_number})
    requested = _requested_period(claim_item)
    if requested is not None:
        extensions.append({"url": EXT_ITEM_REQUESTED_SERVICE_DATE, "valuePeriod": requested})
    certified = result.action in CERTIFIED
    if certified:
        extensions.append({"url": EXT_ITEM_PREAUTH_ISSUE_DATE, "valueDate": today.isoformat()})
        extensions.append(
            {"url": EXT_ITEM_PREAUTH_PERIOD, "valuePeriod": period(today, result.valid_days)}
        )
        provider = _authorized_provider(request, claim_item)
        if provider is not None:
            extensions.append(
                {
                    "url": EXT_ITEM_AUTHORIZED_PROVIDER,
                    "extension": [{"url": "provider", "valueReference": provider}],
                }
            )
        extensions.append(
            authorized_detail(claim_item["productOrService"], claim_item.get("quantity"))
        )
    for diagnosis in _diagnoses(request, claim_item):
        extensions.append({"url": EXT_COMMUNICATED_DIAGNOSIS, "valueCodeableConcept": diagnosis})
    number = ids.authorization_number if certified else ids.reference_number
    item: dict[str, Any] = {
        "extension": extensions,
        "itemSequence": result.sequence,
        "adjudication": [
            {
                "extension": [review_action(result.action, number)],
                "category": concept(ADJUDICATION, "submitted"),
            }
        ],
    }
    numbers = [notes.number(text) for text in result.reasons if text]
    if numbers:
        item["noteNumber"] = numbers
    return item


def authorized_detail(service: dict[str, Any], quantity: Any) -> dict[str, Any]:
    """The itemAuthorizedDetail extension: the service (and quantity) certified."""
    detail = [{"url": "productOrServiceCode", "valueCodeableConcept": service}]
    if isinstance(quantity, dict):
        detail.append({"url": "quantity", "valueQuantity": quantity})
    return {"url": EXT_ITEM_AUTHORIZED_DETAIL, "extension": detail}


def _authorized_provider(
    request: RequestBundle, claim_item: dict[str, Any]
) -> dict[str, Any] | None:
    claim = request.claim
    wanted = claim_item.get("careTeamSequence") or []
    for member in claim.resource.get("careTeam") or []:
        if wanted and member.get("sequence") not in wanted:
            continue
        entry = request.resolve(member.get("provider"), claim)
        if entry is not None and entry.type == "PractitionerRole":
            entry = request.resolve(entry.resource.get("practitioner"), entry)
        if entry is not None and entry.type in ("Practitioner", "Organization"):
            return {"reference": entry.full_url}
    return None


def _diagnoses(request: RequestBundle, claim_item: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = claim_item.get("diagnosisSequence") or []
    found = []
    for diagnosis in request.claim.resource.get("diagnosis") or []:
        if wanted and diagnosis.get("sequence") in wanted:
            concept_ = diagnosis.get("diagnosisCodeableConcept")
            if isinstance(concept_, dict):
                found.append(copy.deepcopy(concept_))
    return found


def outcome_of(actions: Sequence[str], has_errors: bool, version: PasVersion) -> str:
    """`error` with business errors, `queued` while anything is pended (PAS 2.0.1; PAS 2.2.1
    has no `queued` and answers a pended request `complete`), else `complete`."""
    if "A4" in actions and version == "2.0.1":
        return "queued"
    if has_errors:
        return "error"
    return "complete"


def build_claim_response(
    request: RequestBundle,
    adjudication: Adjudication,
    ids: ResponseIds,
    created: datetime,
) -> dict[str, Any]:
    """The PAS ClaimResponse for an adjudicated request."""
    claim = request.claim.resource
    today = created.date()
    notes = Notes()
    results = {r.sequence: r for r in adjudication.items}
    items = [
        _item(request, claim_item, results[int(claim_item.get("sequence") or 0)], ids, notes, today)
        for claim_item in claim.get("item") or []
        if isinstance(claim_item, dict) and int(claim_item.get("sequence") or 0) in results
    ]
    actions = [r.action for r in adjudication.items]
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": ids.claim_response_id,
        "meta": {"profile": [CLAIM_RESPONSE]},
        "identifier": [
            *[copy.deepcopy(i) for i in claim.get("identifier") or []],
            {"system": REFERENCE_SYSTEM, "value": ids.reference_number},
        ],
        "status": "active",
        "type": copy.deepcopy(claim.get("type")),
        "use": "preauthorization",
        "patient": _ref(request, claim.get("patient")),
        "created": created.isoformat(timespec="seconds"),
        "insurer": _ref(request, claim.get("insurer")),
        "requestor": _ref(request, claim.get("provider")),
        "request": {"reference": ids.url("Claim", ids.claim_id)},
        "outcome": outcome_of(actions, bool(adjudication.errors), ids.version),
        "disposition": disposition(actions),
    }
    if any(a in CERTIFIED for a in actions):
        response["preAuthRef"] = ids.authorization_number
        certified = [r for r in adjudication.items if r.action in CERTIFIED]
        response["preAuthPeriod"] = period(today, min(r.valid_days for r in certified))
    if items:
        response["item"] = items
    if any(r.questionnaires for r in adjudication.items):
        response["communicationRequest"] = [
            {"reference": ids.url("CommunicationRequest", ids.communication_request_id)}
        ]
    if notes.notes:
        response["processNote"] = notes.notes
    if adjudication.errors:
        response["error"] = [error_element(ids.version, e) for e in adjudication.errors]
    return {key: value for key, value in response.items() if value is not None}


def disposition(actions: Sequence[str]) -> str:
    """`ClaimResponse.disposition`: the whole request in words, from its items' X12 306 codes."""
    if "A4" in actions:
        return "Pended for review; the decision will be sent when it is made."
    if actions and all(a == "NA" for a in actions):
        return "No prior authorization is required."
    if "A3" in actions and not any(a in CERTIFIED for a in actions):
        return "Not certified."
    if "A3" in actions or "A2" in actions:
        return "Partly certified."
    if "A6" in actions:
        return "Certified as modified: what is certified is in addItem."
    return "Certified." if actions else "Processed."


def documentation_requests(
    request: RequestBundle, adjudication: Adjudication, ids: ResponseIds, created: datetime
) -> list[dict[str, Any]]:
    """The CommunicationRequest and the PAS Task asking for missing documentation (PAS ainfo)."""
    wanted = [r for r in adjudication.items if r.questionnaires]
    if not wanted:
        return []
    claim = request.claim
    first = wanted[0]
    patient = _ref(request, claim.resource.get("patient"))
    insurer = _ref(request, claim.resource.get("insurer"))
    requestor = _ref(request, claim.resource.get("provider"))
    submitter = request.resource(claim.resource.get("provider"), claim) or {}
    insurer_resource = request.resource(claim.resource.get("insurer"), claim) or {}
    line = {"url": EXT_SERVICE_LINE_NUMBER, "valuePositiveInt": first.sequence}
    payload: dict[str, Any] = {"contentString": PAYER_QUESTIONNAIRE_LOINC}
    claim_item: dict[str, Any] = next(
        (i for i in claim.resource.get("item") or [] if i.get("sequence") == first.sequence), {}
    )
    payload_extensions = [
        {"url": EXT_COMMUNICATED_DIAGNOSIS, "valueCodeableConcept": diagnosis}
        for diagnosis in _diagnoses(request, claim_item)
    ]
    # the LOINC attachment modifier (class ATTACH.MODIFIER) the Inferno PAS kit's examples use
    payload_extensions.append(
        {"url": EXT_CONTENT_MODIFIER, "valueCodeableConcept": concept(LOINC, "18804-5")}
    )
    communication: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "id": ids.communication_request_id,
        "meta": {"profile": [COMMUNICATION_REQUEST]},
        "identifier": [{"system": REFERENCE_SYSTEM, "value": ids.reference_number}],
        "status": "active",
        "category": [concept(X12_755, "M1", "Medical Record Attachment")],
        "medium": [concept(PAS_TEMP, "CDEX")],
        "subject": patient,
        "payload": [payload],
        "authoredOn": created.isoformat(timespec="seconds"),
        "requester": insurer,
        "recipient": [requestor] if requestor else None,
        "sender": requestor,
        "note": [{"text": " ".join(first.reasons)}] if first.reasons else None,
    }
    if ids.version == "2.0.1":
        payload["extension"] = [line, *payload_extensions]
    else:
        payload["extension"] = payload_extensions
        communication["extension"] = [line]
    questionnaire_input: dict[str, Any]
    if ids.version == "2.0.1":
        questionnaire_input = {
            "extension": [{"url": EXT_PA_LINE_NUMBER, "valueInteger": first.sequence}],
            "type": concept(PAS_TEMP, "questionnaires-needed"),
            "valueIdentifier": {"system": REFERENCE_SYSTEM, "value": ids.reference_number},
        }
    else:
        questionnaire_input = {
            "extension": [line],
            "type": concept(PAS_TEMP, "questionnaire-context"),
            "valueString": ids.reference_number,
        }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": ids.task_id,
        "meta": {"profile": [TASK]},
        "identifier": [{"system": REFERENCE_SYSTEM, "value": ids.reference_number}],
        "status": "requested",
        "statusReason": {"text": "Documentation needed to decide the prior authorization"},
        "intent": "order",
        "code": concept(PAS_TEMP, "attachment-request-questionnaire"),
        "for": patient,
        "authoredOn": created.isoformat(timespec="seconds"),
        "requester": {
            "reference": (insurer or {}).get("reference"),
            "identifier": first_identifier(insurer_resource),
        },
        "owner": {
            "reference": (requestor or {}).get("reference"),
            "identifier": first_identifier(submitter),
        },
        "reasonCode": concept(PAS_TEMP, "priorAuthorization"),
        "reasonReference": {"reference": ids.url("Claim", ids.claim_id)},
        "restriction": {"period": period(created.date(), 30)},
        "input": [
            {"type": concept(PAS_TEMP, "payer-url"), "valueUrl": ids.fhir_base},
            questionnaire_input,
        ],
    }
    return [_clean(communication), _clean(task)]


def first_identifier(resource: dict[str, Any]) -> dict[str, Any] | None:
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            return {k: v for k, v in identifier.items() if k in ("system", "value")}
    return None


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    return value


def response_bundle(
    claim_response: dict[str, Any],
    request_bundle: dict[str, Any],
    extras: list[dict[str, Any]],
    fhir_base: str,
    timestamp: datetime,
) -> dict[str, Any]:
    """The PAS Response Bundle: ClaimResponse first, then extras, then the request's entries."""
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{fhir_base}/ClaimResponse/{claim_response['id']}",
            "resource": claim_response,
        }
    ]
    entries.extend(
        {"fullUrl": f"{fhir_base}/{r['resourceType']}/{r['id']}", "resource": r} for r in extras
    )
    entries.extend(
        {"fullUrl": e["fullUrl"], "resource": e["resource"]}
        for e in request_bundle["entry"]
        if e["resource"].get("resourceType") != "Claim"
    )
    bundle_id = str(uuid.uuid4())
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [RESPONSE_BUNDLE]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
        "type": "collection",
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "entry": entries,
    }


def inquiry_claim_response(claim_response: dict[str, Any], claim_url: str) -> dict[str, Any]:
    """A stored ClaimResponse as a Claim Inquiry Response (no documentation requests, which an
    inquiry response does not carry, PAS spec-9); `request` names the stored Claim (spec-44)."""
    answer = copy.deepcopy(claim_response)
    answer.pop("meta", None)
    answer["meta"] = {"profile": [CLAIM_INQUIRY_RESPONSE]}
    answer.pop("communicationRequest", None)
    answer["request"] = {"reference": claim_url}
    return answer


def inquiry_bundle(
    answers: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    fhir_base: str,
    timestamp: datetime,
) -> dict[str, Any]:
    """A PAS Inquiry Response Bundle: each ClaimResponse, then the request entries it
    references (patient, insurer, requestor and what they reference), each fullUrl once."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for claim_response, supporting in answers:
        entries.append(
            {
                "fullUrl": f"{fhir_base}/ClaimResponse/{claim_response['id']}",
                "resource": claim_response,
            }
        )
        for entry in supporting:
            if entry["fullUrl"] not in seen:
                seen.add(entry["fullUrl"])
                entries.append(entry)
    bundle_id = str(uuid.uuid4())
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [INQUIRY_RESPONSE_BUNDLE]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
        "type": "collection",
        "timestamp": timestamp.isoformat(timespec="seconds"),
    }
    if entries:
        bundle["entry"] = entries
    return bundle
