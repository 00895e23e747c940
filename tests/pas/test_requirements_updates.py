"""PAS 2.2 Claim updates as the payer checks them: what the update Bundle holds and how it flags
its changes (PAS spec-65/66/67, spec-69/70/71/72), over real HTTP on both backends.

Every test runs the Inferno kit's update sequence (initial request, add an item, modify one and
cancel another, cancel everything) under identifiers of its own, so each has requests nobody
else has updated. A refused update writes nothing, so the next step can still be sent.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from app.fhir.validation import validator_for
from app.fhir.validation.policy import PAS_REQUEST_BUNDLE, PAS_V221
from tests.conftest import FHIR_PACKAGES
from tests.pas.conftest import IG, RESPONSE_BUNDLE, PasServer, kit, review_actions, table_counts
from tests.support.conformance import assert_conforms

VERSION = "2.2.1"
STEPS = (
    "claim_update_initial_submit_payload",
    "claim_update_add_item_submit_payload",
    "claim_update_modify_cancel_submit_payload",
    "claim_update_cancel_all_submit_payload",
)
PAS_SD = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
INFO_CHANGED = PAS_SD + "extension-infoChanged"
INFO_CANCELLED = PAS_SD + "modifierextension-infoCancelled"
CERTIFICATION_TYPE = PAS_SD + "extension-certificationType"


def _chain() -> list[dict[str, Any]]:
    """The kit's four update Bundles with identifiers of their own (every Claim alike, so each
    update's copy of its prior Claim is still exactly the Claim sent before)."""
    tag = uuid.uuid4().hex[:8]
    steps = [kit(VERSION, step) for step in STEPS]
    for bundle in steps:
        bundle["identifier"]["value"] = f"{bundle['identifier']['value']}-{tag}"
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Claim":
                for identifier in entry["resource"].get("identifier", []):
                    identifier["value"] = f"{identifier['value']}-{tag}"
    return steps


def _ok(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    response = pas.submit(bundle, VERSION)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, RESPONSE_BUNDLE, ig=IG[VERSION])
    return body


def _refused(pas: PasServer, bundle: dict[str, Any]) -> dict[str, Any]:
    before = table_counts(pas.database_url)
    response = pas.submit(bundle, VERSION)
    assert response.status_code == 400, response.text
    issue: dict[str, Any] = response.json()["issue"][0]
    assert table_counts(pas.database_url) == before
    return issue


