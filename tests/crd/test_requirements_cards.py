"""CRD server requirements about cards, proven over real HTTP on the demo payer's answers and the
Inferno kit's calls: the CRD response models (resp-13/22/24/58), the insurer's name as source
(resp-4), External Reference links (resp-17/18/19), no portal detours (resp-17/23), profiled
resources in suggestions (resp-55/57), DTR rather than Form Completion (resp-59), cards naming
the orders they are about (dev-24), and mustSupport elements filled in (conf-5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from app.demo.payer import MEMBERS, PAYER_NAME
from app.rules.engine import DEFAULT_POLICY_URL
from app.rules.loader import load_topics
from tests.crd.conftest import DTR_APP_URL, ONLY_THE_EHR_IS_MOCKED, CrdServer
from tests.crd.hook_requests import HOOK_FIXTURES, inferno_bodies, order_sign
from tests.crd.must_support import crd_profiles
from tests.crd.requirement_helpers import (
    ADALIMUMAB,
    CANCELLED_MEMBER,
    GOLD_CARD_NPI,
    GOLD_MEMBER,
    HOME_OXYGEN,
    LUMBAR_MRI,
    OFFICE_VISIT,
    SILVER_MEMBER,
    call,
    coverage_by_order,
    multi_order_sign,
    order_refs,
)
from tests.crd.response_models import (
    additional_orders_errors,
    base_errors,
    external_reference_errors,
    instructions_errors,
)
from tests.support import crd_checks
from tests.support.conformance import validate

SIGN = "order-sign-crd"
CRD_201 = "hl7.fhir.us.davinci-crd#2.0.1"
PROJECT_TOPICS = Path(__file__).resolve().parents[2] / "questionnaires"  # the payer's topics


def _profile_errors(resource: Mapping[str, Any], profile: str | None) -> list[str]:
    return [
        f"{', '.join(i.expression)}: {i.diagnostics}"
        for i in validate(dict(resource), profile, ig=CRD_201).errors
    ]


def _demo_exchanges(crd: CrdServer) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(hook, request, response) of demo calls between them returning every card type Greenlight
    has: instructions, policy links, DTR launch, site of care, companion orders, coverage record
    updates, and no-member warnings."""
    calls = [
        multi_order_sign(
            GOLD_MEMBER, [LUMBAR_MRI, HOME_OXYGEN, OFFICE_VISIT], place_of_service="22"
        ),
        multi_order_sign(SILVER_MEMBER, [ADALIMUMAB, LUMBAR_MRI, OFFICE_VISIT]),
        order_sign(GOLD_MEMBER, "72148", orderer_npi=GOLD_CARD_NPI),
        order_sign("NOBODY-0004", "72148"),
        order_sign(CANCELLED_MEMBER, "99213"),
    ]
    return [("order-sign", body, call(crd, SIGN, body)) for body in calls]


def _kit_exchanges(crd: CrdServer) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for hook, (service, fixture) in HOOK_FIXTURES.items():
        found.extend((hook, body, call(crd, service, body)) for body in inferno_bodies(fixture))
    return found


