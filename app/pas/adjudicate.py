"""Adjudication of a PAS request by the coverage rules (the same topics CRD answers from).

Per request: the member is matched to the payer's own Coverage (`find_membership`, shared with
CRD). Per item, in this order:

1. cancelled items (certificationType 3, or the infoCancelled modifier) -> C;
2. no matching member -> A3 and a `ClaimResponse.error` (X12 AAA 75, correct and resubmit);
   coverage not active today -> A3 (administrative);
3. the topic decision (`app.rules.engine.decide`) for the item's service: the item's
   `productOrService` first, then the codes of the order it points at (`requestedService`);
4. not covered by the member's plan (e.g. a benefit exclusion) -> A3 with the topic's reason;
5. a non-expired CRD coverage assertion for this order that said no authorization is needed,
   for the same member -> A1 (the payer honours what it told the ordering provider);
6. no authorization needed: by an exemption (gold card, diagnosis) -> A1; otherwise -> NA
   ("no action required"), with the reason;
7. authorization needed: any of the topic's `auto-approval` criteria holds over the request
   (`%claim`, `%bundle`, `%questionnaireResponse`, and the order-time variables) -> A1;
8. otherwise -> A4, pended for a clinician; when the topic needs documentation that the request
   does not carry, the response asks for it (CommunicationRequest and Task).

No medical-necessity denial is ever automatic: A3 only comes from administrative facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from app.pas.bundle import Entry, RequestBundle
from app.pas.codes import (
    CERTIFICATION_CANCEL,
    CORRECT_AND_RESUBMIT,
    CRD_COVERAGE_INFORMATION,
    EXPEDITED_LEVELS,
    EXT_ADMIN_REFERENCE_NUMBER,
    EXT_AUTHORIZATION_NUMBER,
    EXT_CERTIFICATION_TYPE,
    EXT_INFO_CANCELLED,
    EXT_ITEM_TRACE_NUMBER,
    EXT_LEVEL_OF_SERVICE,
    EXT_REQUESTED_SERVICE,
    EXT_TRANSMISSION_IDENTIFIERS,
    SUBSCRIBER_NOT_FOUND,
    ReviewAction,
)
from app.rules.codes import canonical_system, normalize_code
from app.rules.engine import Decision, OrderContext, decide, matching_topics
from app.rules.loader import TopicSet
from app.rules.orders import order_codings
from app.store.assertions import AssertionStore
from app.store.repository import ResourceStore
from app.um.deadlines import Priority
from cds_hooks.membership import Membership, find_membership

log = logging.getLogger("greenlight.pas")

DEFAULT_VALID_DAYS = 90


@dataclass(frozen=True)
class AdministrativeError:
    """A request-level business error (X12 AAA), reported in `ClaimResponse.error`."""

    code: tuple[str, str]
    followup: tuple[str, str]
    element: str
    path: str
    text: str


@dataclass
class ItemResult:
    """The payer's answer for one Claim.item."""

    sequence: int
    action: ReviewAction
    reasons: tuple[str, ...] = ()
    topic_id: str | None = None
    questionnaires: tuple[str, ...] = ()  # documentation asked for (pended, docs missing)
    valid_days: int = DEFAULT_VALID_DAYS
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass
class Adjudication:
    """The answer for a whole request, with what $inquire and subscriptions match it on."""

    items: list[ItemResult]
    errors: list[AdministrativeError]
    priority: Priority
    member_coverage_id: str | None
    plan: str | None
    keys: set[tuple[str, str]]
    trace: dict[str, Any]
    cancelled: bool = False  # the whole request was cancelled (Claim-level certificationType 3)

    @property
    def pended(self) -> bool:
        return any(item.action == "A4" for item in self.items)

    @property
    def case_status(self) -> str:
        """The review case's status at submission (see `app.um.cases`)."""
        actions = {item.action for item in self.items}
        if "A4" in actions:
            return "pended"
        if self.cancelled or (actions and actions <= {"C"}):
            return "cancelled"
        if "A3" in actions:
            return "not-certified"
        if "A1" in actions:
            return "certified"
        return "not-required"


def extension(node: dict[str, Any], url: str) -> dict[str, Any] | None:
    for item in node.get("extension") or []:
        if isinstance(item, dict) and item.get("url") == url:
            return item
    return None


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code")) for c in concept.get("coding") or [] if isinstance(c, dict)}


