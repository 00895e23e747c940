"""CRD server requirements about the Coverage Information response, proven over real HTTP: it is
returned on every hook that can carry it, for every in-scope resource (hook-26/33/39, resp-26/
28/29/48), never asks for documentation on supporting hooks (hook-19), is not re-sent when
nothing is new (resp-35), changes nothing but coverage-information (resp-37), keeps other
coverages' answers apart (resp-32), codes administrative answers (resp-44/45), carries its
qualifiers (resp-30), fits the CRD 2.2 response model (resp-52) and uses CRD's own elements
only (conf-13).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from app.registry import REGISTRY
from app.rules.topic import CRD_TEMP
from app.store.db import create_database
from app.store.repository import ResourceStore
from tests.crd.conftest import ONLY_THE_EHR_IS_MOCKED, CrdServer
from tests.crd.hook_requests import CPT, HOOK_FIXTURES, inferno_bodies, order_sign
from tests.crd.requirement_helpers import (
    ADALIMUMAB,
    CANCELLED_MEMBER,
    GOLD_CARD_NPI,
    GOLD_MEMBER,
    HOME_OXYGEN,
    LUMBAR_MRI,
    OFFICE_VISIT,
    SILVER_MEMBER,
    as_order_select,
    call,
    coverage_by_order,
    fresh,
    multi_order_sign,
    order_refs,
)
from tests.crd.response_models import ADDITIONAL_ORDER_TYPES
from tests.support import crd_checks
from tests.support.conformance import validate
from tests.support.mock_ehr import ehr_resources

SIGN, SELECT = "order-sign-crd", "order-select-crd"
CRD_201 = "hl7.fhir.us.davinci-crd#2.0.1"
COVERAGE_INFO = crd_checks.COVERAGE_INFO_URL
ALL_ORDERS = [LUMBAR_MRI, HOME_OXYGEN, ADALIMUMAB, OFFICE_VISIT]
#: coverage-information sub-extensions CRD defines: 2.0.1's (from its package) and 2.2's one
#: addition Greenlight sends to 2.2 callers
CRD_SUB_EXTENSIONS = frozenset(s.url for s in crd_checks.coverage_information_slices()) | {
    "expiry-date"
}


def _profile_errors(resource: Mapping[str, Any], profile: str | None) -> list[str]:
    """CRD 2.0.1 profile errors, less the IG's own known Appointment bug (INFERNO-KITS §2)."""
    return [
        f"{', '.join(i.expression)}: {i.diagnostics}"
        for i in validate(dict(resource), profile, ig=CRD_201).errors
        if not (
            resource.get("resourceType") == "Appointment"
            and "ext-coverage-information is not allowed" in i.diagnostics
        )
    ]


