"""CRD server requirements about discovery and prefetch, proven over real HTTP: the CRD versions
each service declares (dev-1/2), its configuration options (dev-4/7/8), one endpoint for every
coverage (found-15) and the prefetch capability (found-24).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from app.demo.payer import MEMBERS, PAYER_NAME, PLANS
from tests.crd.conftest import ONLY_THE_EHR_IS_MOCKED, CrdServer
from tests.crd.hook_requests import order_sign
from tests.crd.requirement_helpers import call, coverage_by_order, discovery_services
from tests.support import crd_checks

VERSIONS = "davinci-crd.version"
OPTIONS = crd_checks.CONFIGURATION_OPTIONS_KEY
_TWO_PART_VERSION = re.compile(r"^\d+\.\d+$")
_JSON_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # a plain JSON property name


@pytest.mark.requirement("CRD", "dev-1")
@pytest.mark.requirement("CRD", "dev-2")
def test_each_service_declares_every_crd_version_it_answers(crd: CrdServer) -> None:
    """Every service lists two-part CRD versions; each listed version is answered by its own
    rules (a not-covered answer has `pa-needed` under CRD 2.0.1's q2 as validators run it and
    none under CRD 2.2's), so the list is exactly the versions the endpoint handles."""
    declared: set[str] = set()
    for service in discovery_services(crd):
        versions = service["extension"][VERSIONS]
        assert isinstance(versions, list) and versions, service["id"]
        assert all(isinstance(v, str) and _TWO_PART_VERSION.match(v) for v in versions), versions
        assert len(set(versions)) == len(versions)
        declared |= set(versions)
    assert declared == {"2.0", "2.2"}
    pa_needed_when_not_covered = {}
    for version in sorted(declared):
        body = order_sign("NOBODY-1", "72148")
        body["extension"] = {"davinci-crd.requestedVersion": version}
        response = call(crd, "order-sign-crd", body)
        invariants = (
            crd_checks.CRD_22_INVARIANTS if version == "2.2" else crd_checks.CRD_201_INVARIANTS
        )
        errors = crd_checks.check_coverage_information(
            "order-sign", body, response["systemActions"], invariants=invariants
        )
        assert errors == []
        (parts,) = coverage_by_order(response)["ServiceRequest/servreq-g0180-1"]
        assert parts["covered"] == ["not-covered"]
        pa_needed_when_not_covered[version] = "pa-needed" in parts
    assert pa_needed_when_not_covered == {"2.0": True, "2.2": False}


@pytest.mark.requirement("CRD", "dev-4")
@pytest.mark.requirement("CRD", "dev-7")
@pytest.mark.requirement("CRD", "dev-8")
def test_configuration_options_are_complete_typed_unique_and_card_types(crd: CrdServer) -> None:
    card_types = crd_checks.card_type_codes()
    for service in discovery_services(crd):
        options = service["extension"][OPTIONS]
        assert options, service["id"]
        for option in options:
            # dev-4: code, type, name, description and a default of that JSON type
            assert set(option) == {"code", "type", "name", "description", "default"}, option
            assert all(
                isinstance(option[k], str) and option[k].strip() for k in option if k != "default"
            )
            assert option["type"] in ("boolean", "integer")
            if option["type"] == "boolean":
                assert isinstance(option["default"], bool)
                # dev-7: a card type's option carries the CRD card type code
                assert option["code"] in card_types, option["code"]
            else:
                assert isinstance(option["default"], int) and not isinstance(
                    option["default"], bool
                )
            assert _JSON_NAME.match(option["code"]), option["code"]  # dev-7: a JSON name
        for field in ("code", "name", "description"):  # dev-8: unique within the service
            values = [option[field] for option in options]
            assert len(values) == len(set(values)), (service["id"], field)
        # the same options on every hook
        assert options == discovery_services(crd)[0]["extension"][OPTIONS]
    kit = httpx.get(f"{crd.server.base_url}/cds-services").json()
    assert crd_checks.check_discovery_crd(kit, card_types=("coverage-info",)) == []


@pytest.mark.requirement("CRD", "found-15")
def test_one_endpoint_answers_every_coverage(crd: CrdServer) -> None:
    """No endpoint discovery: one service per hook under one base URL, and that order-sign
    service answers members of every plan the payer sells from their own records."""
    services = discovery_services(crd)
    hooks = [service["hook"] for service in services]
    assert len(hooks) == len(set(hooks)) == len(crd_checks.HOOKS)
    today = datetime.now(UTC).date().isoformat()
    answered_plans = set()
    for plan in PLANS:
        member = next(
            m
            for m in MEMBERS
            if m.plan == plan
            and m.status == "active"
            and m.subscriber_id == m.member_id_value
            and (m.period_end is None or m.period_end >= today)
        )
        response = call(crd, "order-sign-crd", order_sign(member.member_id_value, "99213"))
        (parts,) = coverage_by_order(response)["ServiceRequest/servreq-g0180-1"]
        assert parts["covered"] == ["covered"], (plan.value, parts)
        assert all(card["source"]["label"] == PAYER_NAME for card in response["cards"])
        answered_plans.add(plan.value)
    assert answered_plans == {plan.value for plan in PLANS}


@pytest.mark.requirement("CRD", "found-24")
@ONLY_THE_EHR_IS_MOCKED
def test_prefetch_is_declared_and_what_is_prefetched_is_not_queried(
    crd: CrdServer, httpx_mock: HTTPXMock
) -> None:
    """Every service declares prefetch templates for the patient and the coverage; a call that
    prefetches them is answered from the prefetch alone: the EHR's FHIR server (`fhirServer`,
    mocked and never answering) is not queried, and without any `fhirServer` the answer is the
    same."""
    for service in discovery_services(crd):
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert service["prefetch"]["coverage"].startswith("Coverage?patient={{context.patientId}}")
    body = order_sign("10A3D58WH456", "72148")
    assert body["fhirServer"].startswith("https://")
    with_server = call(crd, "order-sign-crd", body)
    assert httpx_mock.get_requests() == []
    without_server = call(
        crd, "order-sign-crd", order_sign("10A3D58WH456", "72148", fhir_server=False)
    )
    first = coverage_by_order(with_server)["ServiceRequest/servreq-g0180-1"]
    second = coverage_by_order(without_server)["ServiceRequest/servreq-g0180-1"]
    assert first == second and first[0]["pa-needed"] == ["auth-needed"]
