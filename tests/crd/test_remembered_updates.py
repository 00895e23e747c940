"""The coverage comparison is remembered per (EHR Coverage, payer record version): the same
pair gives the same answer without comparing again; a new record version or another EHR
Coverage is compared anew."""

from __future__ import annotations

import copy

from app.demo.payer import MEMBERS
from cds_hooks.coverage_record import RememberedUpdates, coverage_update
from tests.crd.hook_requests import ehr_coverage

MEMBER_ID = "10A3D58WH456"


def _payer_record(version: str | None = "1") -> dict[str, object]:
    member = next(m for m in MEMBERS if m.member_id_value == MEMBER_ID)
    record = member.coverage_resource()
    record["id"] = "cov-gold"
    if version:
        record["meta"] = {"versionId": version}
    return record


def test_the_same_pair_is_answered_from_memory_and_a_new_version_anew() -> None:
    updates = RememberedUpdates(size=2)
    ehr = ehr_coverage(MEMBER_ID)
    payer = _payer_record()
    first = updates.update(ehr, payer)
    assert first is not None and first == coverage_update(ehr, payer)
    assert updates.update(copy.deepcopy(ehr), payer) is first  # equal Coverage, same record
    cancelled = {**_payer_record("2"), "status": "cancelled"}
    changed = updates.update(ehr, cancelled)
    assert changed is not None and "status" in {d.label for d in changed.differences}
    assert "status" not in {d.label for d in first.differences}


def test_records_without_a_version_and_the_oldest_pairs_are_compared_anew() -> None:
    updates = RememberedUpdates(size=1)
    ehr = ehr_coverage(MEMBER_ID)
    unversioned = _payer_record(version=None)
    assert updates.update(ehr, unversioned) is not updates.update(ehr, unversioned)
    first = updates.update(ehr, _payer_record())
    other_ehr = {**ehr, "id": "another-coverage"}
    updates.update(other_ehr, _payer_record())  # pushes the first pair out (size 1)
    again = updates.update(ehr, _payer_record())
    assert again == first and again is not first
