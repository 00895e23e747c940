"""Hook calls that must fail: bad JWTs (401), malformed bodies (400), data missing and not
fetchable (412); each answered with an OperationOutcome (CRD hook-9/10/13, found-32)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.crd.conftest import CrdServer
from tests.crd.hook_requests import order_sign

SERVICE = "order-sign-crd"


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


def _post(crd: CrdServer, body: Any, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=crd.server.base_url, timeout=30) as client:
        return client.post(f"/cds-services/{SERVICE}", json=body, headers=headers)


@pytest.mark.requirement("CRD", "sec-1")
@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "http://127.0.0.1:1/cds-services/order-sign-crd"},
        {"exp": int(time.time()) - 120},
        {"iss": "https://unknown.example/cds"},
    ],
    ids=["wrong-aud", "expired", "unknown-issuer"],
)
def test_bad_jwt_is_refused(crd: CrdServer, claims: dict[str, Any]) -> None:
    token = crd.jwt(SERVICE, **claims)
    _outcome(
        _post(crd, order_sign("10A3D58WH456", "72148"), {"Authorization": f"Bearer {token}"}), 401
    )


def test_missing_and_replayed_jwt_are_refused(crd: CrdServer) -> None:
    body = order_sign("10A3D58WH456", "72148")
    _outcome(_post(crd, body, {}), 401)
    token = crd.jwt(SERVICE)
    assert _post(crd, body, {"Authorization": f"Bearer {token}"}).status_code == 200
    _outcome(_post(crd, body, {"Authorization": f"Bearer {token}"}), 401)


@pytest.mark.requirement("CRD", "hook-9")
@pytest.mark.requirement("CRD", "hook-10")
# hook-13 is not claimed: malformed requests get 400 (below), but a primary Coverage whose payor
# is not this payer, or none / several Coverages, are answered (not-covered), not refused.
@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda b: b.update(hook="order-select"), "hook"),
        (lambda b: b.update(context="x"), "context"),
        (lambda b: b["context"].update(patientId="Patient/pat015"), "context.patientId"),
        (
            lambda b: b["context"].update(draftOrders={"resourceType": "Patient"}),
            "context.draftOrders",
        ),
        (
            lambda b: b["context"]["draftOrders"]["entry"][0]["resource"].update(colour="red"),
            "context.draftOrders.entry.resource[0].colour",
        ),
    ],
    ids=[
        "no-hookInstance",
        "bad-hookInstance",
        "wrong-hook",
        "context-not-object",
        "patientId-reference",
        "draftOrders-not-bundle",
        "invalid-order",
    ],
)
def test_malformed_request_is_400_naming_the_field(crd: CrdServer, mutate: Any, path: str) -> None:
    body = order_sign("10A3D58WH456", "72148")
    mutate(body)
    response = crd.call(SERVICE, body)
    outcome = _outcome(response, 400)
    assert path in outcome["issue"][0]["expression"], outcome


@pytest.mark.requirement("CRD", "hook-9")
@pytest.mark.requirement("CRD", "hook-10")
def test_unparsable_json_is_400(crd: CrdServer) -> None:
    token = crd.jwt(SERVICE)
    with httpx.Client(base_url=crd.server.base_url, timeout=30) as client:
        response = client.post(
            f"/cds-services/{SERVICE}",
            content=b"{not json",
            headers={"Authorization": f"Bearer {token}"},
        )
    _outcome(response, 400)


@pytest.mark.requirement("CRD", "hook-9")
@pytest.mark.requirement("CRD", "hook-10")
@pytest.mark.requirement("CRD", "found-32")
def test_no_prefetch_and_no_fhir_server_is_412(crd: CrdServer) -> None:
    body = order_sign("10A3D58WH456", "72148", prefetch_coverage=False, fhir_server=False)
    outcome = _outcome(crd.call(SERVICE, body), 412)
    assert "prefetch.coverage" in outcome["issue"][0]["expression"]


def test_unknown_service_is_404(crd: CrdServer) -> None:
    _outcome(crd.call("no-such-service", order_sign("10A3D58WH456", "72148")), 404)