def priority_of(claim: dict[str, Any]) -> Priority:
    """Expedited when the level of service is urgent or emergency, or the priority is stat."""
    level = extension(claim, EXT_LEVEL_OF_SERVICE)
    if level is not None and _codes(level.get("valueCodeableConcept")) & EXPEDITED_LEVELS:
        return "expedited"
    if "stat" in _codes(claim.get("priority")):
        return "expedited"
    return "standard"


def item_cancelled(item: dict[str, Any]) -> bool:
    cancel = extension(item, EXT_CERTIFICATION_TYPE)
    if cancel is not None and CERTIFICATION_CANCEL in _codes(cancel.get("valueCodeableConcept")):
        return True
    return any(
        isinstance(m, dict) and m.get("url") == EXT_INFO_CANCELLED and m.get("valueBoolean")
        for m in item.get("modifierExtension") or []
    )


def identifier_values(resource: dict[str, Any] | None) -> set[str]:
    return {
        str(i["value"])
        for i in (resource or {}).get("identifier") or []
        if isinstance(i, dict) and i.get("value")
    }


def _practitioner(request: RequestBundle, entry: Entry | None) -> Entry | None:
    """A Practitioner, or the practitioner of a PractitionerRole."""
    if entry is None:
        return None
    if entry.type == "Practitioner":
        return entry
    if entry.type == "PractitionerRole":
        return _practitioner(request, request.resolve(entry.resource.get("practitioner"), entry))
    return None


class _ItemContext:
    """Where one item's inputs come from in the Bundle."""

    def __init__(self, request: RequestBundle, item: dict[str, Any]) -> None:
        self.request = request
        self.item = item
        claim = request.claim
        requested = extension(item, EXT_REQUESTED_SERVICE)
        self.order = request.resolve(requested.get("valueReference"), claim) if requested else None
        self.care_team = self._care_team()

    def _care_team(self) -> list[Entry]:
        claim = self.request.claim
        members = claim.resource.get("careTeam") or []
        wanted = self.item.get("careTeamSequence") or [m.get("sequence") for m in members]
        found = []
        for member in members:
            if isinstance(member, dict) and member.get("sequence") in wanted:
                entry = self.request.resolve(member.get("provider"), claim)
                if entry is not None:
                    found.append(entry)
        return found

    def practitioner(self) -> Entry | None:
        if self.order is not None:
            requester = self.request.resolve(self.order.resource.get("requester"), self.order)
            found = _practitioner(self.request, requester)
            if found is not None:
                return found
        for member in self.care_team:
            found = _practitioner(self.request, member)
            if found is not None:
                return found
        return None

    def location(self) -> dict[str, Any] | None:
        claim = self.request.claim
        location = self.request.resource(self.item.get("locationReference"), claim)
        if location is not None:
            return location
        if self.order is not None:
            for reference in self.order.resource.get("locationReference") or []:
                found = self.request.resource(reference, self.order)
                if found is not None:
                    return found
        for member in self.care_team:
            if member.type == "PractitionerRole":
                for reference in member.resource.get("location") or []:
                    found = self.request.resource(reference, member)
                    if found is not None:
                        return found
        return None

    def diagnoses(self) -> list[dict[str, Any]]:
        wanted = self.item.get("diagnosisSequence")
        found = []
        for diagnosis in self.request.claim.resource.get("diagnosis") or []:
            if not isinstance(diagnosis, dict):
                continue
            if wanted and diagnosis.get("sequence") not in wanted:
                continue
            concept = diagnosis.get("diagnosisCodeableConcept")
            if isinstance(concept, dict):
                found.append(concept)
        return found

    def service_order(self) -> dict[str, Any]:
        """The item as an order: its productOrService, diagnoses, subject and requester."""
        claim = self.request.claim.resource
        order: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": f"claim-item-{self.item.get('sequence')}",
            "status": "active",
            "intent": "order",
            "code": self.item.get("productOrService") or {},
            "subject": claim.get("patient"),
        }
        diagnoses = self.diagnoses()
        if diagnoses:
            order["reasonCode"] = diagnoses
        return order


