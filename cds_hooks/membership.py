"""Who the member is to the payer: the EHR's Coverage matched to the payer's own Coverage by
member or subscriber id, which gives the plan and whether coverage is active today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.fhir.outcomes import FhirError
from app.store.repository import ResourceStore

COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


@dataclass(frozen=True)
class Membership:
    """The payer's view of the EHR's Coverage."""

    client_coverage: dict[str, Any]
    member_coverage: dict[str, Any] | None

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
        coverage = self.member_coverage or {}
        if coverage.get("status") != "active":
            return False
        period = coverage.get("period") or {}
        start, end = period.get("start"), period.get("end")
        today = day.isoformat()
        return not (start and today < str(start)[:10]) and not (end and today > str(end)[:10])

    @property
    def client_reference(self) -> str:
        return f"Coverage/{self.client_coverage.get('id')}"


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
    store: ResourceStore, client_coverage: dict[str, Any], patient: dict[str, Any] | None = None
) -> Membership:
    """Match by the ids the EHR's Coverage carries; where an id is shared (a family's subscriber
    id), the EHR's patient decides by birth date and family name; still ambiguous = not found."""
    for member_id in _member_ids(client_coverage):
        candidates = await _candidates(store, member_id)
        if len(candidates) == 1:
            return Membership(client_coverage, candidates[0])
        if len(candidates) > 1 and patient is not None:
            matching = []
            for candidate in candidates:
                beneficiary = await _beneficiary(store, candidate)
                if beneficiary is not None and _same_person(beneficiary, patient):
                    matching.append(candidate)
            if len(matching) == 1:
                return Membership(client_coverage, matching[0])
    return Membership(client_coverage, None)
