"""CRD server requirements about what a hook call may carry or lack, proven over real HTTP:
unknown context elements and unexpected elements are ignored (hook-23, found-33), configuration
is optional, unknown options are ignored and odd ones are handled (dev-15/17/6), only mandatory
and mustSupport data is needed (conf-7/8/12, hook-22) while mustSupport data is used when sent
(conf-4), what can be answered is answered (found-34), and billing options are used when sent
but never needed (billopt-2/3).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from tests.crd.conftest import ONLY_THE_EHR_IS_MOCKED, CrdServer
from tests.crd.hook_requests import CPT, order_sign
from tests.crd.must_support import must_support_only
from tests.crd.requirement_helpers import (
    ADALIMUMAB,
    GOLD_CARD_NPI,
    GOLD_MEMBER,
    HOME_OXYGEN,
    LUMBAR_MRI,
    OFFICE_VISIT,
    SILVER_MEMBER,
    answers,
    as_order_select,
    call,
    card_view,
    coverage_by_order,
    discovery_services,
    fresh,
    multi_order_sign,
)
from tests.support import crd_checks
from tests.support.conformance import validate
from tests.support.mock_ehr import INFERNO_EHR_HOST

SIGN, SELECT = "order-sign-crd", "order-select-crd"
CRD_201 = "hl7.fhir.us.davinci-crd#2.0.1"
BILLING_OPTIONS = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options"
SNOMED = "http://snomed.info/sct"
ALL_ORDERS = [LUMBAR_MRI, HOME_OXYGEN, ADALIMUMAB, OFFICE_VISIT]


def _configured(body: dict[str, Any], configuration: Any) -> dict[str, Any]:
    configured = fresh(body)
    configured["extension"] = {"davinci-crd.configuration": configuration}
    return configured


@pytest.mark.requirement("CRD", "hook-23")
def test_unknown_context_elements_are_ignored(crd: CrdServer) -> None:
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS)
    for service, request in ((SIGN, body), (SELECT, as_order_select(body))):
        plain = call(crd, service, request)
        noisy = fresh(request)
        noisy["context"].update(
            {
                "dispatchedOrders": ["ServiceRequest/elsewhere"],
                "com.example.futureElement": {"nested": [1, {"deep": True}]},
                "priority": "stat",
            }
        )
        answered = call(crd, service, noisy)
        assert answers(answered) == answers(plain) != {}
        assert card_view(answered) == card_view(plain)


@pytest.mark.requirement("CRD", "found-33")
def test_unexpected_elements_are_ignored(crd: CrdServer) -> None:
    """Elements nobody asked for, in the request and in every resource it carries (valid FHIR
    elements no CRD profile mentions, unknown extensions), change nothing in the answer."""
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS, orderer_npi=GOLD_CARD_NPI)
    plain = call(crd, SIGN, body)
    noisy = fresh(body)
    noisy["x-vendor-trace"] = {"id": 7}
    noisy["extension"] = {**noisy.get("extension", {}), "com.example.unknown": [1, 2]}
    unknown = {
        "url": "https://ehr.example.org/fhir/StructureDefinition/internal",
        "valueString": "x",
    }
    for entry in noisy["context"]["draftOrders"]["entry"]:
        order = entry["resource"]
        order["extension"] = [unknown]
        order["note"] = [{"text": "Patient prefers mornings"}]
        order["meta"] = {"tag": [{"system": "https://ehr.example.org/tags", "code": "x"}]}
        order["text"] = {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
        }
    patient = noisy["prefetch"]["patient"]
    patient["maritalStatus"] = {"text": "Married"}
    patient["extension"] = [unknown]
    coverage = noisy["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["costToBeneficiary"] = [{"valueMoney": {"value": 20, "currency": "USD"}}]
    coverage["extension"] = [unknown]
    noisy["prefetch"]["user"]["gender"] = "female"
    answered = call(crd, SIGN, noisy)
    assert answers(answered) == answers(plain) != {}
    assert card_view(answered) == card_view(plain)


@pytest.mark.requirement("CRD", "dev-15")
def test_no_configuration_is_needed(crd: CrdServer) -> None:
    body = order_sign(GOLD_MEMBER, "72148")
    body.pop("extension", None)
    bare = call(crd, SIGN, body)
    (info,) = coverage_by_order(bare)["ServiceRequest/servreq-g0180-1"]
    assert info["pa-needed"] == ["auth-needed"]
    assert {card["source"]["topic"]["code"] for card in bare["cards"]} >= {"coverage-info"}
    for extension in ({}, {"davinci-crd.requestedVersion": "2.0"}):
        other = fresh(body)
        other["extension"] = extension
        assert answers(call(crd, SIGN, other)) == answers(bare)


@pytest.mark.requirement("CRD", "dev-17")
def test_unsupported_configuration_is_ignored(crd: CrdServer) -> None:
    """Options this server does not offer (card types it never returns, other servers' codes,
    the Inferno fixtures' own `alt-drug`/`dtr-clin`) leave the answer as the defaults give it."""
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS, place_of_service="22")
    body.pop("extension", None)
    plain = call(crd, SIGN, body)
    unsupported = {
        "unsolicited-determ": False,
        "limits": False,
        "cost": True,
        "alt-drug": True,
        "dtr-clin": False,
        "com.example.threshold": 3,
    }
    answered = call(crd, SIGN, _configured(body, unsupported))
    assert answers(answered) == answers(plain) != {}
    assert card_view(answered) == card_view(plain)


