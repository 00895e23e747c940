"""The reviewer decision API (JSON, not FHIR), the contract the review workbench will use.

    GET  /um/cases?status=&claim=&_count=&_offset=   cases, earliest due first
    GET  /um/cases/{id}                               the case, the request, the documentation,
                                                      the current ClaimResponse, the rule trace
    POST /um/cases/{id}/decision                      {"decision": "approve"|"partial"|"deny",
                                                       "reason": {"code", "display"}, "note",
                                                       "items": [{"sequence", "decision":
                                                         "approve"|"partial"|"modify"|"deny",
                                                         "reason", "quantity", "service",
                                                         "note"}]}
                                                      (`app.um.contract`); answers the case, the
                                                      ClaimResponse version and the AuditEvent

Access (the reviewer role): a bearer token from `/auth/token` that may update ClaimResponses
(`system/ClaimResponse.u`, or broader) **and** holds the reviewer role, either way:

- the token carries the scope `greenlight/um.reviewer`, which the token endpoint grants only to a
  client whose registration in `GREENLIGHT_CLIENTS` lists it (`"scopes": ["greenlight/um.reviewer",
  "system/ClaimResponse.rus", ...]`) and that asks for it; or
- its client id is listed in `GREENLIGHT_UM_REVIEWERS` (no extra scope needed).

Anyone else gets 401 without a token and 403 (`forbidden`) with one. Without auth (demo mode
only) everyone is a reviewer. Errors answer an OperationOutcome (JSON) with the HTTP status, as
everywhere else on this server.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.auth.guard import Authenticator
from app.auth.principal import Principal
from app.auth.scopes import REVIEWER_SCOPE
from app.fhir.models import parse_json_body
from app.fhir.outcomes import FhirError
from app.pas.bundle import RequestBundle
from app.pas.service import PasService
from app.um.cases import STATUSES, CaseStore
from app.um.decisions import decide_case

router = APIRouter(prefix="/um")


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def reviewer(request: Request) -> Principal:
    """The caller, if it holds the reviewer role (see the module docstring); else 401/403."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(request)
    if principal.anonymous:
        return principal
    reviewers = {c.strip() for c in services(request).settings.um_reviewers.split(",") if c.strip()}
    if not principal.allows("ClaimResponse", "u") or not (
        principal.holds(REVIEWER_SCOPE) or principal.client_id in reviewers
    ):
        raise FhirError.single(
            403,
            "forbidden",
            "The utilization review API needs the reviewer role: system/ClaimResponse.u and "
            f"the {REVIEWER_SCOPE} scope (for a client registered with it), or a client listed "
            "in GREENLIGHT_UM_REVIEWERS",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    return principal


def _pas(request: Request) -> PasService:
    found: PasService = request.app.state.pas
    return found


def _int(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise FhirError.single(400, "invalid", f"{name} is a number from 0 to {high}", name)
    return int(raw)


@router.get("/cases")
async def list_cases(request: Request) -> Response:
    await reviewer(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise FhirError.single(400, "invalid", f"status is one of {', '.join(STATUSES)}", "status")
    claim = request.query_params.get("claim") or None
    claim_id = claim.removeprefix("Claim/") if claim else None
    total, cases = await CaseStore(_pas(request).database).list(
        status=status,
        claim_id=claim_id,
        limit=_int(request, "_count", 100, 1000),
        offset=_int(request, "_offset", 0, 10**9),
    )
    return _json({"total": total, "cases": [case.summary() for case in cases]})


def _documentation(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """What the request carried as supporting information (resolved), QRs included."""
    request = RequestBundle.stored(bundle)
    claim = request.claim
    found = []
    for info in claim.resource.get("supportingInfo") or []:
        shown: dict[str, Any] = {
            "sequence": info.get("sequence"),
            "category": info.get("category"),
        }
        target = request.resource(info.get("valueReference"), claim)
        if target is not None:
            shown["resource"] = target
        for key, value in info.items():
            if key.startswith("value") and key != "valueReference":
                shown[key] = value
        found.append(shown)
    listed = {id(d.get("resource")) for d in found}
    for entry in request.of_type("QuestionnaireResponse"):
        if id(entry.resource) not in listed:
            found.append({"resource": entry.resource})
    return found


@router.get("/cases/{case_id}")
async def show_case(request: Request, case_id: str) -> Response:
    await reviewer(request)
    pas = _pas(request)
    case = await CaseStore(pas.database).get(case_id)
    if case is None:
        raise FhirError.single(404, "not-found", f"No review case {case_id}", "id")
    stored = await pas.request(case.request_id)
    detail = case.detail()
    if stored is not None:
        detail["request"] = stored.bundle
        detail["documentation"] = _documentation(stored.bundle)
        detail["claimResponse"] = (
            await pas.store.read("ClaimResponse", case.claim_response_id)
        ).json()
    return _json(detail)


@router.post("/cases/{case_id}/decision")
async def decide(request: Request, case_id: str) -> Response:
    principal = await reviewer(request)
    body = parse_json_body(await request.body())
    decided = await decide_case(_pas(request), case_id, body, principal.client_id)
    return _json(decided.answer())
