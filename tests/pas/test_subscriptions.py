"""PAS Subscriptions (R5 Backport, rest-hook): creation, handshake, heartbeats and $status.

Each subscriber endpoint is a real HTTP listener on loopback (`tests.pas.listener`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.pas.conftest import PAS, PasServer, kit, subscription
from tests.pas.listener import Listener, listen
from tests.support.conformance import assert_conforms

HEARTBEAT = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period"
)


def _created(pas: PasServer, resource: dict[str, Any], version: str = "2.0.1") -> dict[str, Any]:
    response = pas.subscribe(resource, version)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert_conforms(created, ig="hl7.fhir.us.davinci-pas#" + version)
    return created


def _status(pas: PasServer, subscription_id: str, version: str = "2.0.1") -> str:
    with pas.client() as client:
        bundle = client.get(pas.url(version, f"Subscription/{subscription_id}/$status")).json()
    parameters = bundle["entry"][0]["resource"]["parameter"]
    return str(next(p["valueCode"] for p in parameters if p["name"] == "status"))


def _handshake_checks(listener: Listener, subscription_id: str) -> None:
    """PAS-S4: the handshake as the Inferno listener checks it."""
    (handshake,) = listener.of_kind("handshake")
    assert handshake.headers["Authorization"] == "Bearer notify-me"
    assert handshake.headers["Content-Type"].startswith("application/fhir+json")
    body = handshake.body
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    entry = body["entry"][0]
    assert entry["request"]["url"].endswith(f"Subscription/{subscription_id}/$status")
    assert all("request" in e and "response" in e for e in body["entry"])
    assert handshake.parameter("subscription")["valueReference"]["reference"].endswith(
        f"/{subscription_id}"
    )
    assert handshake.parameter("status")["valueCode"] == "requested"
    assert handshake.parameter("type")["valueCode"] == "handshake"


@pytest.mark.requirement("PAS", "spec-54")
@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_a_subscription_is_requested_then_handshaken_then_active(
    pas: PasServer, version: str
) -> None:
    with listen() as listener:
        created = _created(pas, subscription(version, listener.url), version)
        assert created["status"] == "requested"  # PAS-S3, even if the handshake is quick
        assert created["channel"]["type"] == "rest-hook"
        listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
        _handshake_checks(listener, created["id"])
        deadline = time.monotonic() + 5
        while _status(pas, created["id"], version) != "active":
            assert time.monotonic() < deadline, "the subscription never became active"
            time.sleep(0.05)
        time.sleep(0.3)
        assert [r.kind for r in listener.received] == ["handshake"]  # no heartbeat unasked
    with pas.client() as client:
        stored = client.get(f"/fhir/Subscription/{created['id']}").json()
    assert stored["status"] == "active"


def test_a_failed_handshake_puts_the_subscription_in_error(pas: PasServer) -> None:
    with listen() as listener:
        listener.status = 503
        created = _created(pas, subscription("2.0.1", listener.url))
        deadline = time.monotonic() + 10
        while _status(pas, created["id"]) != "error":
            assert time.monotonic() < deadline, "the subscription never went to error"
            time.sleep(0.05)


def test_heartbeats_are_sent_when_asked_for(pas: PasServer) -> None:
    with listen() as listener:
        resource = subscription("2.0.1", listener.url)
        resource["channel"]["extension"].append({"url": HEARTBEAT, "valueUnsignedInt": 1})
        _created(pas, resource)
        listener.wait_for(lambda seen: len(seen.of_kind("heartbeat")) >= 1, timeout=8)
        heartbeat = listener.of_kind("heartbeat")[0]
        assert heartbeat.parameter("status")["valueCode"] == "active"
        assert len(heartbeat.body["entry"]) == 1


def _other_topic(s: dict[str, Any]) -> None:
    s["criteria"] = "http://example.org/SubscriptionTopic/other"


def _websocket(s: dict[str, Any]) -> None:
    s["channel"]["type"] = "websocket"


def _ftp(s: dict[str, Any]) -> None:
    s["channel"]["endpoint"] = "ftp://127.0.0.1/x"


def _bad_header(s: dict[str, Any]) -> None:
    s["channel"]["header"] = ["no colon"]


def _id_only(s: dict[str, Any]) -> None:
    s["channel"]["_payload"]["extension"][0]["valueCode"] = "id-only"


@pytest.mark.requirement("PAS", "spec-56")
@pytest.mark.requirement("PAS", "spec-62")
@pytest.mark.parametrize(
    ("version", "change", "expression"),
    [
        ("2.0.1", _other_topic, "Subscription.criteria"),
        ("2.0.1", _websocket, "Subscription.channel.type"),
        ("2.0.1", _ftp, "Subscription.channel.endpoint"),
        ("2.0.1", _bad_header, "Subscription.channel.header[0]"),
        ("2.2.1", _id_only, "Subscription.channel._payload.extension"),
    ],
)
def test_unsupported_subscriptions_are_refused(
    pas: PasServer, version: str, change: Any, expression: str
) -> None:
    resource = subscription(version, "http://127.0.0.1:9/listener")
    change(resource)
    response = pas.subscribe(resource, version)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [expression]


def test_both_filter_spellings_are_read() -> None:
    from app.pas.subscriptions import org_filters

    kit_221 = kit("2.2.1", "subscription_resource")
    assert org_filters(kit_221) == ("8189991234",)
    kit_221["_criteria"]["extension"][0]["valueString"] = "orgIdentifier=8189991234,PI-UMO"
    assert org_filters(kit_221) == ("8189991234", "PI-UMO")
    assert org_filters(kit("2.0.1", "subscription_resource")) == ()  # Encounter.patient=...


def test_the_kit_subscriptions_conform_to_their_profiles() -> None:
    assert_conforms(
        kit("2.2.1", "subscription_resource"),
        PAS + "profile-subscription",
        ig="hl7.fhir.us.davinci-pas#2.2.1",
    )


def test_a_subscription_can_be_deleted(pas: PasServer) -> None:
    with listen() as listener:
        created = _created(pas, subscription("2.0.1", listener.url))
        with pas.client() as client:
            assert client.delete(f"/fhir/Subscription/{created['id']}").status_code == 204
            assert client.get(f"/fhir/Subscription/{created['id']}").status_code == 410
            status = client.get(f"/fhir/Subscription/{created['id']}/$status")
        assert status.status_code == 404