@pytest.mark.requirement("CRD", "dev-6")
@pytest.mark.parametrize(
    ("configuration", "expect_coverage_information", "max_cards"),
    [
        ({"coverage-info": False, "network": True, "clinical-reminder": True}, False, None),
        ({"coverage-info": False, "insurance": False, "max-cards": 50}, False, 0),
        ({"max-cards": -3}, True, 0),
        ({"max-cards": 0, "coverage-info": True}, True, 0),
        ({"coverage-info": "yes", "max-cards": "many", "network": None}, True, None),
        ({"max-cards": 1.5, "insurance": 1}, True, None),
        (["coverage-info"], True, None),
        ("coverage-info=false", True, None),
    ],
    ids=[
        "cards-of-coverage-info-without-it",
        "nothing-wanted-but-many-cards",
        "negative-card-limit",
        "no-cards-but-coverage-information",
        "wrong-types",
        "non-integer-and-non-boolean",
        "not-an-object",
        "a-string",
    ],
)
def test_odd_configuration_is_handled_gracefully(
    crd: CrdServer,
    configuration: Any,
    expect_coverage_information: bool,
    max_cards: int | None,
) -> None:
    """Nonsensical or ill-typed combinations answer 200 with a sensible response: contradictory
    wishes resolve to the stricter one, bad values fall back to the defaults."""
    body = order_sign(GOLD_MEMBER, "72148", place_of_service="22")
    response = crd.call(SIGN, _configured(body, configuration))
    assert response.status_code == 200, response.text
    payload = response.json()
    assert crd_checks.check_hook_response("order-sign", body, payload) == []
    infos = coverage_by_order(payload)
    assert bool(infos) is expect_coverage_information
    if expect_coverage_information:
        (info,) = infos["ServiceRequest/servreq-g0180-1"]
        assert info["pa-needed"] == ["auth-needed"]
    if max_cards is not None:
        assert len(payload["cards"]) <= max_cards
    if not expect_coverage_information:  # no cards about an answer that was not given
        topics = {card["source"]["topic"]["code"] for card in payload["cards"]}
        assert topics <= {"insurance"}


