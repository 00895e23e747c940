"""Hook calls whose EHR fails: the EHR (`fhirServer`, a real server on loopback) answers an
error, or nothing at all, for what was not prefetched.

Optional data that fails makes what depends on it `indeterminate` with the reason `technical`
(CRD 2.2) or `conditional` with info-needed and the reason as text (CRD 2.0.1), within the time
budget; the rest of the answer stands (resp-43). Required data that fails answers 412 (found-32).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.rules.topic import CRD_TEMP
from cds_hooks.ehr import EHR_BUDGET_SECONDS
from tests.crd.conftest import CrdServer
from tests.crd.hook_requests import order_sign
from tests.crd.requirement_helpers import (
    GOLD_CARD_NPI,
    GOLD_MEMBER,
    call,
    coverage_by_order,
)
from tests.crd.test_requirements_coverage_information import _order_sign_errors
from tests.support.faulty_ehr import Fault, FaultyEhr, faulty_ehr

SIGN = "order-sign-crd"
ORDER = "ServiceRequest/servreq-g0180-1"
ORDERER = {
    "resourceType": "Practitioner",
    "id": "pra1234",
    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": GOLD_CARD_NPI}],
    "name": [{"family": "Smythe", "given": ["Juliette"]}],
}


@pytest.fixture
def ehr() -> Iterator[FaultyEhr]:
    with faulty_ehr() as server:
        server.resources["Practitioner/pra1234"] = ORDERER
        yield server


def _asking(ehr: FaultyEhr, code: str, version: str | None = None) -> dict[str, Any]:
    """An order-sign call whose orderer (context.userId) is not prefetched: Greenlight reads it
    from `ehr`."""
    body = order_sign(GOLD_MEMBER, code)
    del body["prefetch"]["user"]
    body["fhirServer"] = ehr.base_url
    if version:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    return body


def _technical_reasons(parts: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [r for r in parts.get("reason", []) if "could not be determined" in r.get("text", "")]


@pytest.mark.requirement("CRD", "resp-43")
def test_an_orderer_the_ehr_cannot_give_leaves_prior_auth_indeterminate(
    crd: CrdServer, ehr: FaultyEhr
) -> None:
    """The lumbar MRI topic gold-cards an orderer; the EHR answers 503 for the orderer. CRD 2.2
    callers: pa-needed `indeterminate`, reason `technical` saying what failed. CRD 2.0.1 callers:
    `conditional` with info-needed `performer`, the reason as text, and the order still conforms
    to the CRD 2.0.1 profile. Coverage and documentation, which the orderer does not change,
    are answered; the Instructions card warns."""
    ehr.faults["Practitioner"] = Fault(status=503)
    body = _asking(ehr, "72148", "2.2")
    response = call(crd, SIGN, body)
    (parts,) = coverage_by_order(response)[ORDER]
    assert parts["covered"] == ["covered"] and parts["pa-needed"] == ["indeterminate"]
    assert parts["doc-needed"] == ["clinical"]
    (reason,) = _technical_reasons(parts)
    assert reason["coding"] == [
        {"system": CRD_TEMP, "code": "technical", "display": "Technical issues"}
    ]
    assert "ordering practitioner: it answered HTTP 503" in reason["text"]
    (card,) = [c for c in response["cards"] if "could not be determined" in c["summary"]]
    assert card["indicator"] == "warning" and card["source"]["topic"]["code"] == "coverage-info"
    assert "Practitioner/pra1234" in ehr.requests

    body_201 = _asking(ehr, "72148")
    response_201 = call(crd, SIGN, body_201)
    (parts,) = coverage_by_order(response_201)[ORDER]
    assert (parts["covered"], parts["pa-needed"]) == (["covered"], ["conditional"])
    assert parts["info-needed"] == ["performer"]
    (reason,) = _technical_reasons(parts)
    assert "coding" not in reason  # CRD 2.0.1's code system has no `technical`
    assert _order_sign_errors(body_201, response_201) == []


@pytest.mark.requirement("CRD", "resp-43")
def test_only_answers_that_depend_on_the_failed_read_are_indeterminate(
    crd: CrdServer, ehr: FaultyEhr
) -> None:
    """An office visit does not depend on who orders it: the same answer whether the EHR gives
    the orderer or fails."""
    answers = []
    for fault in (None, Fault(status=500)):
        ehr.faults.pop("Practitioner", None)
        if fault:
            ehr.faults["Practitioner"] = fault
        (parts,) = coverage_by_order(call(crd, SIGN, _asking(ehr, "99213", "2.2")))[ORDER]
        assert _technical_reasons(parts) == []
        answers.append({k: v for k, v in parts.items() if k not in ("coverage-assertion-id",)})
    assert answers[0] == answers[1]


def test_an_answer_given_without_the_orderer_is_not_reused_once_the_ehr_answers(
    crd: CrdServer, ehr: FaultyEhr
) -> None:
    """The same order asked again after the EHR recovers is decided anew: the gold-carded orderer
    now read, no prior authorization is needed (the technical answer was not cached for it)."""
    ehr.faults["Practitioner"] = Fault(status=503)
    body = _asking(ehr, "72148", "2.2")
    (failed,) = coverage_by_order(call(crd, SIGN, body))[ORDER]
    del ehr.faults["Practitioner"]
    again = dict(body, hookInstance="9b2bd3f4-0c5a-4a44-9f6e-2f39a9a2c001")
    (recovered,) = coverage_by_order(call(crd, SIGN, again))[ORDER]
    assert failed["pa-needed"] == ["indeterminate"] and recovered["pa-needed"] == ["no-auth"]
    assert recovered["coverage-assertion-id"] != failed["coverage-assertion-id"]
    assert any(r.get("coding", [{}])[0].get("code") == "gold-card" for r in recovered["reason"])


@pytest.mark.requirement("CRD", "resp-43")
def test_an_ehr_that_never_answers_costs_no_more_than_the_time_budget(
    crd: CrdServer, ehr: FaultyEhr
) -> None:
    """The EHR holds every read open without answering: the patient (not prefetched) waits its
    2 s, the orderer what is left of the 3.5 s budget; the answer (technical) comes within the
    budget plus processing, far inside CRD's 5 s target (found-2)."""
    ehr.faults["Patient"] = Fault(hang=30)
    ehr.faults["Practitioner"] = Fault(hang=30)
    body = _asking(ehr, "72148", "2.2")
    del body["prefetch"]["patient"]
    started = time.monotonic()
    (parts,) = coverage_by_order(call(crd, SIGN, body))[ORDER]
    elapsed = time.monotonic() - started
    assert parts["pa-needed"] == ["indeterminate"]
    assert "no answer within" in _technical_reasons(parts)[0]["text"]
    assert EHR_BUDGET_SECONDS - 0.2 < elapsed < EHR_BUDGET_SECONDS + 1.0, elapsed


