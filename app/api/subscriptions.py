"""PAS Subscriptions (R5 Backport): create, update, delete and `$status`, at each PAS base.

Mounted before the generic resources router, so `POST /fhir/Subscription` answers 201 with the
Subscription in status `requested` and its handshake follows from the outbox. Reads and searches
at `/fhir/Subscription` stay with the generic router. Scopes: `system/Subscription.c|u|d|r`;
only the client that created a subscription may change it or read its status (PAS spec-59).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.context import services
from app.auth.guard import authorize
from app.fhir.jsonio import fhir_response
from app.fhir.models import parse_json_body
from app.fhir.negotiation import check_body_media_type, negotiate
from app.pas.codes import BASE_PATHS, PAS_TOPIC, PAS_VERSIONS, PasVersion, fhir_base
from app.pas.subscription_store import SubscriptionService
from app.registry import REGISTRY, OperationSpec
from app.store.repository import parse_if_match
from app.store.stored import StoredResource

router = APIRouter()

TOPIC_CANONICAL = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)
REGISTRY.add_operation(
    OperationSpec(
        "status",
        ("Subscription",),
        "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
        "The status of a PAS Subscription (R5 Backport)",
    )
)


def _advertise_topic(statement: dict[str, Any]) -> None:
    """The CapabilityStatement names the PAS topic on Subscription (PAS spec-55)."""
    for rest in statement.get("rest") or []:
        for resource in rest.get("resource") or []:
            if resource.get("type") == "Subscription":
                resource.setdefault("extension", []).append(
                    {"url": TOPIC_CANONICAL, "valueCanonical": PAS_TOPIC}
                )


REGISTRY.capability_contributors.append(_advertise_topic)

Endpoint = Callable[..., Awaitable[Response]]


def _named(endpoint: Endpoint, version: PasVersion) -> Endpoint:
    endpoint.__name__ = f"{endpoint.__name__}_{version.replace('.', '_')}"
    return endpoint


def _service(request: Request) -> SubscriptionService:
    found: SubscriptionService = request.app.state.subscriptions
    return found


def _written(
    request: Request, stored: StoredResource, status: int, version: PasVersion
) -> Response:
    negotiated = negotiate(request)
    base = fhir_base(services(request).settings.base_url, version)
    headers = {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated,
        "Location": f"{base}/Subscription/{stored.id}/_history/{stored.version_id}",
    }
    assert stored.body is not None
    return fhir_response(stored.body, status, headers, pretty=negotiated.pretty)


def _create(version: PasVersion) -> Endpoint:
    async def create_subscription(request: Request) -> Response:
        principal = await authorize(request, "Subscription", "c")
        negotiate(request)
        check_body_media_type(request)
        payload = parse_json_body(await request.body())
        stored = await _service(request).create(payload, principal.client_id, version)
        return _written(request, stored, 201, version)

    return _named(create_subscription, version)


def _update(version: PasVersion) -> Endpoint:
    async def update_subscription(request: Request, subscription_id: str) -> Response:
        principal = await authorize(request, "Subscription", "u")
        negotiate(request)
        check_body_media_type(request)
        payload = parse_json_body(await request.body())
        if_match = parse_if_match(request.headers.get("if-match"))
        stored, _ = await _service(request).update(
            subscription_id, payload, principal.client_id, version, if_match
        )
        return _written(request, stored, 200, version)

    return _named(update_subscription, version)


def _delete(version: PasVersion) -> Endpoint:
    async def delete_subscription(request: Request, subscription_id: str) -> Response:
        principal = await authorize(request, "Subscription", "d")
        if_match = parse_if_match(request.headers.get("if-match"))
        await _service(request).delete(subscription_id, principal.client_id, if_match)
        return Response(status_code=204)

    return _named(delete_subscription, version)


def _status(version: PasVersion) -> Endpoint:
    async def subscription_status(request: Request, subscription_id: str) -> Response:
        principal = await authorize(request, "Subscription", "r")
        negotiated = negotiate(request)
        bundle = await _service(request).status(subscription_id, principal.client_id, version)
        return fhir_response(bundle, 200, pretty=negotiated.pretty)

    return _named(subscription_status, version)


def _read(version: PasVersion) -> Endpoint:
    async def read_subscription(request: Request, subscription_id: str) -> Response:
        await authorize(request, "Subscription", "r")
        negotiated = negotiate(request)
        stored = await services(request).store.read("Subscription", subscription_id)
        assert stored.body is not None
        headers = {"ETag": stored.etag, "Last-Modified": stored.last_updated}
        return fhir_response(stored.body, 200, headers, pretty=negotiated.pretty)

    return _named(read_subscription, version)


for _version in PAS_VERSIONS:
    _base = BASE_PATHS[_version]
    router.add_api_route(f"{_base}/Subscription", _create(_version), methods=["POST"])
    router.add_api_route(
        f"{_base}/Subscription/{{subscription_id}}/$status",
        _status(_version),
        methods=["GET", "POST"],
    )
    router.add_api_route(
        f"{_base}/Subscription/{{subscription_id}}", _update(_version), methods=["PUT"]
    )
    router.add_api_route(
        f"{_base}/Subscription/{{subscription_id}}", _delete(_version), methods=["DELETE"]
    )
    if _base != "/fhir":
        router.add_api_route(
            f"{_base}/Subscription/{{subscription_id}}", _read(_version), methods=["GET"]
        )