def _claim(bundle: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = bundle["entry"][0]["resource"]
    return claim


def _index(bundle: dict[str, Any], resource_type: str) -> int:
    (found,) = [
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == resource_type
    ]
    return found


def _flag(item: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in item["extension"] if e["url"] == INFO_CHANGED]
    assert len(found) == 1, found
    return found[0]


# --- what an update Bundle holds -----------------------------------------------------------------


@pytest.mark.requirement("PAS", "spec-65")
def test_the_updated_claim_is_referenced_and_included(pas: PasServer) -> None:
    initial, add_item, _, _ = _chain()
    first = _ok(pas, initial)
    assert _claim(add_item)["related"][0]["claim"]["reference"] == add_item["entry"][1]["fullUrl"]
    without_prior = copy.deepcopy(add_item)
    del without_prior["entry"][1]
    issue = _refused(pas, without_prior)
    assert issue["expression"] == ["Bundle.entry[0].resource.related[0].claim.reference"]
    assert issue["code"] == "not-found"
    second = _ok(pas, add_item)
    assert review_actions(second) == ["NA", "NA"]
    with pas.client() as client:
        inquiry = kit(VERSION, "pended_pa_inquire_request_payload")[0]
        inquiry["entry"][0]["resource"]["identifier"] = copy.deepcopy(_claim(initial)["identifier"])
        answer = client.post(pas.url(VERSION, "Claim/$inquire"), json=inquiry).json()
    found = {p["resource"]["entry"][0]["resource"]["id"] for p in answer["parameter"]}
    # the initial request answers with the update that replaced it
    assert second["entry"][0]["resource"]["id"] in found
    assert first["entry"][0]["resource"]["id"] not in found


@pytest.mark.requirement("PAS", "spec-66")
def test_the_prior_claims_own_predecessor_is_left_out(pas: PasServer) -> None:
    initial, add_item, modify_cancel, _ = _chain()
    _ok(pas, initial)
    _ok(pas, add_item)
    prior = modify_cancel["entry"][1]["resource"]
    assert prior["related"][0]["claim"]["reference"] == initial["entry"][0]["fullUrl"]
    with_original = copy.deepcopy(modify_cancel)
    with_original["entry"].append(copy.deepcopy(initial["entry"][0]))
    issue = _refused(pas, with_original)
    assert issue["expression"] == [f"Bundle.entry[{len(with_original['entry']) - 1}]"]
    assert "PAS spec-66" in issue["diagnostics"]
    # as the kit sends it: the prior update is included, its own prior is not; the profile
    # validator (what GREENLIGHT_VALIDATION=enforce applies) does not ask for it either
    validated = validator_for(FHIR_PACKAGES, PAS_V221).validate(modify_cancel, PAS_REQUEST_BUNDLE)
    assert [i.expression for i in validated.errors if ".related[" in " ".join(i.expression)] == []
    assert review_actions(_ok(pas, modify_cancel)) == ["NA", "C"]


@pytest.mark.requirement("PAS", "spec-67")
def test_every_other_referenced_resource_is_in_the_update(pas: PasServer) -> None:
    initial, add_item, _, _ = _chain()
    _ok(pas, initial)
    without_coverage = copy.deepcopy(add_item)
    del without_coverage["entry"][_index(without_coverage, "Coverage")]
    issue = _refused(pas, without_coverage)
    assert issue["expression"] in (
        ["Bundle.entry[0].resource.insurance[0].coverage.reference"],
        ["Bundle.entry[1].resource.insurance[0].coverage.reference"],
    )
    without_location = copy.deepcopy(add_item)
    del without_location["entry"][_index(without_location, "Location")]
    issue = _refused(pas, without_location)
    assert issue["code"] == "not-found" and "location" in issue["expression"][0]
    assert review_actions(_ok(pas, add_item)) == ["NA", "NA"]


# --- how an update flags its changes ------------------------------------------------------------


@pytest.mark.requirement("PAS", "spec-69")
def test_removed_entries_stay_flagged_cancelled(pas: PasServer) -> None:
    initial, add_item, modify_cancel, cancel_all = _chain()
    _ok(pas, initial)
    _ok(pas, add_item)
    dropped = copy.deepcopy(modify_cancel)
    del _claim(dropped)["item"][1]  # the cancelled item left out instead of flagged
    issue = _refused(pas, dropped)
    assert issue["expression"] == ["Bundle.entry[0].resource.item"]
    assert "PAS spec-69" in issue["diagnostics"]
    dropped_info = copy.deepcopy(modify_cancel)
    del _claim(dropped_info)["supportingInfo"][-1]
    assert _refused(pas, dropped_info)["expression"] == ["Bundle.entry[0].resource.supportingInfo"]
    unflagged = copy.deepcopy(modify_cancel)
    del _claim(unflagged)["item"][1]["modifierExtension"]  # certificationType 3 alone
    issue = _refused(pas, unflagged)
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].modifierExtension"]
    cancelled = _ok(pas, modify_cancel)
    assert review_actions(cancelled) == ["NA", "C"]
    # cancelling the whole request needs no items
    everything = copy.deepcopy(cancel_all)
    _claim(everything).pop("item")
    _claim(everything).pop("supportingInfo")
    whole = _ok(pas, everything)
    assert "item" not in whole["entry"][0]["resource"]
    assert pas.case_of(whole)["status"] == "cancelled"


