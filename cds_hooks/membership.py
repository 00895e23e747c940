"""Who the member is to the payer: the EHR's Coverage matched to the payer's own Coverage by
member or subscriber id, which gives the plan and whether coverage is active today. When the EHR
has no Coverage at all, the EHR's patient may still be found by demographics (name and birth
date), so that the payer can offer the coverage the EHR lacks (`coverage_record`).

Not found has two flavours for CRD answers: no single member (CRD resp-44 `no-member-found`), or
one member known but several of their coverages matching, so that none can be chosen
(`coverage_ambiguous`, CRD resp-45 `coverage-not-found`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.fhir.outcomes import FhirError
from app.store.indexing import normalize_string
from app.store.repository import ResourceStore

COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


@dataclass(frozen=True)
class Membership:
    """The payer's view of the EHR's Coverage."""

    client_coverage: dict[str, Any]
    member_coverage: dict[str, Any] | None
    coverage_ambiguous: bool = False  # one member, but more than one of their coverages matched
    #: why the member is unknown when a technical failure is the cause: members share the id and
    #: the EHR's Patient, which would tell them apart, could not be read (CRD resp-43)
    technical_failure: str | None = None

    @property
    def found(self) -> bool:
        return self.member_coverage is not None

    @property
    def plan(self) -> str | None:
        for item in (self.member_coverage or {}).get("class") or []:
            codings = ((item.get("type") or {}).get("coding")) or []
            if any(c.get("code") == "plan" for c in codings if isinstance(c, dict)):
                value = item.get("value")
                return str(value) if value else None
        return None

    def active_on(self, day: date) -> bool:
        return coverage_active_on(self.member_coverage or {}, day)

    @property
    def client_reference(self) -> str:
        return f"Coverage/{self.client_coverage.get('id')}"


def coverage_active_on(coverage: dict[str, Any], day: date) -> bool:
    """Status `active` and `day` within the Coverage's period (either end may be open)."""
    if coverage.get("status") != "active":
        return False
    period = coverage.get("period") or {}
    start, end = period.get("start"), period.get("end")
    today = day.isoformat()
    return not (start and today < str(start)[:10]) and not (end and today > str(end)[:10])


def _member_ids(coverage: dict[str, Any]) -> list[str]:
    """Member ids first (they name one person), then the subscriber id (shared by a family)."""
    ids = [
        str(identifier["value"])
        for identifier in coverage.get("identifier") or []
        if isinstance(identifier, dict) and identifier.get("value")
    ]
    if coverage.get("subscriberId"):
        ids.append(str(coverage["subscriberId"]))
    return list(dict.fromkeys(ids))


def _family_names(patient: dict[str, Any]) -> set[str]:
    return {
        str(name["family"]).casefold()
        for name in patient.get("name") or []
        if isinstance(name, dict) and name.get("family")
    }


def _same_person(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Birth date equal, and a family name in common when both have names."""
    if not ours.get("birthDate") or ours.get("birthDate") != theirs.get("birthDate"):
        return False
    mine, other = _family_names(ours), _family_names(theirs)
    return not (mine and other) or bool(mine & other)


async def _candidates(store: ResourceStore, member_id: str) -> list[dict[str, Any]]:
    found = await store.find_by_token("Coverage", "identifier", member_id, limit=20)
    return [item.json() for item in found]


async def _beneficiary(store: ResourceStore, coverage: dict[str, Any]) -> dict[str, Any] | None:
    reference = str((coverage.get("beneficiary") or {}).get("reference") or "")
    if not reference.startswith("Patient/"):
        return None
    try:
        return (await store.read("Patient", reference.split("/", 1)[1])).json()
    except FhirError:
        return None


async def find_membership(
    store: ResourceStore,
    client_coverage: dict[str, Any],
    patient: dict[str, Any] | None = None,
    patient_failure: str | None = None,
) -> Membership:
    """Match by the ids the EHR's Coverage carries; where an id is shared (a family's subscriber
    id), the EHR's patient decides by birth date and family name; still ambiguous = not found
    (flagged `coverage_ambiguous` when the matches are all coverages of one member, and carrying
    `patient_failure` when the patient was needed but the EHR failed to give it)."""
    ambiguous = False
    patient_needed = False
    for member_id in _member_ids(client_coverage):
        candidates = await _candidates(store, member_id)
        if len(candidates) == 1:
            return Membership(client_coverage, candidates[0])
        if len(candidates) > 1:
            matching = []
            for candidate in candidates:
                beneficiary = await _beneficiary(store, candidate)
                if beneficiary is not None and (
                    patient is None or _same_person(beneficiary, patient)
                ):
                    matching.append(candidate)
            if len(matching) == 1 and patient is not None:
                return Membership(client_coverage, matching[0])
            members = {str((c.get("beneficiary") or {}).get("reference")) for c in matching}
            ambiguous = ambiguous or (len(matching) > 1 and len(members) == 1)
            patient_needed = patient_needed or patient is None
    failure = patient_failure if patient_needed and not ambiguous else None
    return Membership(
        client_coverage, None, coverage_ambiguous=ambiguous, technical_failure=failure
    )


def _given_names(patient: dict[str, Any]) -> set[str]:
    return {
        str(given).casefold()
        for name in patient.get("name") or []
        if isinstance(name, dict)
        for given in name.get("given") or []
        if given
    }


def _same_demographics(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Birth date equal, a family and a given name in common, gender equal when both have one."""
    if not ours.get("birthDate") or ours.get("birthDate") != theirs.get("birthDate"):
        return False
    if not (_family_names(ours) & _family_names(theirs)):
        return False
    if not (_given_names(ours) & _given_names(theirs)):
        return False
    genders = (ours.get("gender"), theirs.get("gender"))
    return not all(genders) or genders[0] == genders[1]


async def find_member_by_demographics(
    store: ResourceStore, patient: dict[str, Any], day: date
) -> dict[str, Any] | None:
    """The payer's Coverage, active on `day`, of the one member whose Patient has the EHR
    patient's birth date, a family and a given name in common with it and (when both state it)
    the same gender. None when the EHR patient lacks any of name or birth date, when no member
    or more than one matches, or when the member has no single active Coverage: a coverage is
    only offered to the EHR on an unambiguous match."""
    if not (patient.get("birthDate") and _family_names(patient) and _given_names(patient)):
        return None
    matches: dict[str, dict[str, Any]] = {}
    for family in sorted(_family_names(patient)):
        for stored in await store.find_by_token("Patient", "family", normalize_string(family)):
            candidate = stored.json()
            if _same_demographics(candidate, patient):
                matches[str(candidate.get("id"))] = candidate
    if len(matches) != 1:
        return None
    (member_id,) = matches
    found = await store.find_by_token("Coverage", "patient", member_id)
    active = [c for c in (item.json() for item in found) if coverage_active_on(c, day)]
    return active[0] if len(active) == 1 else None
