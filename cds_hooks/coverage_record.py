"""Create or update coverage information (CRD 2.0.1 response type "Create or update coverage
information"; CRD 2.2 "Update Coverage Records"; card type `insurance`): the Coverage the EHR
should hold, from what the payer's member record knows and the EHR's Coverage lacks or has wrong.

The payer's member record (its stored Coverage, matched by `membership`) is the authority. The
EHR's Coverage *differs* from it when any of these holds; each is named in the card:

- **subscriber id**: `subscriberId` missing or different;
- **member id**: the EHR has a member-number identifier (type `MB`) with another value, or
  neither an identifier nor `subscriberId` carries the payer's member id (a dependent known to
  the EHR only by the family's subscriber id);
- **status**: different (e.g. the payer has the coverage `cancelled`);
- **coverage period**: missing, or its start or end date different (an end the payer does not
  have counts: the payer says the coverage is open-ended);
- **plan**, **group** (and any other `Coverage.class` type the payer holds): no class of that
  type, or none with the payer's value (the type is matched by code, whatever the coding
  system, as the Inferno mock EHR still uses the pre-THO `http://hl7.org/fhir/coverage-class`).

Nothing else triggers a card: an EHR Coverage that carries all of the above as the payer has
them gets none, however sparse it is otherwise. When a card is sent, the Coverage in it also
gets, where the EHR has none, the member-number identifier, `relationship` and `dependent`
(CRD profile-coverage mustSupport elements, CRD conf-5), never a reason to send one alone.

The `update` keeps the EHR's Coverage as it is (its `id`, `beneficiary`, `payor` and anything
the payer has no view on) and changes only the elements above: the payer's own references
(its Patient and Organization ids) mean nothing to the EHR and are never copied. A `create`
(the EHR has no Coverage at all and the patient was found by demographics) names the EHR's
patient as beneficiary and the payer by identifier and name, and claims CRD profile-coverage.

Whether such cards are sent at all is the caller's `insurance` configuration option (CRD dev-5:
one boolean per card type; default on); which hooks and CRD versions get them is decided in
`respond` (CRD 2.2 resp-70, and 2.2 knows only `update`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from app.fhir.json_copy import json_copy
from app.lru import Lru
from cds_hooks.membership import COVERAGE_CLASS

CRD_COVERAGE_PROFILE = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-coverage"
_CLASS_LABELS = {"plan": "plan", "group": "group"}


@dataclass(frozen=True)
class Difference:
    """One element where the EHR's Coverage and the payer's record disagree."""

    label: str  # what a user calls it: "subscriber id", "plan"
    ehr: str | None  # what the EHR holds (None: nothing)
    payer: str | None  # what the payer holds (None: nothing, e.g. no end date)


@dataclass(frozen=True)
class CoverageRecord:
    """The Coverage to `create` or `update` in the EHR, and why."""

    action: Literal["create", "update"]
    resource: dict[str, Any]
    differences: tuple[Difference, ...]

    @property
    def plan_name(self) -> str | None:
        for item in self.resource.get("class") or []:
            if _class_code(item) == "plan":
                return str(item.get("name") or item.get("value") or "") or None
        return None


def _codes(concept: Any) -> set[str]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return {str(c.get("code")) for c in codings or [] if isinstance(c, dict) and c.get("code")}


def _class_code(item: Any) -> str | None:
    codes = _codes(item.get("type")) if isinstance(item, dict) else set()
    return min(codes) if codes else None


def _member_identifier(coverage: dict[str, Any]) -> dict[str, Any] | None:
    for identifier in coverage.get("identifier") or []:
        if (
            isinstance(identifier, dict)
            and "MB" in _codes(identifier.get("type"))
            and identifier.get("value")
        ):
            return dict(identifier)
    return None


def _period_text(period: Any) -> str | None:
    if not isinstance(period, dict) or not (period.get("start") or period.get("end")):
        return None
    start, end = period.get("start"), period.get("end")
    if not end:
        return f"from {str(start)[:10]}, no end date"
    return f"{str(start)[:10]} to {str(end)[:10]}" if start else f"until {str(end)[:10]}"


def _period_dates(period: Any) -> tuple[str | None, str | None]:
    if not isinstance(period, dict):
        return None, None
    start, end = period.get("start"), period.get("end")
    return (str(start)[:10] if start else None, str(end)[:10] if end else None)


def _class_text(item: dict[str, Any]) -> str:
    value, name = item.get("value"), item.get("name")
    return f"{value} ({name})" if name and name != value else str(value)


def _member_id_difference(
    ehr: dict[str, Any], payer_member: dict[str, Any] | None, updated: dict[str, Any]
) -> Difference | None:
    """Compare member ids and put the payer's member-number identifier on `updated` when it
    is wrong or missing. Returns the difference when it counts as one (see module docstring)."""
    if payer_member is None:
        return None
    value = str(payer_member["value"])
    identifiers = [i for i in updated.get("identifier") or [] if isinstance(i, dict)]
    if any(str(i.get("value")) == value for i in identifiers):
        return None
    wrong = [i for i in identifiers if "MB" in _codes(i.get("type"))]
    kept = [i for i in identifiers if "MB" not in _codes(i.get("type"))]
    updated["identifier"] = [*kept, payer_member]
    if wrong:
        return Difference("member id", str(wrong[0].get("value")), value)
    if str(ehr.get("subscriberId") or "") != value:
        return Difference("member id", None, value)
    return None  # the EHR knows the member id as the subscriber id: filled in, not a reason


def coverage_update(ehr: dict[str, Any], member: dict[str, Any]) -> CoverageRecord | None:
    """The EHR's Coverage corrected from the payer's member record, or None when it already
    agrees with it (see the module docstring for what is compared)."""
    updated = json_copy(ehr)
    differences: list[Difference] = []
    subscriber_id = member.get("subscriberId")
    if subscriber_id and ehr.get("subscriberId") != subscriber_id:
        differences.append(Difference("subscriber id", ehr.get("subscriberId"), subscriber_id))
        updated["subscriberId"] = subscriber_id
    member_id = _member_id_difference(ehr, _member_identifier(member), updated)
    if member_id is not None:
        differences.append(member_id)
    status = member.get("status")
    if status and ehr.get("status") != status:
        differences.append(Difference("status", ehr.get("status"), status))
        updated["status"] = status
    period = member.get("period")
    if _period_text(period) and _period_dates(ehr.get("period")) != _period_dates(period):
        differences.append(
            Difference("coverage period", _period_text(ehr.get("period")), _period_text(period))
        )
        updated["period"] = json_copy(period)
    classes = [c for c in updated.get("class") or [] if isinstance(c, dict)]
    for item in member.get("class") or []:
        code = _class_code(item)
        if code is None or not item.get("value"):
            continue
        theirs = [c for c in classes if _class_code(c) == code]
        if any(c.get("value") == item["value"] for c in theirs):
            continue
        label = _CLASS_LABELS.get(code, f"{code} class")
        differences.append(
            Difference(label, _class_text(theirs[0]) if theirs else None, _class_text(item))
        )
        classes = [c for c in classes if _class_code(c) != code] + [_class(item)]
    if not differences:
        return None
    if classes:
        updated["class"] = classes
    for element in ("relationship", "dependent"):
        if member.get(element) and not updated.get(element):
            updated[element] = json_copy(member[element])
    return CoverageRecord("update", updated, tuple(differences))


class RememberedUpdates:
    """`coverage_update` for the most recent (EHR Coverage, payer record) pairs.

    Every hook about a patient's orders (order-select, order-sign, order-dispatch...) carries
    the same EHR Coverage, and the payer's record changes only with a new version, so the same
    comparison would be made again and again. The key is the EHR Coverage as sent (its JSON)
    and the payer record's id and version; a record without a version is compared anew. The
    records handed out are shared: callers only read them (they go into a response as sent).
    """

    def __init__(self, size: int = 1024) -> None:
        self._held: Lru[tuple[bytes, str, str], CoverageRecord | None] = Lru(size)

    def update(self, ehr: dict[str, Any], member: dict[str, Any]) -> CoverageRecord | None:
        version = (member.get("meta") or {}).get("versionId")
        if not member.get("id") or not version:
            return coverage_update(ehr, member)
        key = (orjson.dumps(ehr), str(member["id"]), str(version))
        held = self._held
        if key in held:
            return held.get(key)
        record = coverage_update(ehr, member)
        held.put(key, record)
        return record


def _class(item: dict[str, Any]) -> dict[str, Any]:
    """The payer's class, typed with the THO coverage-class system (which profile-coverage's
    `plan` and `group` slices match on)."""
    code = _class_code(item)
    result: dict[str, Any] = json_copy(item)
    if code in _CLASS_LABELS:
        display = code.capitalize()
        result["type"] = {"coding": [{"system": COVERAGE_CLASS, "code": code, "display": display}]}
    return result


def coverage_create(
    member: dict[str, Any], *, patient_reference: str, payor: dict[str, Any]
) -> CoverageRecord:
    """A new Coverage for the EHR from the payer's member record: the EHR's patient as
    beneficiary (and subscriber when the member is the subscriber), the payer as `payor`."""
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "meta": {"profile": [CRD_COVERAGE_PROFILE]},
    }
    member_id = _member_identifier(member)
    if member_id is not None:
        resource["identifier"] = [member_id]
    resource["status"] = member.get("status", "active")
    if member.get("type"):
        resource["type"] = json_copy(member["type"])
    self_insured = "self" in _codes(member.get("relationship"))
    if self_insured:
        resource["subscriber"] = {"reference": patient_reference}
    if member.get("subscriberId"):
        resource["subscriberId"] = member["subscriberId"]
    resource["beneficiary"] = {"reference": patient_reference}
    for element in ("dependent", "relationship", "period"):
        if member.get(element):
            resource[element] = json_copy(member[element])
    resource["payor"] = [payor]
    classes = [_class(c) for c in member.get("class") or [] if isinstance(c, dict)]
    if classes:
        resource["class"] = classes
    differences = [Difference("member id", None, member_id["value"])] if member_id else []
    if resource.get("subscriberId"):
        differences.append(Difference("subscriber id", None, resource["subscriberId"]))
    differences.extend(
        Difference(_CLASS_LABELS.get(str(_class_code(c)), "class"), None, _class_text(c))
        for c in classes
    )
    if _period_text(resource.get("period")):
        differences.append(Difference("coverage period", None, _period_text(resource["period"])))
    return CoverageRecord("create", resource, tuple(differences))
