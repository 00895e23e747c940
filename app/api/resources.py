"""The FHIR REST interactions at `/fhir/<type>`: read, vread, history, create, update, delete,
search. Routes exist only for the types in the registry (unknown types answer 404), and only for
the interactions it gives a type (others answer 405 with `Allow`: AuditEvent is append-only).
Read and vread also answer under the PAS 2.2.1 base, whose responses name resources by URLs
below it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import Services, services
from app.auth.guard import authorize
from app.auth.principal import INTERACTION_ACTIONS
from app.fhir.jsonio import FHIR_JSON_UTF8, dumps, fhir_response
from app.fhir.model_classes import model_class
from app.fhir.models import check_resource, parse_json_body
from app.fhir.negotiation import check_body_media_type, negotiate
from app.fhir.outcomes import FhirError
from app.pas.codes import BASE_PATHS
from app.registry import Interaction, ResourceSpec
from app.store.repository import parse_if_match
from app.store.search import parse_search, unknown_parameter_issue
from app.store.stored import SearchPage, StoredResource

router = APIRouter(prefix="/fhir")

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


_METHODS = {
    "read": "GET",
    "vread": "GET",
    "search-type": "GET",
    "history-instance": "GET",
    "create": "POST",
    "update": "PUT",
    "delete": "DELETE",
}


def _spec(svc: Services, resource_type: str, interaction: Interaction) -> ResourceSpec:
    """The registry's entry for `resource_type`; 404 when not served, 405 when it does not
    allow `interaction` (AuditEvents are never updated or deleted)."""
    spec = svc.registry.resource(resource_type)
    if spec is not None:
        if interaction not in spec.interactions:
            allowed = sorted({_METHODS[name] for name in spec.interactions})
            raise FhirError.single(
                405,
                "not-supported",
                f"{resource_type} does not allow {interaction}",
                resource_type,
                headers={"Allow": ", ".join(allowed)},
            )
        return spec
    if model_class(resource_type) is not None:
        raise FhirError.single(
            404, "not-supported", f"{resource_type} is not served by this server", resource_type
        )
    raise FhirError.single(404, "not-found", f"{resource_type} is not a FHIR resource type")


def _check_id(resource_id: str, resource_type: str) -> None:
    if not _ID_RE.match(resource_id):
        raise FhirError.single(
            400, "invalid", f"'{resource_id}' is not a valid FHIR id", f"{resource_type}.id"
        )


def _version_headers(svc: Services, stored: StoredResource) -> dict[str, str]:
    return {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated,
        "Location": (
            f"{svc.settings.fhir_base_url}/{stored.resource_type}/{stored.id}"
            f"/_history/{stored.version_id}"
        ),
    }


async def _body(request: Request, resource_type: str) -> dict[str, Any]:
    check_body_media_type(request)
    raw = parse_json_body(await request.body())
    return check_resource(raw, expected_type=resource_type)


def _write_response(
    request: Request, svc: Services, stored: StoredResource, status: int
) -> Response:
    negotiated = negotiate(request)
    headers = _version_headers(svc, stored)
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    assert stored.body is not None
    return fhir_response(stored.body, status, headers, pretty=negotiated.pretty)


async def _guard(request: Request, resource_type: str, interaction: str) -> None:
    await authorize(request, resource_type, INTERACTION_ACTIONS[interaction])


@router.get("/{resource_type}/{resource_id}")
async def read(request: Request, resource_type: str, resource_id: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "read")
    _spec(svc, resource_type, "read")
    negotiated = negotiate(request)
    _check_id(resource_id, resource_type)
    stored = await svc.store.read(resource_type, resource_id)
    assert stored.body is not None
    headers = {"ETag": stored.etag, "Last-Modified": stored.last_updated}
    return fhir_response(stored.body, 200, headers, pretty=negotiated.pretty)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
async def vread(
    request: Request, resource_type: str, resource_id: str, version_id: str
) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "vread")
    _spec(svc, resource_type, "vread")
    negotiated = negotiate(request)
    _check_id(resource_id, resource_type)
    if not version_id.isdigit():
        raise FhirError.single(
            400, "invalid", f"'{version_id}' is not a version id", f"{resource_type}.meta.versionId"
        )
    stored = await svc.store.vread(resource_type, resource_id, int(version_id))
    assert stored.body is not None
    headers = {"ETag": stored.etag, "Last-Modified": stored.last_updated}
    return fhir_response(stored.body, 200, headers, pretty=negotiated.pretty)


# The PAS 2.2.1 base (`/fhir/pas-2.2.1`, PAS conf-1) names the resources of its requests and
# answers by URLs under itself (`fullUrl`, `ClaimResponse.request`): they read the same store.
for _base in sorted({path for path in BASE_PATHS.values() if path != router.prefix}):
    _below = _base.removeprefix(router.prefix)
    _one = f"{_below}/{{resource_type}}/{{resource_id}}"
    router.add_api_route(_one, read, methods=["GET"])
    router.add_api_route(f"{_one}/_history/{{version_id}}", vread, methods=["GET"])


@router.get("/{resource_type}/{resource_id}/_history")
async def history(request: Request, resource_type: str, resource_id: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "history-instance")
    _spec(svc, resource_type, "history-instance")
    negotiated = negotiate(request)
    _check_id(resource_id, resource_type)
    versions = await svc.store.history(resource_type, resource_id)
    base = svc.settings.fhir_base_url
    entries = []
    for stored in versions:
        url = f"{base}/{resource_type}/{resource_id}"
        entry: dict[str, Any] = {
            "fullUrl": url,
            "request": {
                "method": "DELETE"
                if stored.deleted
                else ("POST" if stored.version_id == 1 else "PUT"),
                "url": f"{resource_type}/{resource_id}" if stored.version_id > 1 else resource_type,
            },
            "response": {
                "status": "204" if stored.deleted else ("201" if stored.version_id == 1 else "200"),
                "etag": stored.etag,
                "lastModified": stored.last_updated,
            },
        }
        if stored.body is not None:
            entry["resource"] = orjson.Fragment(stored.body)
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": f"{base}/{resource_type}/{resource_id}/_history"}],
        "entry": entries,
    }
    return _bundle_response(bundle, negotiated.pretty)


@router.post("/{resource_type}")
async def create(request: Request, resource_type: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "create")
    _spec(svc, resource_type, "create")
    negotiate(request)
    resource = await _body(request, resource_type)
    async with svc.store.transaction() as tx:
        stored = await tx.create(resource)
    return _write_response(request, svc, stored, 201)


@router.put("/{resource_type}/{resource_id}")
async def update(request: Request, resource_type: str, resource_id: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "update")
    _spec(svc, resource_type, "update")
    negotiate(request)
    _check_id(resource_id, resource_type)
    if_match = parse_if_match(request.headers.get("if-match"))
    resource = await _body(request, resource_type)
    body_id = resource.get("id")
    if body_id is None:
        raise FhirError.single(
            400, "required", "An update must carry the resource id", f"{resource_type}.id"
        )
    if body_id != resource_id:
        raise FhirError.single(
            400,
            "invalid",
            f"The body's id '{body_id}' does not match the URL id '{resource_id}'",
            f"{resource_type}.id",
        )
    async with svc.store.transaction() as tx:
        stored, created = await tx.update(resource, resource_id, if_match)
    return _write_response(request, svc, stored, 201 if created else 200)


@router.delete("/{resource_type}/{resource_id}")
async def delete(request: Request, resource_type: str, resource_id: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "delete")
    _spec(svc, resource_type, "delete")
    negotiate(request)
    _check_id(resource_id, resource_type)
    if_match = parse_if_match(request.headers.get("if-match"))
    async with svc.store.transaction() as tx:
        stored = await tx.delete(resource_type, resource_id, if_match)
    headers = {"ETag": stored.etag} if stored else {}
    return Response(status_code=204, headers=headers)


@router.get("/{resource_type}")
async def search(request: Request, resource_type: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "search-type")
    spec = _spec(svc, resource_type, "search-type")
    return await _search(request, svc, spec, list(request.query_params.multi_items()))


@router.post("/{resource_type}/_search")
async def search_post(request: Request, resource_type: str) -> Response:
    svc = services(request)
    await _guard(request, resource_type, "search-type")
    spec = _spec(svc, resource_type, "search-type")
    content_type = request.headers.get("content-type", "")
    params = list(request.query_params.multi_items())
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = (await request.body()).decode("utf-8", errors="replace")
        params.extend(parse_qsl(form, keep_blank_values=True))
    elif content_type:
        raise FhirError.single(
            415,
            "not-supported",
            "POST _search takes application/x-www-form-urlencoded parameters",
            "Content-Type",
        )
    return await _search(request, svc, spec, params)


async def _search(
    request: Request, svc: Services, spec: ResourceSpec, params: list[tuple[str, str]]
) -> Response:
    """Run an authorized search of `spec.type` with `params`."""
    negotiated = negotiate(request)
    strict = "handling=strict" in request.headers.get("prefer", "")
    query = parse_search(
        spec,
        params,
        fhir_base=svc.settings.fhir_base_url,
        default_count=svc.settings.default_page_size,
        max_count=svc.settings.max_page_size,
        strict=strict,
    )
    page = await svc.store.search(query)
    bundle = _searchset(svc, query.resource_type, query.echoed, query.count, query.offset, page)
    if query.ignored:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [unknown_parameter_issue(query.ignored, spec.type).to_json()],
        }
        bundle["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    if query.summary_count:
        bundle.pop("entry")
        bundle["link"] = bundle["link"][:1]
    return _bundle_response(bundle, negotiated.pretty)


def _page_url(
    base: str, resource_type: str, echoed: list[tuple[str, str]], count: int, offset: int
) -> str:
    query = [*echoed, ("_count", str(count))]
    if offset:
        query.append(("_offset", str(offset)))
    return f"{base}/{resource_type}?{urlencode(query)}"


def _searchset(
    svc: Services,
    resource_type: str,
    echoed: list[tuple[str, str]],
    count: int,
    offset: int,
    page: SearchPage,
) -> dict[str, Any]:
    base = svc.settings.fhir_base_url
    links = [{"relation": "self", "url": _page_url(base, resource_type, echoed, count, offset)}]
    if count and offset + count < page.total:
        links.append(
            {
                "relation": "next",
                "url": _page_url(base, resource_type, echoed, count, offset + count),
            }
        )
    if count and offset > 0:
        links.append(
            {
                "relation": "previous",
                "url": _page_url(base, resource_type, echoed, count, max(0, offset - count)),
            }
        )
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{resource_type}/{stored.id}",
            "resource": orjson.Fragment(stored.body or b"{}"),
            "search": {"mode": "match"},
        }
        for stored in page.items
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    }


def _bundle_response(bundle: dict[str, Any], pretty: bool) -> Response:
    if not bundle.get("entry"):
        bundle.pop("entry", None)
    content = dumps(bundle)
    if pretty:
        content = dumps(orjson.loads(content), pretty=True)
    return Response(content=content, media_type=FHIR_JSON_UTF8)