@pytest.mark.requirement("CRD", "resp-43")
def test_a_patient_the_ehr_cannot_give_leaves_a_shared_member_id_unresolved(
    crd: CrdServer, ehr: FaultyEhr
) -> None:
    """The Alvarez family shares subscriber id GLH40021871 and only the EHR's patient tells
    them apart. The patient is not prefetched and the EHR answers 500 for it: the member is
    unknown for a technical reason, not absent, so coverage is `indeterminate` (CRD 2.2) with
    the reason `technical` (not `no-member-found`), and a warning card says the check failed."""
    ehr.faults["Patient"] = Fault(status=500)
    body = order_sign("GLH40021871", "99213")
    body["fhirServer"] = ehr.base_url
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    del body["prefetch"]["patient"]
    response = call(crd, SIGN, body)
    (parts,) = coverage_by_order(response)[ORDER]
    assert (parts["covered"], parts["pa-needed"]) == (["indeterminate"], ["indeterminate"])
    codes = [r["coding"][0]["code"] for r in parts["reason"]]
    assert (
        codes == ["technical"] and "the patient: it answered HTTP 500" in parts["reason"][0]["text"]
    )
    (card,) = response["cards"]
    assert card["indicator"] == "warning" and "could not be checked" in card["summary"]
    del body["extension"]  # CRD 2.0.1: `conditional`, info-needed OTH, the reason as text
    body["hookInstance"] = "3c6f5c1e-8d1b-4c1e-b7a4-6a0f7f3e2b10"
    response_201 = call(crd, SIGN, body)
    (parts,) = coverage_by_order(response_201)[ORDER]
    assert (parts["covered"], parts["info-needed"]) == (["conditional"], ["OTH"])
    assert _order_sign_errors(body, response_201) == []


@pytest.mark.requirement("CRD", "found-32")
def test_a_coverage_the_ehr_fails_to_give_answers_412(crd: CrdServer, ehr: FaultyEhr) -> None:
    """The Coverage was not prefetched and the EHR answers 503 for it: without the client's
    Coverage no coverage-information can be given, so the call fails with 412 and an
    OperationOutcome naming `prefetch.coverage`."""
    ehr.faults["Coverage"] = Fault(status=503)
    body = _asking(ehr, "72148")
    del body["prefetch"]["coverage"]
    response = crd.call(SIGN, body)
    assert response.status_code == 412, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["prefetch.coverage"]
    assert "HTTP 503" in outcome["issue"][0]["diagnostics"]