def _order_sign_errors(body: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
    """What is wrong with the coverage-information of an order-sign answer (CRD 2.0.1 profile
    and invariants)."""
    return crd_checks.check_coverage_information(
        "order-sign",
        body,
        response["systemActions"],
        _profile_errors,
        invariants=crd_checks.CRD_201_INVARIANTS,
    )


def _in_scope(hook: str, body: Mapping[str, Any]) -> set[str]:
    """`Type/id` of the resources a call asks advice on."""
    context = body["context"]
    if hook == "order-sign":
        return set(order_refs(body))
    if hook == "order-select":
        return set(context["selections"])
    if hook == "order-dispatch":
        return {context["order"]}
    if hook == "appointment-book":
        return {f"Appointment/{e['resource']['id']}" for e in context["appointments"]["entry"]}
    return {f"Encounter/{context['encounterId']}"}


def _exchanges(crd: CrdServer, hook: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    service, fixture = HOOK_FIXTURES[hook]
    return [(body, call(crd, service, body)) for body in inferno_bodies(fixture)]


@pytest.mark.requirement("CRD", "hook-26")
@pytest.mark.requirement("CRD", "hook-33")
@pytest.mark.requirement("CRD", "hook-39")
@pytest.mark.requirement("CRD", "resp-26")
@pytest.mark.requirement("CRD", "resp-28")
@pytest.mark.requirement("CRD", "resp-29")
@pytest.mark.requirement("CRD", "resp-48")
@pytest.mark.requirement("CRD", "resp-47")
@ONLY_THE_EHR_IS_MOCKED
def test_every_invocation_of_every_hook_gets_coverage_information(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """Each of the kit's calls of each hook (appointment-book, order-dispatch, order-select
    included) gets one `update` system action per resource in scope, carrying coverage
    information the EHR can store without user intervention, the order or appointment
    conforming to its CRD profile (resp-47; CRD 2.0.1 profiles, as the kit validates); so does
    every demo order of a multi-order order-sign and order-select; and none when the caller
    configures it off."""
    for hook in HOOK_FIXTURES:
        for body, response in _exchanges(crd, hook):
            found = coverage_by_order(response)
            assert set(found) == _in_scope(hook, body), (hook, response)
            assert all(len(parts) == 1 for parts in found.values())
            actions = response["systemActions"]
            assert len(actions) == len(found) and {a["type"] for a in actions} == {"update"}
            assert (
                crd_checks.check_coverage_information(
                    hook, body, actions, _profile_errors, invariants=crd_checks.CRD_201_INVARIANTS
                )
                == []
            )
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS)
    for service, request in ((SIGN, body), (SELECT, as_order_select(body, order_refs(body)[1:]))):
        response = call(crd, service, request)
        assert set(coverage_by_order(response)) == set(
            request["context"].get("selections") or order_refs(body)
        )
    off = fresh(body)
    off["extension"] = {"davinci-crd.configuration": {"coverage-info": False}}
    assert coverage_by_order(call(crd, SIGN, off)) == {}


@pytest.mark.requirement("CRD", "hook-19")
@ONLY_THE_EHR_IS_MOCKED
def test_supporting_hooks_never_ask_for_documentation(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """The orders that need documentation at order-sign (lumbar MRI, home oxygen, adalimumab)
    get coverage information at order-select without doc-needed, doc-purpose or questionnaire,
    and no documentation form is offered; likewise the encounter hooks."""
    body = multi_order_sign(GOLD_MEMBER, [LUMBAR_MRI, HOME_OXYGEN, ADALIMUMAB])
    signed = coverage_by_order(call(crd, SIGN, body))
    assert all(parts[0].get("doc-needed") for parts in signed.values())
    selected = call(crd, SELECT, as_order_select(body))
    infos = coverage_by_order(selected)
    assert set(infos) == set(signed)
    documentation = {"doc-needed", "doc-purpose", "questionnaire"}
    for parts in infos.values():
        assert not documentation & set(parts[0]), parts
    assert not [
        c for c in selected["cards"] for link in c.get("links", []) if link["type"] == "smart"
    ]
    for hook in ("encounter-start", "encounter-discharge"):
        for _, response in _exchanges(crd, hook):
            for parts in coverage_by_order(response).values():
                assert not documentation & set(parts[0])


@pytest.mark.requirement("CRD", "resp-35")
@pytest.mark.parametrize("service", [SIGN, SELECT])
def test_an_order_already_annotated_with_the_same_answer_gets_no_update(
    crd: CrdServer, service: str
) -> None:
    """Resending the orders as the EHR stored them (the updates applied) brings no system
    action for them; a changed order among them gets its update."""
    body = multi_order_sign(SILVER_MEMBER, [LUMBAR_MRI, OFFICE_VISIT])
    request = body if service == SIGN else as_order_select(body)
    first = call(crd, service, request)
    stored = {
        f"{a['resource']['resourceType']}/{a['resource']['id']}": a["resource"]
        for a in first["systemActions"]
    }
    assert len(stored) == 2
    again = fresh(request)
    for entry in again["context"]["draftOrders"]["entry"]:
        resource = entry["resource"]
        entry["resource"] = stored[f"{resource['resourceType']}/{resource['id']}"]
    assert call(crd, service, again).get("systemActions", []) == []
    changed = fresh(again)
    visit = changed["context"]["draftOrders"]["entry"][1]["resource"]
    visit["code"] = {"coding": [{"system": CPT, "code": "72149"}]}
    updated = call(crd, service, changed)["systemActions"]
    refs = [f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in updated]
    assert f"ServiceRequest/{visit['id']}" in refs


def _without_coverage_information(resource: Mapping[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(dict(resource))
    kept = [e for e in stripped.get("extension") or [] if e.get("url") != COVERAGE_INFO]
    stripped.pop("extension", None)
    if kept:
        stripped["extension"] = kept
    return stripped


@pytest.mark.requirement("CRD", "resp-37")
@ONLY_THE_EHR_IS_MOCKED
def test_updates_change_nothing_but_coverage_information(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """Every updated resource, less its coverage-information, is the resource as the EHR sent
    it: the kit's calls of every hook, and demo orders carrying their own extensions, notes and
    an earlier answer of ours."""
    sent: dict[str, dict[str, Any]] = {}
    exchanges = [pair for hook in HOOK_FIXTURES for pair in _exchanges(crd, hook)]
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS, orderer_npi=GOLD_CARD_NPI)
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["note"] = [{"text": "keep me"}]
        entry["resource"]["extension"] = [
            {"url": "https://ehr.example.org/fhir/StructureDefinition/x", "valueString": "mine"}
        ]
    first = call(crd, SIGN, body)
    exchanges.append((body, first))
    reordered = fresh(body)
    for entry, action in zip(
        reordered["context"]["draftOrders"]["entry"], first["systemActions"], strict=True
    ):
        entry["resource"] = copy.deepcopy(action["resource"])  # carries our earlier answer
        entry["resource"]["status"] = "active"
    reordered["extension"] = {"davinci-crd.requestedVersion": "2.2"}  # a changed rendering
    exchanges.append((reordered, call(crd, SIGN, reordered)))
    for request, response in exchanges:
        context = request["context"]
        for key in ("draftOrders", "appointments"):
            for entry in (context.get(key) or {}).get("entry") or []:
                resource = entry["resource"]
                sent[f"{resource['resourceType']}/{resource['id']}"] = resource
        if "order" in context:
            order = request["prefetch"]["order"]
            sent[context["order"]] = order
        for action in response.get("systemActions") or []:
            resource = action["resource"]
            ref = f"{resource['resourceType']}/{resource['id']}"
            if ref.startswith("Encounter/"):
                original = request["prefetch"].get("encounter") or ehr_resources()[ref]
            else:
                original = sent[ref]
            assert _without_coverage_information(resource) == _without_coverage_information(
                original
            ), ref
            theirs = [e for e in resource.get("extension") or [] if e.get("url") != COVERAGE_INFO]
            assert theirs == [
                e for e in original.get("extension") or [] if e.get("url") != COVERAGE_INFO
            ]


def _other_payers_answer(order_ref: str) -> dict[str, Any]:
    return {
        "url": COVERAGE_INFO,
        "extension": [
            {"url": "coverage", "valueReference": {"reference": "Coverage/secondary-cov"}},
            {"url": "covered", "valueCode": "covered"},
            {"url": "pa-needed", "valueCode": "no-auth"},
            {"url": "date", "valueDate": "2026-01-05"},
            {"url": "coverage-assertion-id", "valueString": f"secondary-{order_ref}"},
        ],
    }


@pytest.mark.requirement("CRD", "resp-32")
def test_answers_for_other_coverages_stay_apart_with_their_own_ids(crd: CrdServer) -> None:
    """Orders already annotated by another payer (another Coverage) come back with both
    repetitions: the other one untouched, ours beside it, with distinct coverage-assertion-ids;
    a second call replaces our repetition instead of adding one."""
    body = multi_order_sign(SILVER_MEMBER, [LUMBAR_MRI, OFFICE_VISIT])
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["extension"] = [_other_payers_answer(entry["resource"]["id"])]
    response = call(crd, SIGN, body)
    errors = _order_sign_errors(body, response)
    assert errors == []
    ours_by_order = {}
    for action in response["systemActions"]:
        infos = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
        assert len(infos) == 2
        assert infos[0] == _other_payers_answer(action["resource"]["id"])
        ids = [
            next(p["valueString"] for p in e["extension"] if p["url"] == "coverage-assertion-id")
            for e in infos
        ]
        coverages = [
            next(p["valueReference"]["reference"] for p in e["extension"] if p["url"] == "coverage")
            for e in infos
        ]
        assert len(set(ids)) == 2 and len(set(coverages)) == 2
        ours_by_order[action["resource"]["id"]] = ids[1]
    again = fresh(body)
    again["extension"] = {"davinci-crd.requestedVersion": "2.2"}  # rendered anew
    for entry, action in zip(
        again["context"]["draftOrders"]["entry"], response["systemActions"], strict=True
    ):
        entry["resource"] = action["resource"]
    for action in call(crd, SIGN, again)["systemActions"]:
        infos = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
        assert len(infos) == 2 and infos[0] == _other_payers_answer(action["resource"]["id"])


def _reason_codes(parts: Mapping[str, list[Any]]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for r in parts.get("reason", []) for c in r.get("coding", [])]


def _store(database_url: str, resource: dict[str, Any]) -> None:
    """Add a resource to the payer's database (from this test process)."""

    async def write() -> None:
        database = create_database(database_url, pool_size=1)
        try:
            async with ResourceStore(database, REGISTRY).transaction() as tx:
                await tx.create(resource)
        finally:
            await database.dispose()

    asyncio.run(write())


@pytest.mark.requirement("CRD", "resp-44")
@pytest.mark.requirement("CRD", "resp-45")
def test_administrative_answers_say_why_with_the_crd_reason_codes(crd: CrdServer) -> None:
    """Not-covered answers say why with CRD's reason codes (for callers of CRD 2.2, whose code
    system has them): no such member `no-member-found`; a member whose coverage is not active
    `no-active-coverage`; a member with several coverages matching the ids
    `coverage-not-found`. CRD 2.0.1 callers get the same reasons as text, valid for 2.0.1."""
    from app.demo.payer import MEMBERS

    twin = next(m for m in MEMBERS if m.member_id_value == "PFP123450000")
    second = twin.coverage_resource()
    second.pop("id", None)
    second["period"] = {"start": "2025-01-01"}
    _store(crd.server.settings.database_url, second)
    cases = [
        ("NOBODY-0044", "no-member-found"),
        (CANCELLED_MEMBER, "no-active-coverage"),
        (twin.member_id_value, "coverage-not-found"),
    ]
    twin_patient = {k: v for k, v in twin.patient.items() if k in ("name", "gender", "birthDate")}
    for member, code in cases:
        for version in ("2.2", "2.0"):
            body = order_sign(member, "99213")
            if member == twin.member_id_value:  # the EHR's patient is that member
                body["prefetch"]["patient"] = {
                    "resourceType": "Patient",
                    "id": "ehr-twin",
                    **copy.deepcopy(twin_patient),
                }
            body["extension"] = {"davinci-crd.requestedVersion": version}
            response = call(crd, SIGN, body)
            (parts,) = coverage_by_order(response)["ServiceRequest/servreq-g0180-1"]
            assert parts["covered"] == ["not-covered"], (member, parts)
            assert parts["reason"][0]["text"]
            if version == "2.2":
                assert _reason_codes(parts) == [(CRD_TEMP, code)], (member, parts)
                assert "pa-needed" not in parts
            else:
                assert _reason_codes(parts) == []
                errors = _order_sign_errors(body, response)
                assert errors == []


@pytest.mark.requirement("CRD", "resp-30")
def test_the_answer_carries_the_conditions_it_holds_under(crd: CrdServer) -> None:
    """An answer holds for a billing code, for an orderer and for a time: the annotation names
    the billing code it was given for, the gold-carded orderer it depends on (reason
    `gold-card`) and, for CRD 2.2 callers, the date it expires."""
    body = order_sign(GOLD_MEMBER, "72148", orderer_npi=GOLD_CARD_NPI)
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    (parts,) = coverage_by_order(call(crd, SIGN, body))["ServiceRequest/servreq-g0180-1"]
    assert parts["billingCode"] == [{"system": CPT, "code": "72148"}]
    assert (CRD_TEMP, "gold-card") in _reason_codes(parts) and parts["pa-needed"] == ["no-auth"]
    (expiry,) = parts["expiry-date"]
    assert date.fromisoformat(expiry) > datetime.now(UTC).date()
    ordinary = order_sign(GOLD_MEMBER, "72148")
    (other,) = coverage_by_order(call(crd, SIGN, ordinary))["ServiceRequest/servreq-g0180-1"]
    assert other["pa-needed"] == ["auth-needed"] and "gold-card" not in str(other.get("reason"))


@pytest.mark.requirement("CRD", "resp-52")
@pytest.mark.requirement("CRD", "conf-13")
@ONLY_THE_EHR_IS_MOCKED
def test_coverage_information_fits_the_crd_model_with_crd_elements(
    crd: CrdServer, inferno_ehr: HTTPXMock
) -> None:
    """CRDHooksResponse-coverageInformation (CRD 2.2.1): at least one system action, each an
    `update` with a resource (no `resourceId`) carrying ext-coverage-information (crd-respci1).
    The answer is said with CRD's own elements: the ext-coverage-information sub-extensions CRD
    defines, and no extension of Greenlight's own anywhere in the updated resources."""
    exchanges = [pair for hook in HOOK_FIXTURES for pair in _exchanges(crd, hook)]
    for version in ("2.0", "2.2"):
        body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS)
        body["extension"] = {"davinci-crd.requestedVersion": version}
        exchanges.append((body, call(crd, SIGN, body)))
    for request, response in exchanges:
        actions = response["systemActions"]
        assert actions
        sent_urls = {
            e.get("url")
            for key in ("draftOrders", "appointments")
            for entry in (request["context"].get(key) or {}).get("entry") or []
            for e in entry["resource"].get("extension") or []
        }
        for action in actions:
            assert action["type"] == "update" and "resourceId" not in action
            resource = action["resource"]
            assert resource["resourceType"] in ADDITIONAL_ORDER_TYPES | {"Encounter"}
            infos = [e for e in resource.get("extension") or [] if e["url"] == COVERAGE_INFO]
            assert infos
            others = {e["url"] for e in resource.get("extension") or []} - {COVERAGE_INFO}
            assert others <= sent_urls
            for info in infos:
                assert {p["url"] for p in info["extension"]} <= CRD_SUB_EXTENSIONS