def _questionnaire_response(request: RequestBundle, wanted: tuple[str, ...]) -> dict[str, Any]:
    """The DTR QuestionnaireResponse for the topic (supporting info first), or an empty one."""
    claim = request.claim
    candidates = []
    for info in claim.resource.get("supportingInfo") or []:
        entry = request.resolve((info or {}).get("valueReference"), claim)
        if entry is not None and entry.type == "QuestionnaireResponse":
            candidates.append(entry.resource)
    candidates.extend(
        e.resource for e in request.of_type("QuestionnaireResponse") if e.resource not in candidates
    )
    canonical = {q.split("|", 1)[0] for q in wanted}
    for response in candidates:
        if str(response.get("questionnaire") or "").split("|", 1)[0] in canonical:
            return response
    return candidates[0] if candidates else {}


def _code_keys(codings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """What an order asks for, comparable across requests (canonical system, code)."""
    keys = set()
    for coding in codings:
        if isinstance(coding, dict) and coding.get("code"):
            system = canonical_system(coding.get("system"))
            keys.add((system, normalize_code(system, str(coding["code"]))))
    return keys


def _assertion_ids(order: dict[str, Any]) -> list[str]:
    ids = []
    for info in order.get("extension") or []:
        if isinstance(info, dict) and info.get("url") == CRD_COVERAGE_INFORMATION:
            for part in info.get("extension") or []:
                if part.get("url") == "coverage-assertion-id" and part.get("valueString"):
                    ids.append(str(part["valueString"]))
    return ids


class Adjudicator:
    """Answers PAS requests from the coverage topics, the member's coverage and CRD assertions."""

    def __init__(self, store: ResourceStore, assertions: AssertionStore, topics: TopicSet) -> None:
        self.store = store
        self.assertions = assertions
        self.topics = topics

    async def adjudicate(self, request: RequestBundle, today: date) -> Adjudication:
        claim = request.claim
        patient = request.resource(claim.resource.get("patient"), claim)
        coverage_entry = self._coverage(request)
        coverage = coverage_entry.resource if coverage_entry else None
        membership = (
            await find_membership(self.store, coverage, patient)
            if coverage is not None
            else Membership({}, None)
        )
        errors: list[AdministrativeError] = []
        administrative: str | None = None
        if not membership.found:
            where = coverage_entry.path if coverage_entry else f"{claim.path}.insurance"
            errors.append(
                AdministrativeError(
                    code=SUBSCRIBER_NOT_FOUND,
                    followup=CORRECT_AND_RESUBMIT,
                    element="Coverage.subscriberId",
                    path=where,
                    text="No member of this payer matches the submitted coverage "
                    "(member or subscriber id).",
                )
            )
            administrative = "No member of this payer matches the submitted coverage."
        elif not membership.active_on(today):
            administrative = f"The member's coverage is not active on {today.isoformat()}."
        cancel_all = item_cancelled(claim.resource)  # Claim-level certificationType 3
        items = []
        for item in claim.resource.get("item") or []:
            if not isinstance(item, dict):
                continue
            if cancel_all:
                sequence = int(item.get("sequence") or 0)
                trace = {"sequence": sequence, "rule": "request-cancelled"}
                items.append(
                    ItemResult(sequence, "C", ("The request was cancelled.",), trace=trace)
                )
                continue
            items.append(
                await self._item(request, item, patient, membership, administrative, today)
            )
        keys = request_keys(request, patient, coverage, membership.member_coverage)
        return Adjudication(
            items=items,
            errors=errors,
            priority=priority_of(claim.resource),
            member_coverage_id=(membership.member_coverage or {}).get("id"),
            plan=membership.plan,
            keys=keys,
            cancelled=cancel_all,
            trace={
                "member": {
                    "found": membership.found,
                    "coverage": (membership.member_coverage or {}).get("id"),
                    "plan": membership.plan,
                    "active": membership.found and membership.active_on(today),
                },
                "date": today.isoformat(),
                "items": [i.trace for i in items],
            },
        )

    def _coverage(self, request: RequestBundle) -> Entry | None:
        claim = request.claim
        insurances = [i for i in claim.resource.get("insurance") or [] if isinstance(i, dict)]
        ordered = sorted(insurances, key=lambda i: not i.get("focal"))
        for insurance in ordered:
            entry = request.resolve(insurance.get("coverage"), claim)
            if entry is not None and entry.type == "Coverage":
                return entry
        return None

    async def _item(
        self,
        request: RequestBundle,
        item: dict[str, Any],
        patient: dict[str, Any] | None,
        membership: Membership,
        administrative: str | None,
        today: date,
    ) -> ItemResult:
        sequence = int(item.get("sequence") or 0)
        trace: dict[str, Any] = {"sequence": sequence}
        if item_cancelled(item):
            trace["rule"] = "cancelled"
            return ItemResult(sequence, "C", ("Cancelled by the requester.",), trace=trace)
        if administrative is not None:
            trace["rule"] = "membership"
            return ItemResult(sequence, "A3", (administrative,), trace=trace)
        context = _ItemContext(request, item)
        practitioner = context.practitioner()
        order = self._order(context, membership.plan)
        ctx = OrderContext(
            order=order,
            patient=patient,
            coverage=membership.member_coverage,
            practitioner=practitioner.resource if practitioner else None,
            location=context.location(),
            encounter=self._encounter(request),
            plan=membership.plan,
        )
        decision = decide(self.topics, ctx, today)
        trace.update(
            {
                "order": f"{order.get('resourceType')}/{order.get('id')}",
                "codes": [f"{c.get('system')}|{c.get('code')}" for c in order_codings(order)],
                "orderingNpi": ctx.ordering_npi,
                "topic": decision.topic_id,
                "covered": decision.covered,
                "paNeeded": decision.pa_needed,
                "applied": list(decision.applied),
            }
        )
        valid_days = (
            (decision.expiry_date - today).days if decision.expiry_date else DEFAULT_VALID_DAYS
        )
        result = ItemResult(
            sequence, "A4", topic_id=decision.topic_id, valid_days=valid_days, trace=trace
        )
        reasons = tuple(r.text or r.display or r.code or "" for r in decision.reasons)
        if decision.covered == "not-covered":
            trace["rule"] = "not-covered"
            return replace(result, action="A3", reasons=reasons or ("Not a covered service.",))
        honoured = await self._honoured_assertion(context, membership)
        if honoured is not None:
            trace["rule"] = "crd-assertion"
            trace["assertion"] = honoured
            return replace(
                result,
                action="A1",
                reasons=(
                    f"No prior authorization was needed when ordered (CRD coverage assertion "
                    f"{honoured}).",
                ),
            )
        if decision.pa_needed == "no-auth":
            if any(step.startswith("exemption:") for step in decision.applied):
                trace["rule"] = "exemption"
                return replace(result, action="A1", reasons=reasons)
            trace["rule"] = "no-auth"
            return replace(
                result, action="NA", reasons=reasons or ("No prior authorization is required.",)
            )
        met = self._criteria(request, ctx, decision)
        trace["criteria"] = met
        approved = [name for name, value in met.items() if value]
        if approved:
            trace["rule"] = "auto-approval"
            compiled = self.topics.topics[str(decision.topic_id)]
            descriptions = [c.description for c, _ in compiled.approval if c.id in approved]
            return replace(
                result, action="A1", reasons=tuple(f"Criteria met: {d}." for d in descriptions)
            )
        trace["rule"] = "pended"
        documented = bool(_questionnaire_response(request, decision.questionnaires))
        asked = decision.questionnaires if decision.doc_needed and not documented else ()
        text = "Pended for clinical review."
        if documented:
            text += " The documentation submitted does not meet the automatic approval criteria."
        if asked:
            text += " Documentation is needed: " + (decision.instructions or "see the policy.")
        return replace(result, action="A4", reasons=(text,), questionnaires=asked)

    def _order(self, context: _ItemContext, plan: str | None) -> dict[str, Any]:
        """The item itself when a topic names its service, else the order it points at."""
        as_item = context.service_order()
        if matching_topics(self.topics, as_item, plan):
            return as_item
        if context.order is not None and matching_topics(self.topics, context.order.resource, plan):
            return context.order.resource
        return context.order.resource if context.order is not None else as_item

    def _encounter(self, request: RequestBundle) -> dict[str, Any] | None:
        claim = request.claim
        for item in claim.resource.get("extension") or []:
            entry = request.resolve((item or {}).get("valueReference"), claim)
            if entry is not None and entry.type == "Encounter":
                return entry.resource
        return None

    def _criteria(
        self, request: RequestBundle, ctx: OrderContext, decision: Decision
    ) -> dict[str, bool]:
        compiled = self.topics.topics.get(str(decision.topic_id))
        if compiled is None or not compiled.approval:
            return {}
        environment = {
            **ctx.environment(),
            "claim": request.claim.resource,
            "bundle": request.bundle,
            "questionnaireResponse": _questionnaire_response(request, decision.questionnaires),
        }
        results: dict[str, bool] = {}
        for criterion, function in compiled.approval:
            try:
                results[criterion.id] = function(ctx.order, environment) == [True]
            except Exception:  # a broken expression never approves; it is logged
                log.exception("approval criterion %s.%s failed", compiled.id, criterion.id)
                results[criterion.id] = False
        return results

    async def _honoured_assertion(
        self, context: _ItemContext, membership: Membership
    ) -> str | None:
        if context.order is None:
            return None
        order = context.order.resource
        reference = f"{order.get('resourceType')}/{order.get('id')}"
        codes_now = _code_keys(order_codings(order))
        now = int(datetime.now(UTC).timestamp() * 1_000_000)
        for assertion_id in _assertion_ids(order):
            assertion = await self.assertions.get(assertion_id)
            if assertion is None or assertion.expires_us <= now:
                continue
            if assertion.member_coverage_id != (membership.member_coverage or {}).get("id"):
                continue
            answered = next((d for d in assertion.decisions if d.order_ref == reference), None)
            if answered is None or answered.decision.pa_needed != "no-auth":
                continue
            # the answer holds for the order as it was asked about: a changed code is a new order
            if _code_keys(answered.inputs.get("codes") or []) != codes_now:
                continue
            return assertion_id
        return None


def request_keys(
    request: RequestBundle,
    patient: dict[str, Any] | None,
    coverage: dict[str, Any] | None,
    member_coverage: dict[str, Any] | None = None,
) -> set[tuple[str, str]]:
    """What a request is found by: `member` ids (patient, submitted and matched coverage),
    `submitter` ids (Claim.provider, ISA06 sender), `provider` ids (the submitter, care team
    and ordering practitioners), and `claim` ids (Claim.identifier, item trace numbers)."""
    claim = request.claim
    keys: set[tuple[str, str]] = set()
    for source in (coverage, member_coverage):
        for value in identifier_values(source):
            keys.add(("member", value))
        if source and source.get("subscriberId"):
            keys.add(("member", str(source["subscriberId"])))
    for value in identifier_values(patient):
        keys.add(("member", value))
    submitter = request.resource(claim.resource.get("provider"), claim)
    for value in identifier_values(submitter):
        keys.add(("submitter", value))
        keys.add(("provider", value))
    transmission = extension(claim.resource, EXT_TRANSMISSION_IDENTIFIERS)
    for part in (transmission or {}).get("extension") or []:
        if "sender" in str(part.get("url", "")).lower() and part.get("valueString"):
            keys.add(("submitter", str(part["valueString"])))
    for member in claim.resource.get("careTeam") or []:
        entry = request.resolve((member or {}).get("provider"), claim)
        practitioner = _practitioner(request, entry)
        for found in (entry, practitioner):
            for value in identifier_values(found.resource if found else None):
                keys.add(("provider", value))
    for order_entry in request.entries:
        if order_entry.type in ("ServiceRequest", "DeviceRequest", "MedicationRequest"):
            requester = request.resolve(order_entry.resource.get("requester"), order_entry)
            for value in identifier_values(requester.resource if requester else None):
                keys.add(("provider", value))
    for value in identifier_values(claim.resource):
        keys.add(("claim", value))
    for item in claim.resource.get("item") or []:
        trace_number = extension(item, EXT_ITEM_TRACE_NUMBER)
        trace_value = ((trace_number or {}).get("valueIdentifier") or {}).get("value")
        if trace_value:
            keys.add(("claim", str(trace_value)))
        for url in (EXT_AUTHORIZATION_NUMBER, EXT_ADMIN_REFERENCE_NUMBER):
            number = (extension(item, url) or {}).get("valueString")
            if number:
                keys.add(("claim", str(number)))
    return {(kind, value[:255]) for kind, value in keys}
