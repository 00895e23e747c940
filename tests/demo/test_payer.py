"""The demo payer's content (no database): valid FHIR R4, one payer, two plans, a dozen members,
providers with NPIs, the two sites of care and the gold-carded practitioner.

Requirement: "`greenlight demo-data` loads one payer Organization, two plans, a dozen members
(Patient + Coverage with member ids), providers (Practitioner, Organization with NPIs)".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from app.demo import payer
from app.demo.npi import NPI_SYSTEM, is_valid_npi, npi_check_digit
from app.fhir.models import check_resource
from tests.demo.inferno_inputs import all_fixture_text

RESOURCES = payer.demo_resources()
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _of_type(resource_type: str) -> list[dict[str, Any]]:
    return [r for r in RESOURCES if r["resourceType"] == resource_type]


def _codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept.get("coding", [])}


def _npis(resource: dict[str, Any]) -> list[str]:
    return [i["value"] for i in resource.get("identifier", []) if i.get("system") == NPI_SYSTEM]


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


@pytest.mark.parametrize(
    "resource", RESOURCES, ids=[f"{r['resourceType']}/{r['id']}" for r in RESOURCES]
)
def test_every_resource_is_valid_fhir_r4(resource: dict[str, Any]) -> None:
    check_resource(resource)


def test_logical_ids_are_unique_and_references_resolve_within_the_demo() -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in RESOURCES]
    assert len(keys) == len(set(keys))
    dangling = {ref for ref in _references(RESOURCES) if ref not in set(keys)}
    assert dangling == set()


def test_one_payer_organization() -> None:
    payers = [
        org
        for org in _of_type("Organization")
        if any(
            ("http://terminology.hl7.org/CodeSystem/organization-type", "pay") in _codes(t)
            for t in org["type"]
        )
    ]
    assert [org["id"] for org in payers] == [payer.PAYER_ORGANIZATION_ID]


def test_a_dozen_members_across_two_plans() -> None:
    patients = _of_type("Patient")
    coverages = _of_type("Coverage")
    assert len(patients) == len(coverages) == len(payer.MEMBERS) >= 12
    plans = Counter(
        (c["value"], c["name"])
        for coverage in coverages
        for c in coverage["class"]
        if ("http://terminology.hl7.org/CodeSystem/coverage-class", "plan") in _codes(c["type"])
    )
    assert set(plans) == {
        ("GL-GOLD-PPO", "Greenlight Gold PPO"),
        ("GL-SILVER-HMO", "Greenlight Silver HMO"),
    }
    assert sum(plans.values()) == len(coverages)  # exactly one plan class each
    assert min(plans.values()) >= 4
    patient_ids = {p["id"] for p in patients}
    for coverage in coverages:
        assert coverage["payor"] == [
            {
                "reference": f"Organization/{payer.PAYER_ORGANIZATION_ID}",
                "display": payer.PAYER_NAME,
            }
        ]
        assert coverage["beneficiary"]["reference"].removeprefix("Patient/") in patient_ids
        assert coverage["subscriberId"]
        assert coverage["period"]["start"]
        member_ids = [
            i for i in coverage["identifier"] if (V2_0203, "MB") in _codes(i.get("type", {}))
        ]
        assert len(member_ids) == 1, coverage["id"]  # PAS profile-coverage identifier:memberid 1..1


def test_one_member_has_cancelled_coverage() -> None:
    statuses = Counter(c["status"] for c in _of_type("Coverage"))
    assert statuses["cancelled"] == 1
    cancelled = next(c for c in _of_type("Coverage") if c["status"] == "cancelled")
    assert cancelled["period"]["end"] < "2026-01-01"


def test_member_ids_are_unique_and_on_the_patient_too() -> None:
    values = [m.member_id_value for m in payer.MEMBERS]
    assert len(values) == len(set(values))
    patients = {p["id"]: p for p in _of_type("Patient")}
    for member in payer.MEMBERS:
        assert member.member_id in patients[member.patient_id]["identifier"]


def test_providers_have_npis() -> None:
    practitioners = _of_type("Practitioner")
    assert len(practitioners) >= 5
    assert all(_npis(p) for p in practitioners)
    provider_orgs = [o for o in _of_type("Organization") if o["id"] != payer.PAYER_ORGANIZATION_ID]
    assert len(provider_orgs) >= 3
    assert all(_npis(o) for o in provider_orgs)
    rows = payer.provider_rows()
    assert {(r.resource_type, r.id) for r in rows} == {
        (r["resourceType"], r["id"]) for r in practitioners + provider_orgs
    }


def test_invented_npis_pass_the_luhn_check() -> None:
    """Fixture NPIs are kept as the fixtures spell them; every NPI we made up is valid."""
    text = all_fixture_text()
    invented = [
        value
        for resource in RESOURCES
        for value in _npis(resource)
        if not re.search(rf"(?<![0-9]){value}(?![0-9])", text)
    ]
    assert len(invented) >= 8
    assert [value for value in invented if not is_valid_npi(value)] == []


def test_npi_check_digit() -> None:
    assert npi_check_digit("123456789") == "3"  # the CMS worked example, 1234567893
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567890")
    assert not is_valid_npi("789312")
    with pytest.raises(ValueError):
        npi_check_digit("12345")


def test_gold_carded_practitioner_is_an_ordering_practitioner() -> None:
    practitioner_npis = {value for p in _of_type("Practitioner") for value in _npis(p)}
    assert payer.GOLD_CARDED_NPIS
    assert payer.GOLD_CARDED_NPIS.issubset(practitioner_npis)
    assert all(is_valid_npi(value) for value in payer.GOLD_CARDED_NPIS)
    assert [r.id for r in payer.provider_rows() if r.note == "gold-carded"] == ["raman-priya"]


def test_hospital_outpatient_and_freestanding_imaging_sites() -> None:
    locations = {loc["id"]: loc for loc in _of_type("Location")}
    organizations = {org["id"]: org for org in _of_type("Organization")}
    pos = payer.PLACE_OF_SERVICE

    def site(location_id: str) -> set[tuple[str, str]]:
        return {code for t in locations[location_id]["type"] for code in _codes(t)}

    hospital = site(payer.HOSPITAL_OUTPATIENT_LOCATION_ID)
    assert (pos, "22") in hospital
    assert (payer.ROLE_CODE, "HOSP") in hospital
    imaging = site(payer.FREESTANDING_IMAGING_LOCATION_ID)
    assert (pos, "11") in imaging
    assert (payer.ROLE_CODE, "RADDX") in imaging
    for location_id in (
        payer.HOSPITAL_OUTPATIENT_LOCATION_ID,
        payer.FREESTANDING_IMAGING_LOCATION_ID,
    ):
        managing = locations[location_id]["managingOrganization"]["reference"]
        assert _npis(organizations[managing.removeprefix("Organization/")])