@pytest.mark.requirement("PAS", "spec-70")
def test_a_cancelled_item_also_carries_certification_type_3(pas: PasServer) -> None:
    initial, add_item, modify_cancel, _ = _chain()
    _ok(pas, initial)
    _ok(pas, add_item)
    item = _claim(modify_cancel)["item"][1]
    certification = next(e for e in item["extension"] if e["url"] == CERTIFICATION_TYPE)
    assert certification["valueCodeableConcept"]["coding"][0]["code"] == "3"
    assert item["modifierExtension"] == [{"url": INFO_CANCELLED, "valueBoolean": True}]
    initial_coded = copy.deepcopy(modify_cancel)
    changed = _claim(initial_coded)["item"][1]
    for extension in changed["extension"]:
        if extension["url"] == CERTIFICATION_TYPE:
            extension["valueCodeableConcept"]["coding"][0]["code"] = "I"
    issue = _refused(pas, initial_coded)
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].extension"]
    assert "PAS spec-70" in issue["diagnostics"]
    assert review_actions(_ok(pas, modify_cancel)) == ["NA", "C"]


@pytest.mark.requirement("PAS", "spec-71")
def test_added_modified_and_cancelled_entries_carry_info_changed(pas: PasServer) -> None:
    initial, add_item, modify_cancel, _ = _chain()
    _ok(pas, initial)
    added = copy.deepcopy(add_item)
    _claim(added)["item"][1]["extension"].remove(_flag(_claim(added)["item"][1]))
    issue = _refused(pas, added)
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].extension"]
    assert "added" in issue["diagnostics"] and "PAS spec-71" in issue["diagnostics"]
    modified = copy.deepcopy(add_item)
    _claim(modified)["item"][0]["quantity"]["value"] = 3  # changed, not flagged
    issue = _refused(pas, modified)
    assert issue["expression"] == ["Bundle.entry[0].resource.item[0].extension"]
    _ok(pas, add_item)
    cancelled = copy.deepcopy(modify_cancel)
    _claim(cancelled)["item"][1]["extension"].remove(_flag(_claim(cancelled)["item"][1]))
    issue = _refused(pas, cancelled)
    assert issue["expression"] == ["Bundle.entry[0].resource.item[1].extension"]
    info = copy.deepcopy(modify_cancel)
    _claim(info)["supportingInfo"][0]["timingDate"] = "2026-01-02"  # a modified entry
    issue = _refused(pas, info)
    assert issue["expression"] == ["Bundle.entry[0].resource.supportingInfo[0].extension"]
    assert review_actions(_ok(pas, modify_cancel)) == ["NA", "C"]


@pytest.mark.requirement("PAS", "spec-72")
def test_info_changed_says_changed_for_modified_and_cancelled_entries(pas: PasServer) -> None:
    initial, add_item, modify_cancel, _ = _chain()
    _ok(pas, initial)
    literal = copy.deepcopy(add_item)  # an added entry flagged `changed`, as spec-72 reads
    _flag(_claim(literal)["item"][1])["valueCode"] = "changed"
    assert review_actions(_ok(pas, literal)) == ["NA", "NA"]
    # the next update's prior is the Claim just stored (flagged `changed`)
    modify_cancel["entry"][1]["resource"] = copy.deepcopy(_claim(literal))
    for position in (0, 1):  # item 1 modified, item 2 cancelled: flagged `added` is wrong
        wrong = copy.deepcopy(modify_cancel)
        flag = _flag(_claim(wrong)["item"][position])
        flag["valueCode"] = "added"
        issue = _refused(pas, wrong)
        at = _claim(wrong)["item"][position]["extension"].index(flag)
        assert issue["expression"] == [
            f"Bundle.entry[0].resource.item[{position}].extension[{at}].valueCode"
        ]
        assert "PAS spec-72" in issue["diagnostics"]
    assert review_actions(_ok(pas, modify_cancel)) == ["NA", "C"]
