"""PAS 2.2.1 Subscriptions as the payer takes them: the PAS Subscription profile (spec-57) and the
`org-identifier` filter naming the sending system (spec-58), over real HTTP with real listeners.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest

from app.pas.variants import variant
from tests.pas.conftest import IG, PAS, PAS_KIT, PasServer, kit, review_actions, subscription
from tests.pas.listener import Listener, listen
from tests.support.conformance import assert_conforms

VERSION = "2.2.1"
PROFILE = PAS + "profile-subscription"
FILTER = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
)
SENDER = "8189991234"  # the kit's sending system (ISA06 / submitter identifier)


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((PAS_KIT / "spec" / "fixtures" / name).read_bytes())
    return loaded


def _pointed_at(resource: dict[str, Any], listener: Listener) -> dict[str, Any]:
    """A Subscription with its channel aimed at `listener`, as Inferno rewrites it."""
    changed = copy.deepcopy(resource)
    changed.pop("id", None)
    changed["channel"]["endpoint"] = listener.url
    changed["channel"]["payload"] = "application/fhir+json"
    changed["channel"]["header"] = ["Authorization: Bearer notify-me"]
    return changed


@contextmanager
def _subscribed(pas: PasServer, resource: dict[str, Any]) -> Iterator[str]:
    response = pas.subscribe(resource, VERSION)
    assert response.status_code == 201, response.text
    subscription_id = str(response.json()["id"])
    try:
        yield subscription_id
    finally:
        with pas.client() as client:
            client.delete(pas.url(VERSION, f"Subscription/{subscription_id}"))


def _refused(pas: PasServer, resource: dict[str, Any]) -> list[str]:
    response = pas.subscribe(resource, VERSION)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    expression: list[str] = outcome["issue"][0]["expression"]
    return expression


def _with_filter(resource: dict[str, Any], criteria: list[str] | None) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    if criteria is None:
        changed.pop("_criteria", None)
    else:
        changed["_criteria"] = {"extension": [{"url": FILTER, "valueString": c} for c in criteria]}
    return changed


# --- spec-57: the PAS Subscription profile ---------------------------------------------------


def _other_topic(s: dict[str, Any]) -> None:
    s["criteria"] = _fixture("PAS_Subscription_example_bad_topic_and_criteria.json")["criteria"]


def _email(s: dict[str, Any]) -> None:
    s["channel"]["type"] = "email"


def _no_endpoint(s: dict[str, Any]) -> None:
    del s["channel"]["endpoint"]


def _id_only(s: dict[str, Any]) -> None:
    s["channel"]["_payload"]["extension"][0]["valueCode"] = "id-only"


@pytest.mark.requirement("PAS", "spec-57")
@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (_other_topic, "Subscription.criteria"),
        (_email, "Subscription.channel.type"),
        (_no_endpoint, "Subscription.channel.endpoint"),
        (_id_only, "Subscription.channel._payload.extension"),
    ],
)
def test_a_subscription_conforms_to_the_pas_subscription_profile(
    pas: PasServer, change: Callable[[dict[str, Any]], None], expression: str
) -> None:
    """The kit's conformant PAS Subscription is created and kept conformant; one breaking a rule
    of the profile (criteria pattern, rest-hook, endpoint 1..1, full-resource content) is
    refused naming the element, and so is the kit's non-conformant example."""
    good = _fixture("PAS_Subscription_example_v221_good.json")
    assert_conforms(good, PROFILE, ig=IG[VERSION])
    with listen() as listener:
        with _subscribed(pas, _pointed_at(good, listener)) as subscription_id:
            listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
            with pas.client() as client:
                stored = client.get(pas.url(VERSION, f"Subscription/{subscription_id}")).json()
            assert_conforms(stored, PROFILE, ig=IG[VERSION])
        broken = _pointed_at(good, listener)
        change(broken)
        assert _refused(pas, broken) == [expression]
    bad = _fixture("PAS_Subscription_example_v221_bad.json")
    assert _refused(pas, bad)[0].startswith("Subscription.")


# --- spec-58: org-identifier = the sending system -------------------------------------------------


@pytest.mark.requirement("PAS", "spec-58")
@pytest.mark.parametrize(
    ("criteria", "expression"),
    [
        (None, "Subscription._criteria.extension"),
        (["identifier=8189991234"], "Subscription._criteria.extension[0]"),  # the kit's bad one
        (["Encounter.patient=Patient/SubscriberExample"], "Subscription._criteria.extension[0]"),
        ([f"org-identifier={SENDER}", "org-identifier="], "Subscription._criteria.extension[1]"),
    ],
)
def test_the_filter_criteria_name_the_sending_system(
    pas: PasServer, criteria: list[str] | None, expression: str
) -> None:
    resource = _with_filter(subscription(VERSION, "http://127.0.0.1:9/listener"), criteria)
    assert _refused(pas, resource) == [expression]


def _events(listener: Listener) -> list[Any]:
    return listener.of_kind("event-notification")


@pytest.mark.requirement("PAS", "spec-58")
def test_a_subscription_hears_about_its_sending_systems_requests_only(pas: PasServer) -> None:
    """Two subscriptions of the same client: one filtered on the kit's sending system (both
    spellings, several ids), one on another system. Only the first is notified of the decision
    on a request that system sent."""
    with listen() as mine, listen() as other:
        ours = _with_filter(subscription(VERSION, mine.url), [f"orgIdentifier=OTHER-1,{SENDER}"])
        theirs = _with_filter(subscription(VERSION, other.url), ["org-identifier=0000000000"])
        with _subscribed(pas, ours), _subscribed(pas, theirs):
            for listener in (mine, other):
                listener.wait_for(lambda seen: len(seen.of_kind("handshake")) == 1)
            response = pas.submit(
                variant("pend", kit(VERSION, "approval_pa_submit_request_payload")), VERSION
            )
            assert response.status_code == 200, response.text
            pended = response.json()
            assert review_actions(pended)[0] == "A4"
            decided = pas.decide(pas.case_of(pended)["id"], {"decision": "approve"})
            assert decided.status_code == 200, decided.text
            assert decided.json()["notifications"] == 1
            mine.wait_for(lambda seen: len(_events(seen)) == 1)
            time.sleep(0.6)  # several outbox polls: nothing for the other system
            assert _events(other) == []
    (event,) = _events(mine)
    bundle = next(e["resource"] for e in event.body["entry"][1:] if e.get("resource"))
    assert bundle["entry"][0]["resource"]["id"] == pended["entry"][0]["resource"]["id"]