def _pruned_call(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with every resource it carries cut to its CRD profile's mandatory and
    mustSupport elements; no cut resource conforms less to its profile than before (the kit's
    Patient, which trips our validator's MR identifier slice check, does so both ways)."""
    pruned = fresh(body)
    resources: list[dict[str, Any]] = [
        e["resource"] for e in pruned["context"]["draftOrders"]["entry"]
    ]
    resources.append(pruned["prefetch"]["patient"])
    resources.append(pruned["prefetch"]["user"])
    resources.extend(e["resource"] for e in pruned["prefetch"]["coverage"]["entry"])
    removed = 0
    for resource in resources:
        profile = crd_checks.PROFILE_BY_TYPE[resource["resourceType"]]
        cut = must_support_only(resource, profile)
        removed += len(set(resource) - set(cut))
        before = {str(i.diagnostics) for i in validate(resource, profile, ig=CRD_201).errors}
        after = {str(i.diagnostics) for i in validate(cut, profile, ig=CRD_201).errors}
        assert after <= before, (resource["resourceType"], after - before)
        resource.clear()
        resource.update(cut)
    assert removed > 0  # the call really lost elements
    return pruned


@pytest.mark.requirement("CRD", "conf-7")
@pytest.mark.requirement("CRD", "conf-8")
@pytest.mark.requirement("CRD", "conf-12")
@pytest.mark.requirement("CRD", "hook-22")
@pytest.mark.parametrize(
    ("member", "orders", "options"),
    [
        (GOLD_MEMBER, [LUMBAR_MRI], {"orderer_npi": GOLD_CARD_NPI, "place_of_service": "22"}),
        (GOLD_MEMBER, [LUMBAR_MRI, OFFICE_VISIT], {"place_of_service": "22"}),
        (SILVER_MEMBER, [HOME_OXYGEN, ADALIMUMAB], {}),
        ("NOBODY-7", [LUMBAR_MRI], {}),
    ],
    ids=["gold-carded-mri", "mri-and-visit", "oxygen-and-drug", "unknown-member"],
)
def test_mandatory_and_must_support_data_is_enough(
    crd: CrdServer, member: str, orders: list[tuple[str, str, str]], options: dict[str, Any]
) -> None:
    """Every resource of the call cut down to its CRD profile's mandatory and mustSupport
    elements (still conforming: no non-profiled instance is needed) gets the same coverage
    information as the full call: nothing outside those elements is depended on, and their
    absence is no error. Every prefetch template asks only for CRD/US Core profiled types."""
    body = multi_order_sign(member, orders, **options)
    full = call(crd, SIGN, body)
    cut = call(crd, SIGN, _pruned_call(body))
    assert answers(cut) == answers(full)
    assert len(answers(cut)) == len(orders)
    for action in cut["systemActions"]:
        errors = crd_checks.check_coverage_information(
            "order-sign", None, [action], invariants=crd_checks.CRD_201_INVARIANTS
        )
        assert errors == []
    with_types = [
        template.split("?")[0].split("/")[0]
        for service in discovery_services(crd)
        for template in service["prefetch"].values()
        if not template.startswith("{{")
    ]
    assert set(with_types) <= set(crd_checks.PROFILE_BY_TYPE), with_types


@pytest.mark.requirement("CRD", "conf-4")
@ONLY_THE_EHR_IS_MOCKED
def test_must_support_elements_shape_the_answer(crd: CrdServer, httpx_mock: HTTPXMock) -> None:
    """mustSupport elements are used when sent: the orderer's NPI (Practitioner.identifier:NPI)
    gold-cards the MRI; the patient's birth date and name (Patient) tell apart a family sharing a
    subscriber id; the order's Location (ServiceRequest.locationReference) makes the payer
    propose its in-network imaging center; the Coverage's subscriberId finds the member."""
    mri = order_sign(GOLD_MEMBER, "72148")
    (info,) = coverage_by_order(call(crd, SIGN, mri))["ServiceRequest/servreq-g0180-1"]
    assert info["pa-needed"] == ["auth-needed"]
    gold = order_sign(GOLD_MEMBER, "72148", orderer_npi=GOLD_CARD_NPI)
    (info,) = coverage_by_order(call(crd, SIGN, gold))["ServiceRequest/servreq-g0180-1"]
    assert (
        info["pa-needed"] == ["no-auth"] and info["reason"][0]["coding"][0]["code"] == "gold-card"
    )

    family = order_sign("GLH40021871", "99213")
    daniel = {"name": [{"family": "Alvarez", "given": ["Daniel"]}], "birthDate": "1977-09-30"}
    family["prefetch"]["patient"] = {"resourceType": "Patient", "id": "ehr-daniel"}
    (unknown,) = coverage_by_order(call(crd, SIGN, family))["ServiceRequest/servreq-g0180-1"]
    assert unknown["covered"] == ["not-covered"]
    family = fresh(family)
    family["prefetch"]["patient"].update(daniel)
    (known,) = coverage_by_order(call(crd, SIGN, family))["ServiceRequest/servreq-g0180-1"]
    assert known["covered"] == ["covered"]

    hospital = {
        "resourceType": "Location",
        "id": "ehr-hospital-op",
        "name": "General Hospital outpatient imaging",
        "type": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "HOSP"}
                ]
            }
        ],
    }
    httpx_mock.add_response(
        url=f"https://{INFERNO_EHR_HOST}/reference-server/r4/Location/ehr-hospital-op",
        json=hospital,
        is_reusable=True,
    )
    placed = order_sign(GOLD_MEMBER, "72148")
    order = placed["context"]["draftOrders"]["entry"][0]["resource"]
    without = call(crd, SIGN, copy.deepcopy(placed))
    assert [c for c in without["cards"] if c["source"]["topic"]["code"] == "network"] == []
    order["locationReference"] = [{"reference": "Location/ehr-hospital-op"}]
    located = call(crd, SIGN, fresh(placed))
    proposals = [c for c in located["cards"] if c["source"]["topic"]["code"] == "network"]
    assert len(proposals) == 1
    site = proposals[0]["suggestions"][0]["actions"][0]["resource"]["locationReference"][0]
    assert site["display"] == "Northside Imaging Center"


