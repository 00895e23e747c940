"""Helpers of the CRD requirement tests (tests/crd/test_requirements_*.py): multi-order and
order-select calls built from the Inferno kit's own bodies (`hook_requests`), the answers of a
response keyed by order, and views of responses that leave out what changes between equal calls
(uuids, assertion ids, dates).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from tests.crd.conftest import CrdServer
from tests.crd.hook_requests import CPT, order_sign
from tests.support.crd_checks import COVERAGE_INFO_URL

#: (code, system, order type) of demo orders with something to say (app/demo/DEMO.md)
LUMBAR_MRI = ("72148", CPT, "ServiceRequest")
OFFICE_VISIT = ("99213", CPT, "ServiceRequest")
HOME_OXYGEN = ("E1390", "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "DeviceRequest")
ADALIMUMAB = ("327361", "http://www.nlm.nih.gov/research/umls/rxnorm", "MedicationRequest")
GOLD_MEMBER, SILVER_MEMBER, CANCELLED_MEMBER = "10A3D58WH456", "GLH50873304", "GLH50744219"
#: the orderer the lumbar MRI topic gold-cards
GOLD_CARD_NPI = "1304582715"
#: parts of an answer that differ between equal calls
VOLATILE_PARTS = frozenset({"coverage-assertion-id", "date", "expiry-date"})


def multi_order_sign(
    member_id: str, orders: Sequence[tuple[str, str, str]], **options: Any
) -> dict[str, Any]:
    """One order-sign call holding every order of `orders` (ids `order-<n>-<code>`)."""
    body: dict[str, Any] | None = None
    entries = []
    for number, (code, system, order_type) in enumerate(orders):
        single = order_sign(member_id, code, system, order_type=order_type, **options)
        entry = single["context"]["draftOrders"]["entry"][0]
        entry["resource"]["id"] = f"order-{number}-{code.lower()}"
        entries.append(entry)
        body = body or single
    assert body is not None
    body["context"]["draftOrders"]["entry"] = entries
    return body


def order_refs(body: Mapping[str, Any]) -> list[str]:
    """`Type/id` of the draft orders of an order-sign or order-select body."""
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body["context"]["draftOrders"]["entry"]
    ]


def as_order_select(
    body: dict[str, Any], selections: Iterable[str] | None = None
) -> dict[str, Any]:
    """The same drafts sent as order-select, `selections` (default: all) being chosen."""
    select = copy.deepcopy(body)
    select["hook"] = "order-select"
    select["hookInstance"] = str(uuid.uuid4())
    select["context"]["selections"] = list(selections or order_refs(body))
    return select


def fresh(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` with a new hookInstance (a new call)."""
    again = copy.deepcopy(body)
    again["hookInstance"] = str(uuid.uuid4())
    return again


def call(crd: CrdServer, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The 200 response of a hook call, as JSON."""
    response: httpx.Response = crd.call(service_id, body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def _values(extension: Mapping[str, Any]) -> dict[str, list[Any]]:
    parts: dict[str, list[Any]] = {}
    for part in extension.get("extension") or []:
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        parts.setdefault(part["url"], []).append(value)
    return parts


def coverage_by_order(response: Mapping[str, Any]) -> dict[str, list[dict[str, list[Any]]]]:
    """`Type/id` of each updated resource -> its coverage-information extensions as
    {sub-extension url: [values]}."""
    found: dict[str, list[dict[str, list[Any]]]] = {}
    for action in response.get("systemActions") or []:
        resource = action.get("resource") or {}
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        for extension in resource.get("extension") or []:
            if extension.get("url") == COVERAGE_INFO_URL:
                found.setdefault(ref, []).append(_values(extension))
    return found


def essence(parts: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """An answer without what differs between equal calls (assertion id, dates)."""
    return {url: values for url, values in parts.items() if url not in VOLATILE_PARTS}


def answers(response: Mapping[str, Any]) -> dict[str, list[dict[str, list[Any]]]]:
    """Every order's coverage information, less the volatile parts."""
    return {ref: [essence(p) for p in parts] for ref, parts in coverage_by_order(response).items()}


def card_view(response: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The cards as a user sees them: type, summary, detail, links and suggested resources."""
    view = []
    for card in response.get("cards") or []:
        links = tuple((link.get("type"), link.get("url")) for link in card.get("links") or [])
        suggested = tuple(
            (action.get("type"), (action.get("resource") or {}).get("resourceType"))
            for suggestion in card.get("suggestions") or []
            for action in suggestion.get("actions") or []
        )
        topic = card["source"]["topic"]["code"]
        view.append((topic, card["summary"], card.get("detail"), links, suggested))
    return sorted(view, key=repr)


def discovery_services(crd: CrdServer) -> list[dict[str, Any]]:
    """The `services` of `GET /cds-services` (asserting it answers 200)."""
    with httpx.Client(base_url=crd.server.base_url, timeout=30) as client:
        response = client.get("/cds-services", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    services: list[dict[str, Any]] = response.json()["services"]
    return services