def _cards(exchanges: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    return [card for _, _, response in exchanges for card in response["cards"]]


@pytest.mark.requirement("CRD", "resp-13")
@ONLY_THE_EHR_IS_MOCKED
def test_every_response_fits_the_crd_response_base_model(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    exchanges = _demo_exchanges(crd) + _kit_exchanges(crd)
    kinds = set()
    for hook, request, response in exchanges:
        assert crd_checks.check_hook_response(hook, request, response) == []
        assert base_errors(response) == []
        kinds |= {card["source"]["topic"]["code"] for card in response["cards"]}
    assert kinds == {"coverage-info", "network", "clinical-reminder", "insurance"}


@pytest.mark.requirement("CRD", "resp-4")
@ONLY_THE_EHR_IS_MOCKED
def test_every_card_names_the_insurer_on_the_member_card(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """`source.label` is the plan's name as the member's card (and the payer's own Coverage,
    `payor.display`) shows it, on every card of every kind."""
    on_member_cards = {m.coverage_resource()["payor"][0]["display"] for m in MEMBERS}
    assert on_member_cards == {PAYER_NAME}
    cards = _cards(_demo_exchanges(crd) + _kit_exchanges(crd))
    assert len({card["source"]["topic"]["code"] for card in cards}) == 4
    assert {card["source"]["label"] for card in cards} == {PAYER_NAME}


def _policy_urls() -> set[str]:
    topics = load_topics(PROJECT_TOPICS)
    urls = {str(t.topic.policy.url) for t in topics.topics.values() if t.topic.policy}
    return urls | {DEFAULT_POLICY_URL}


@pytest.mark.requirement("CRD", "resp-17")
@pytest.mark.requirement("CRD", "resp-18")
@pytest.mark.requirement("CRD", "resp-19")
@pytest.mark.requirement("CRD", "resp-22")
@ONLY_THE_EHR_IS_MOCKED
def test_external_reference_cards_link_the_payers_policy_documents(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """Every External Reference card (a card whose links are all `absolute`) fits the CRD 2.2.1
    model: at least one link, `absolute`, no suggestions; and what it links is the payer's
    coverage policy for the order (the topic's published policy, or the payer's prior
    authorization list), never a portal to request authorization or check coverage."""
    cards = _cards(_demo_exchanges(crd) + _kit_exchanges(crd))
    external = [
        card
        for card in cards
        if card.get("links") and all(link["type"] == "absolute" for link in card["links"])
    ]
    assert external
    policies = _policy_urls()
    for card in external:
        assert external_reference_errors(card) == [], card
        for link in card["links"]:
            assert link["url"] in policies, link
            assert "portal" not in (link["url"] + link["label"] + card["summary"]).lower()
    # and every absolute link anywhere is on such a card
    absolute = [c for c in cards if any(link["type"] == "absolute" for link in c.get("links", []))]
    assert absolute == external


@pytest.mark.requirement("CRD", "resp-23")
@pytest.mark.requirement("CRD", "resp-24")
@ONLY_THE_EHR_IS_MOCKED
def test_instructions_cards_fit_the_model_and_send_nobody_to_a_portal(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """Instructions cards (no links, no suggestions) have a detail, fit the CRD 2.2.1 model,
    and neither name nor link a portal: their text states the answer and what to document."""
    cards = _cards(_demo_exchanges(crd) + _kit_exchanges(crd))
    instructions = [c for c in cards if not c.get("links") and not c.get("suggestions")]
    assert len(instructions) >= 5
    for card in instructions:
        assert instructions_errors(card) == [], card
        text = f"{card['summary']} {card['detail']}".lower()
        assert "portal" not in text and "http" not in text, card


@pytest.mark.requirement("CRD", "resp-57")
@pytest.mark.requirement("CRD", "resp-58")
def test_additional_orders_cards_propose_profiled_orders(crd: CrdServer) -> None:
    """The companion order (latent TB screening before adalimumab) fits the CRD 2.2.1 Additional
    Orders model and the proposed ServiceRequest conforms to CRD profile-servicerequest."""
    body = multi_order_sign(SILVER_MEMBER, [ADALIMUMAB, OFFICE_VISIT])
    response = call(crd, SIGN, body)
    companions = crd_checks.classify_cards(response, "order-sign")["additional_orders"]
    assert len(companions) == 1
    for card in companions:
        assert additional_orders_errors(card) == []
        for suggestion in card["suggestions"]:
            for action in suggestion["actions"]:
                resource = action["resource"]
                profile = crd_checks.PROFILE_BY_TYPE[resource["resourceType"]]
                assert _profile_errors(resource, profile) == []
    assert crd_checks.check_additional_orders(companions, _profile_errors) == []


@pytest.mark.requirement("CRD", "resp-55")
def test_alternate_request_cards_propose_profiled_orders(crd: CrdServer) -> None:
    """The site-of-care proposal (the MRI at the in-network imaging center instead of the
    hospital) is the same order, still conforming to CRD profile-servicerequest, as the kit's
    Propose Alternate Request test validates it."""
    body = multi_order_sign(GOLD_MEMBER, [LUMBAR_MRI, OFFICE_VISIT], place_of_service="22")
    response = call(crd, SIGN, body)
    alternates = crd_checks.classify_cards(response, "order-sign")["propose_alternate_request"]
    assert len(alternates) == 1
    for card in alternates:
        for suggestion in card["suggestions"]:
            for action in suggestion["actions"]:
                resource = action["resource"]
                assert resource["resourceType"] in crd_checks.PROPOSE_ALTERNATE_TYPES
                profile = crd_checks.PROFILE_BY_TYPE[resource["resourceType"]]
                assert _profile_errors(resource, profile) == []
    assert crd_checks.check_propose_alternate_request([body], alternates, _profile_errors) == []


@pytest.mark.requirement("CRD", "resp-59")
def test_documentation_goes_through_dtr_never_a_form_completion(crd: CrdServer) -> None:
    """Where documentation is needed (the form relates to prior authorization or the claim) and
    DTR is available, the answer names the DTR Questionnaire and offers the DTR app; no Request
    Form Completion card or Task system action is ever sent."""
    body = multi_order_sign(GOLD_MEMBER, [LUMBAR_MRI, HOME_OXYGEN, ADALIMUMAB])
    response = call(crd, SIGN, body)
    classified = crd_checks.classify_cards(response, "order-sign")
    assert classified["request_form_completion"] == []
    assert classified["request_form_completion_actions"] == []
    forms = [
        action
        for card in response["cards"]
        for suggestion in card.get("suggestions") or []
        for action in suggestion.get("actions") or []
        if (action.get("resource") or {}).get("resourceType") in ("Task", "Questionnaire")
    ]
    forms += [
        action
        for action in response["systemActions"]
        if action["resource"]["resourceType"] in ("Task", "Questionnaire")
    ]
    assert forms == []
    infos = coverage_by_order(response)
    launches = [c for c in classified["launch_smart_app"] if c["links"][0]["url"] == DTR_APP_URL]
    for ref, (parts,) in infos.items():
        assert parts.get("doc-needed") and parts.get("questionnaire"), ref
        purposes = set(parts.get("doc-purpose", []))
        assert purposes & {"withpa", "withclaim", "withorder", "retain-doc", "OTH"} or parts.get(
            "pa-needed"
        )
    launched = {json.loads(c["links"][0]["appContext"])["order"] for c in launches}
    assert launched == set(infos)


@pytest.mark.requirement("CRD", "dev-24")
def test_cards_about_some_of_the_orders_name_them(crd: CrdServer) -> None:
    """A call with four orders: every card about particular orders names, in `detail`, each
    order it is about (by what it orders and its id) and no other."""
    orders = [LUMBAR_MRI, HOME_OXYGEN, ADALIMUMAB, OFFICE_VISIT]
    body = multi_order_sign(GOLD_MEMBER, orders, place_of_service="22")
    body["extension"] = {"davinci-crd.configuration": {"max-cards": 50}}  # every card
    response = call(crd, SIGN, body)
    refs = order_refs(body)
    mri = refs[0]
    named: dict[str, set[str]] = {}
    for card in response["cards"]:
        kind = card["source"]["topic"]["code"]
        if kind == "insurance":  # about the patient's coverage, not an order
            continue
        mentioned = {ref for ref in refs if ref in card["detail"]}
        assert mentioned, card
        named.setdefault(card["summary"], set()).update(mentioned)
    # one card or more per order, and the site-of-care proposal names the MRI alone
    assert set().union(*named.values()) == set(refs)
    network = [c for c in response["cards"] if c["source"]["topic"]["code"] == "network"]
    assert [{r for r in refs if r in c["detail"]} for c in network] == [{mri}]
    launches = [c for c in response["cards"] if (c.get("links") or [{}])[0].get("type") == "smart"]
    for card in launches:
        (ref,) = {r for r in refs if r in card["detail"]}
        assert json.loads(card["links"][0]["appContext"])["order"] == ref


def _must_support(profile_url: str) -> set[str]:
    snapshot = crd_profiles()[profile_url]["snapshot"]["element"]
    root = snapshot[0]["path"]
    return {
        e["path"][len(root) + 1 :].removesuffix("[x]")
        for e in snapshot
        if e.get("mustSupport") and ":" not in e["id"] and e["path"].count(".") == 1
    }


@pytest.mark.requirement("CRD", "conf-5")
def test_must_support_elements_are_filled_in_where_the_payer_has_a_value(crd: CrdServer) -> None:
    """The Coverage a create card proposes carries every mustSupport element of CRD
    profile-coverage for which the payer's record has a value (the payer's internal references,
    policyHolder and its Organization id, excepted: they mean nothing to the EHR; the payer is
    named instead); and coverage-information carries every mustSupport sub-extension its
    decision has a value for."""
    linda = next(m for m in MEMBERS if m.member_id_value == "GLH50911562")
    body = order_sign("unused", "99213")
    patient = {k: v for k, v in linda.patient.items() if k in ("name", "gender", "birthDate")}
    body["context"]["patientId"] = "ehr-lmo-conf5"
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "ehr-lmo-conf5", **patient}
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/ehr-lmo-conf5"}
    response = call(crd, SIGN, body)
    (card,) = crd_checks.classify_cards(response, "order-sign")["create_update_coverage"]
    created = card["suggestions"][0]["actions"][0]["resource"]
    stored = linda.coverage_resource()
    must_support = _must_support(crd_checks.PROFILE_BY_TYPE["Coverage"])
    expected = {e for e in must_support if stored.get(e)} - {"policyHolder"}
    assert expected - set(created) == set(), expected - set(created)
    assert {
        "identifier",
        "subscriberId",
        "beneficiary",
        "relationship",
        "period",
        "payor",
        "class",
    } <= expected

    mri = order_sign(GOLD_MEMBER, "72148")
    (parts,) = coverage_by_order(call(crd, SIGN, mri))["ServiceRequest/servreq-g0180-1"]
    slices = {s.url for s in crd_checks.coverage_information_slices()}
    wanted = {
        "coverage",
        "covered",
        "pa-needed",
        "doc-needed",
        "doc-purpose",
        "billingCode",
        "reason",
        "questionnaire",
        "date",
        "coverage-assertion-id",
    }
    assert wanted <= slices and wanted <= set(parts), wanted - set(parts)