@pytest.mark.requirement("CRD", "found-34")
def test_what_can_be_answered_is_answered_from_what_is_there(crd: CrdServer) -> None:
    """No patient, no user, no requester, nothing to query: the orders still get their coverage
    and prior authorization answers; a service no rule names gets the payer's documented default
    (conditional, saying what would settle it) rather than an error or silence."""
    body = multi_order_sign(
        GOLD_MEMBER, [LUMBAR_MRI, ("97110", CPT, "ServiceRequest")], fhir_server=False
    )
    body["prefetch"] = {"coverage": body["prefetch"]["coverage"]}
    body["context"].pop("userId", None)
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"].pop("requester", None)
    found = coverage_by_order(call(crd, SIGN, body))
    (mri,) = found["ServiceRequest/order-0-72148"]
    assert (mri["covered"], mri["pa-needed"]) == (["covered"], ["auth-needed"])
    (other,) = found["ServiceRequest/order-1-97110"]
    assert other["covered"] == ["conditional"] and other["info-needed"] == ["OTH"]
    assert other["reason"][0]["text"]


def _with_billing_options(body: dict[str, Any], *codings: dict[str, str]) -> dict[str, Any]:
    changed = fresh(body)
    code = changed["context"]["draftOrders"]["entry"][0]["resource"]["code"]
    code["extension"] = [
        {"url": BILLING_OPTIONS, "valueCodeableConcept": {"coding": [dict(c)]}} for c in codings
    ]
    return changed


@pytest.mark.requirement("CRD", "billopt-2")
def test_billing_options_are_never_needed(crd: CrdServer) -> None:
    """A CPT-coded order without billing options gets its full answer, the same answer as with
    billing options naming the same code."""
    body = order_sign(GOLD_MEMBER, "72148")
    (bare,) = coverage_by_order(call(crd, SIGN, body))["ServiceRequest/servreq-g0180-1"]
    assert (bare["covered"], bare["pa-needed"], bare["doc-needed"]) == (
        ["covered"],
        ["auth-needed"],
        ["clinical"],
    )
    assert bare["billingCode"] == [{"system": CPT, "code": "72148"}]
    with_options = _with_billing_options(body, {"system": CPT, "code": "72148"})
    (same,) = coverage_by_order(call(crd, SIGN, with_options))["ServiceRequest/servreq-g0180-1"]
    assert {k: v for k, v in same.items() if k not in ("coverage-assertion-id", "date")} == {
        k: v for k, v in bare.items() if k not in ("coverage-assertion-id", "date")
    }


@pytest.mark.requirement("CRD", "billopt-3")
def test_billing_options_codes_are_considered(crd: CrdServer) -> None:
    """An order coded in SNOMED CT alone is a service no rule names; the same order with the CPT
    billing option 72148 (lumbar MRI) is answered by the lumbar MRI rule, for that code."""
    body = order_sign(GOLD_MEMBER, "241646008", SNOMED)
    (clinical,) = coverage_by_order(call(crd, SIGN, body))["ServiceRequest/servreq-g0180-1"]
    assert clinical["covered"] == ["conditional"] and "billingCode" not in clinical
    billable = _with_billing_options(body, {"system": CPT, "code": "72148"})
    (billed,) = coverage_by_order(call(crd, SIGN, billable))["ServiceRequest/servreq-g0180-1"]
    assert (billed["covered"], billed["pa-needed"]) == (["covered"], ["auth-needed"])
    assert billed["billingCode"] == [{"system": CPT, "code": "72148"}]
    assert billed["questionnaire"] == [
        "http://greenlight.example.org/fhir/Questionnaire/lumbar-mri"
    ]


US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
V3_RACE = "urn:oid:2.16.840.1.113883.6.238"


def _us_core_shaped(body: dict[str, Any], version: str) -> dict[str, Any]:
    """`body` with its Patient, Coverage, Practitioner and orders as a US Core `version` system
    sends them: the version's profiles claimed, and elements that version introduced."""
    shaped = fresh(body)
    patient = shaped["prefetch"]["patient"]
    patient["meta"] = {"profile": [f"{US_CORE}us-core-patient|{version}"]}
    patient["extension"] = [
        {
            "url": f"{US_CORE}us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": V3_RACE, "code": "2106-3"}},
                {"url": "text", "valueString": "White"},
            ],
        },
        {"url": f"{US_CORE}us-core-birthsex", "valueCode": "M"},
    ]
    practitioner = shaped["prefetch"]["user"]
    practitioner["meta"] = {"profile": [f"{US_CORE}us-core-practitioner|{version}"]}
    coverage = shaped["prefetch"]["coverage"]["entry"][0]["resource"]
    orders = [e["resource"] for e in shaped["context"]["draftOrders"]["entry"]]
    if version == "3.1.1":  # no US Core Coverage or ServiceRequest yet
        return shaped
    coverage["meta"] = {"profile": [f"{US_CORE}us-core-coverage|{version}"]}
    coverage["relationship"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                "code": "self",
            }
        ]
    }
    patient["extension"].append(
        {
            "url": f"{US_CORE}us-core-genderIdentity",
            "valueCodeableConcept": {
                "coding": [{"system": "http://snomed.info/sct", "code": "446151000124109"}]
            },
        }
    )
    for order in orders:
        if order["resourceType"] == "ServiceRequest":
            order["meta"] = {"profile": [f"{US_CORE}us-core-servicerequest|{version}"]}
            order["category"] = [
                {"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}
            ]
    if version == "7.0.0":  # 7.0.0 added the interpreter-needed extension
        patient["extension"].append(
            {
                "url": f"{US_CORE}us-core-interpreter-needed",
                "valueCoding": {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0136",
                    "code": "N",
                },
            }
        )
    return shaped


@pytest.mark.requirement("CRD", "conf-2")
def test_us_core_3_6_and_7_data_are_all_handled(crd: CrdServer) -> None:
    """The same call sent by a US Core 3.1.1, 6.1.0 and 7.0.0 system (each version's profiles
    claimed and its own elements present) gets the same answers and cards each time."""
    body = multi_order_sign(GOLD_MEMBER, ALL_ORDERS, orderer_npi=GOLD_CARD_NPI)
    plain = call(crd, SIGN, body)
    assert answers(plain)
    for version in ("3.1.1", "6.1.0", "7.0.0"):
        answered = call(crd, SIGN, _us_core_shaped(body, version))
        assert answers(answered) == answers(plain), version
        assert card_view(answered) == card_view(plain), version
