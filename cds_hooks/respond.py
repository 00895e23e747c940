"""Answering one hook call: orders in scope, EHR data, membership, decisions, the coverage
assertion, cards, system actions and the audit record.

- Orders come from the context (draftOrders, selections, appointments) or, for order-dispatch and
  the encounter hooks, from prefetch or the EHR.
- The client's Coverage comes from prefetch or the EHR; it is matched to the payer's member.
  No member, or no active coverage, is an answer (`not-covered` with the reason), not an error:
  reason `no-member-found` (CRD resp-44), `no-active-coverage` or, when one member has several
  matching coverages, `coverage-not-found` (resp-45). Required data that was neither prefetched
  nor fetchable answers 412 (found-32). Optional data the EHR failed to give (the patient, the
  orderer, the order's Location) leaves what depends on it `indeterminate` with the reason
  `technical` (resp-43, decided by the engine); a member that only the patient could have told
  apart is unidentified for the same technical reason, not absent.
- One coverage assertion per coverage holds every order's decision (resp-32); a repeated call
  with the same inputs reuses it (resp-36). Every call is recorded as an AuditEvent holding the
  hookInstance and the response as sent (CRD found-37): `answer` builds both, `record` stores
  the event and only then gives the body to send.
- Cards about some of the orders name them in `detail` (CRD dev-24).
- Where the payer's member record knows more than the EHR's Coverage, or the EHR has no
  Coverage but the patient is a member found by demographics, a Create or update coverage
  information card (`insurance`, option of the same code) carries the Coverage to update or
  create (`coverage_record`). CRD 2.2 callers get updates only (2.2 dropped `create`), and not
  on order-select and order-sign, hooks clinicians trigger (CRD resp-70).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import orjson

from app.auth.cds_jwt import CdsCaller
from app.fhir.outcomes import FhirError, Issue
from app.rules.engine import INDETERMINATE, Decision, OrderContext, decide, technical_reason
from app.rules.loader import TopicSet
from app.rules.orders import order_codings
from app.rules.topic import CRD_TEMP, Reason
from app.store.assertions import AssertionStore, CoverageAssertion, OrderDecision
from app.store.ids import new_row_id
from app.store.repository import ResourceStore
from app.store.stored import now_us
from cds_hooks import cards
from cds_hooks.audit import hook_audit_event
from cds_hooks.coverage_information import (
    annotated,
    coverage_information,
    existing_information,
    same_answer,
    update_action,
)
from cds_hooks.coverage_record import RememberedUpdates, coverage_create
from cds_hooks.ehr import EhrData, EhrDataUnavailableError, gather_reads
from cds_hooks.membership import Membership, find_member_by_demographics, find_membership
from cds_hooks.orders import (
    REQUEST_ORDER_TYPES,
    order_location,
    ordering_practitioner,
    orders_in_scope,
)
from cds_hooks.request import HookRequest
from cds_hooks.service import HookService, configuration

log = logging.getLogger("greenlight.crd")

# Hooks clinical users trigger: no coverage record cards there for CRD 2.2 callers (resp-70).
CLINICIAN_HOOKS = frozenset({"order-select", "order-sign"})

NO_MEMBER = Reason(
    code="no-member-found",
    system=CRD_TEMP,
    display="Member not found",
    text="No member of this health plan matches the coverage's member id.",
)
NOT_ACTIVE = Reason(
    code="no-active-coverage",
    system=CRD_TEMP,
    display="Coverage not active",
    text="The member's coverage is not active on the date of service.",
)
COVERAGE_NOT_FOUND = Reason(
    code="coverage-not-found",
    system=CRD_TEMP,
    display="Coverage not found",
    text="The member has more than one coverage matching the coverage's ids: none can be chosen.",
)


@dataclass(frozen=True)
class CrdDependencies:
    """What answering a hook needs, built once per application."""

    store: ResourceStore
    assertions: AssertionStore
    topics: TopicSet
    http: httpx.AsyncClient
    payer_name: str
    dtr_app_url: str | None = None


def _fingerprint(
    rules: str, membership: Membership, contexts: list[OrderContext], day: date
) -> str:
    """Same inputs under the same rules (`TopicSet.version`), same fingerprint, whatever the hook
    (order-select, then order-sign)."""
    material = {
        "rules": rules,
        "coverage": membership.client_reference,
        "member": (membership.member_coverage or {}).get("id"),
        "plan": membership.plan,
        "day": day.isoformat(),
        "orders": sorted(
            (
                f"{c.order.get('resourceType')}/{c.order.get('id')}",
                sorted(f"{x.get('system')}|{x.get('code')}" for x in order_codings(c.order)),
                c.ordering_npi,
                orjson.dumps((c.location or {}).get("type"), option=orjson.OPT_SORT_KEYS).decode(),
                sorted(c.unavailable),  # an answer given without some input is not reused with it
            )
            for c in contexts
        ),
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _administrative(covered_reason: Reason) -> Decision:
    return Decision(
        topic_id=None,
        topic_title=None,
        covered="not-covered",
        pa_needed=None,
        reasons=(covered_reason,),
        applied=("membership",),
    )


def _unidentified(why: str) -> Decision:
    """The answer when the EHR's failure leaves the member unidentified (CRD resp-43)."""
    return Decision(
        topic_id=None,
        topic_title=None,
        covered=INDETERMINATE,
        pa_needed=INDETERMINATE,
        info_needed=("OTH",),
        reasons=(technical_reason("the member, and so coverage,", {"patient": why}),),
        applied=("membership", "unknown:member"),
    )


def _requester(order: dict[str, Any], user: Any) -> dict[str, Any] | None:
    """Who orders a companion: the triggering order's requester, else the signing user."""
    requester = order.get("requester")
    if isinstance(requester, dict) and (requester.get("reference") or requester.get("identifier")):
        return requester
    if isinstance(user, str) and user.startswith(("Practitioner/", "PractitionerRole/")):
        return {"reference": user}
    return None


def _npi(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == "http://hl7.org/fhir/sid/us-npi" and identifier.get("value"):
            return str(identifier["value"])
    return None


def _no_coverage(request: HookRequest, resources: list[dict[str, Any]]) -> bool:
    """Whether the EHR said it has no Coverage (prefetch `null`, an empty Bundle or search), as
    opposed to an OperationOutcome: the EHR could not look (CDS Hooks prefetch semantics)."""
    if any(r.get("resourceType") == "Coverage" for r in resources):
        return False
    sent = request.prefetch.get("coverage")
    if not isinstance(sent, dict):
        return True
    entries = (sent.get("entry") or []) if sent.get("resourceType") == "Bundle" else [sent]
    return not any(
        isinstance(e, dict) and (e.get("resource") or e).get("resourceType") == "OperationOutcome"
        for e in entries
    )


def _for_hook(service: HookService, decision: Decision) -> Decision:
    """Supporting hooks never ask for documentation (CRD hook-19, resp-27)."""
    if service.primary or not decision.doc_needed:
        return decision
    return replace(decision, doc_needed=None, doc_purpose=(), questionnaires=())


@dataclass(frozen=True)
class HookAnswer:
    """A hook call's response body, and the AuditEvent recording the call and that body: stored
    (`CrdResponder.record`) before the body is sent."""

    body: bytes
    audit_event: dict[str, Any]


class CrdResponder:
    """Answers hook calls for every service."""

    def __init__(self, deps: CrdDependencies) -> None:
        self.deps = deps
        self._coverage_updates = RememberedUpdates()

    async def record(self, answer: HookAnswer) -> bytes:
        """The answer's body, once its AuditEvent is committed.

        While it waits for the COMMIT it shares with the other calls of its batch, a call
        holds only its answer: the request's objects (prefetch, orders, membership, the
        response as built) were freed when `answer` returned, not after the COMMIT together
        with every other call's. Measured in-process: 8-9% less CPU per call than with the
        request held through the wait (`bench/results/crd.md`, *Session 13*).
        """
        await self.deps.store.create_alone(answer.audit_event)
        return answer.body

    async def answer(
        self, service: HookService, request: HookRequest, caller: CdsCaller
    ) -> HookAnswer:
        """The response to a hook call and its audit record, not yet stored (`record`)."""
        today = datetime.now(UTC).date()
        options = configuration(request)
        ehr = EhrData(request, self.deps.http)
        patient_id = request.patient_id or ""
        coverage_known = True  # the EHR answered for its coverage (possibly: none)
        try:
            orders, coverages, patients = await gather_reads(
                ehr,
                orders_in_scope(service, request, ehr),
                ehr.get("coverage", f"Coverage?patient={patient_id}&status=active"),
                ehr.get_optional("patient", f"Patient/{patient_id}"),
            )
        except EhrDataUnavailableError as exc:
            if service.primary or exc.key != "coverage":
                raise FhirError(
                    412,
                    [
                        Issue(
                            "error",
                            "not-found",
                            f"Needed data is missing: {exc}",
                            (f"prefetch.{exc.key}",),
                        )
                    ],
                ) from None
            orders, coverages, patients = await orders_in_scope(service, request, ehr), [], []
            coverage_known = False
        no_coverage = coverage_known and _no_coverage(request, coverages)
        coverages = [c for c in coverages if c.get("resourceType") == "Coverage" and c.get("id")]
        patient = patients[0] if patients else None
        response: dict[str, Any] = {"cards": [], "systemActions": []}
        answers: list[tuple[Membership, CoverageAssertion]] = []
        coverage_info = bool(orders and options["coverage-info"])
        memberships: list[Membership] = []
        if coverages and (coverage_info or options["insurance"]):
            for client_coverage in coverages:
                memberships.append(
                    await find_membership(
                        self.deps.store, client_coverage, patient, ehr.failure("patient")
                    )
                )
        if coverage_info and memberships:
            contexts = await gather_reads(
                ehr, *(self._order_context(request, ehr, o, patient) for o in orders)
            )
            for membership in memberships:
                assertion = await self._assertion(
                    service, membership, list(contexts), caller, today
                )
                answers.append((membership, assertion))
            sites = await self._sites(answers)
            updates: dict[str, dict[str, Any]] = {}  # order reference -> the order annotated
            for membership, assertion in answers:
                self._render(
                    service,
                    response,
                    membership,
                    assertion,
                    orders,
                    today,
                    options,
                    sites,
                    request,
                    updates,
                )
            # One update per order carrying the information of every coverage: separate updates
            # per coverage would each overwrite the other's extension when the EHR applies them.
            for reference, updated in updates.items():
                response["systemActions"].append(
                    update_action(
                        updated, f"Coverage information from {self.deps.payer_name} for {reference}"
                    )
                )
        if options["insurance"]:
            response["cards"].extend(
                await self._coverage_records(
                    service, request, memberships, no_coverage, patient, today
                )
            )
        if not service.primary and not response["systemActions"]:
            response.pop("systemActions")
        response["cards"] = response["cards"][: options["max-cards"]]
        sent = orjson.dumps(response)
        return HookAnswer(sent, hook_audit_event(service, request, caller, orders, answers, sent))

    async def _coverage_records(
        self,
        service: HookService,
        request: HookRequest,
        memberships: list[Membership],
        no_coverage: bool,
        patient: dict[str, Any] | None,
        today: date,
    ) -> list[dict[str, Any]]:
        """Create or update coverage information cards: an `update` of each EHR Coverage whose
        member record says more or otherwise, a `create` when the EHR has no Coverage and the
        patient is found by demographics (CRD 2.0.1 only)."""
        crd_22 = request.wants_crd_22
        if crd_22 and service.hook in CLINICIAN_HOOKS:
            return []  # resp-70: not for clinicians' hooks
        payer = self.deps.payer_name
        found: list[dict[str, Any]] = []
        for membership in memberships:
            if membership.member_coverage is None:
                continue
            record = self._coverage_updates.update(
                membership.client_coverage, membership.member_coverage
            )
            if record is not None:
                found.append(cards.coverage_record_card(record, payer))
        if no_coverage and not crd_22 and patient is not None and request.patient_id:
            member = await find_member_by_demographics(self.deps.store, patient, today)
            if member is not None:
                record = coverage_create(
                    member,
                    patient_reference=f"Patient/{request.patient_id}",
                    payor=await self._payor(member),
                )
                found.append(cards.coverage_record_card(record, payer))
        return found

    async def _payor(self, member: dict[str, Any]) -> dict[str, Any]:
        """The payer as the EHR can record it: by identifier and name (its id here means
        nothing to the EHR)."""
        payors = member.get("payor") or [{}]
        reference = str(payors[0].get("reference") or "")
        display = payors[0].get("display") or self.deps.payer_name
        organization = await self._read(reference) if reference.count("/") == 1 else None
        identifiers = [
            {k: v for k, v in i.items() if k in ("system", "value")}
            for i in (organization or {}).get("identifier") or []
            if isinstance(i, dict)
            and i.get("system")
            and i.get("value")
            and i.get("use") in (None, "official", "usual")
        ]
        payor: dict[str, Any] = {"display": str((organization or {}).get("name") or display)}
        if identifiers:
            payor["identifier"] = identifiers[0]
        return payor

    async def _order_context(
        self,
        request: HookRequest,
        ehr: EhrData,
        order: dict[str, Any],
        patient: dict[str, Any] | None,
    ) -> OrderContext:
        practitioner, location = await gather_reads(
            ehr, ordering_practitioner(request, ehr, order), order_location(ehr, order)
        )
        failures = (
            ("patient", ehr.failure("patient")),
            ("practitioner", practitioner.failure),
            ("location", location.failure),
        )
        return OrderContext(
            order=order,
            patient=patient,
            practitioner=practitioner.resource,
            location=location.resource,
            unavailable={name: why for name, why in failures if why},
        )

    async def _assertion(
        self,
        service: HookService,
        membership: Membership,
        contexts: list[OrderContext],
        caller: CdsCaller,
        today: date,
    ) -> CoverageAssertion:
        fingerprint = _fingerprint(self.deps.topics.version, membership, contexts, today)
        stamp = now_us()
        reusable = await self.deps.assertions.find_reusable(fingerprint, stamp)
        if reusable is not None:
            return reusable
        decisions = []
        for ctx in contexts:
            ref = f"{ctx.order['resourceType']}/{ctx.order['id']}"
            if not membership.found and membership.technical_failure:
                decision = _unidentified(membership.technical_failure)
            elif not membership.found:
                why = COVERAGE_NOT_FOUND if membership.coverage_ambiguous else NO_MEMBER
                decision = _administrative(why)
            elif not membership.active_on(today):
                decision = _administrative(NOT_ACTIVE)
            else:
                decision = decide(
                    self.deps.topics,
                    replace(ctx, coverage=membership.member_coverage, plan=membership.plan),
                    today,
                )
            inputs = {
                "order": ref,
                "codes": order_codings(ctx.order),
                "plan": membership.plan,
                "orderingNpi": ctx.ordering_npi,
                "location": (ctx.location or {}).get("type"),
            }
            if ctx.unavailable:
                inputs["unavailable"] = dict(ctx.unavailable)
            decisions.append(OrderDecision(ref, decision, inputs))
        expiry = min(
            (d.decision.expiry_date for d in decisions if d.decision.expiry_date),
            default=today + timedelta(days=1),
        )
        assertion = CoverageAssertion(
            assertion_id=new_row_id(),
            created_us=stamp,
            expires_us=int(datetime.combine(expiry, time.min, UTC).timestamp() * 1_000_000),
            fingerprint=fingerprint,
            hook=service.hook,
            decisions=tuple(decisions),
            patient_id=(membership.member_coverage or {}).get("beneficiary", {}).get("reference"),
            member_coverage_id=(membership.member_coverage or {}).get("id"),
            client_coverage_ref=membership.client_reference,
            caller=caller.issuer,
        )
        await self.deps.assertions.save(assertion)
        return assertion

    def _render(
        self,
        service: HookService,
        response: dict[str, Any],
        membership: Membership,
        assertion: CoverageAssertion,
        orders: list[dict[str, Any]],
        today: date,
        options: dict[str, Any],
        sites: dict[str, cards.Site],
        request: HookRequest,
        updates: dict[str, dict[str, Any]],
    ) -> None:
        payer = self.deps.payer_name
        crd_22 = request.wants_crd_22
        request_user = request.context.get("userId")
        authored_on = datetime.now(UTC).isoformat(timespec="seconds")
        if not membership.found and membership.technical_failure:
            response["cards"].append(
                cards.technical_card(
                    payer,
                    "the member could not be identified: the EHR could not give the patient "
                    "record needed to tell apart members sharing this id "
                    f"({membership.technical_failure})",
                )
            )
        elif not membership.found:
            why = (
                "the member has several matching coverages"
                if membership.coverage_ambiguous
                else "no member matches this coverage"
            )
            response["cards"].append(cards.no_member_card(payer, why))
        elif not membership.active_on(today):
            response["cards"].append(cards.no_member_card(payer, "the coverage is not active"))
        policies: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for order in orders:
            stored = assertion.decision_for(f"{order['resourceType']}/{order['id']}")
            if stored is None:
                continue
            decision = _for_hook(service, stored)
            extension = coverage_information(
                decision,
                coverage_reference=membership.client_reference,
                assertion_id=assertion.assertion_id,
                today=today,
                crd_22=crd_22,
            )
            existing = existing_information(order, membership.client_reference)
            if existing is None or not same_answer(existing, extension):  # resp-35
                reference = f"{order['resourceType']}/{order['id']}"
                base = updates.get(reference, order)
                updates[reference] = annotated(base, extension, membership.client_reference)
            if membership.found and membership.active_on(today):
                response["cards"].append(cards.coverage_card(order, decision, payer))
            if self.deps.dtr_app_url and decision.questionnaires and service.primary:
                response["cards"].append(
                    cards.dtr_launch_card(
                        order,
                        decision,
                        app_url=self.deps.dtr_app_url,
                        assertion_id=assertion.assertion_id,
                        coverage_reference=membership.client_reference,
                        payer_name=payer,
                    )
                )
            name = cards.order_name(order, decision)
            shared = policies.get(str(decision.policy_url))
            if shared is not None:  # one card per policy, naming every order it governs
                shared[1].append(name)
                shared[0]["detail"] = cards.policy_detail(str(decision.policy_title), shared[1])
            elif (policy := cards.policy_card(decision, payer, [name])) is not None:
                policies[str(decision.policy_url)] = (policy, [name])
                response["cards"].append(policy)
            if options["clinical-reminder"] and order["resourceType"] in REQUEST_ORDER_TYPES:
                for companion in decision.companions:
                    response["cards"].append(
                        cards.companion_order_card(
                            order,
                            companion,
                            decision=decision,
                            requester=_requester(order, request_user),
                            authored_on=authored_on,
                            payer_name=payer,
                        )
                    )
            if options["network"] and order["resourceType"] in REQUEST_ORDER_TYPES:
                for proposal in decision.site_proposals:
                    site = sites.get(proposal.location)
                    response["cards"].append(
                        cards.site_of_care_card(order, proposal, site, payer, decision)
                    )

    async def _sites(
        self, answers: list[tuple[Membership, CoverageAssertion]]
    ) -> dict[str, cards.Site]:
        """The payer's Locations proposed as sites of care: name, and NPI (the Location's own,
        else its managing organization's)."""
        wanted = {
            proposal.location
            for _, assertion in answers
            for item in assertion.decisions
            for proposal in item.decision.site_proposals
        }
        sites: dict[str, cards.Site] = {}
        for reference in wanted:
            location = await self._read(reference)
            if location is None:
                log.warning("proposed site %s is not in the payer's directory", reference)
                continue
            npi = _npi(location)
            if npi is None:
                managing = (location.get("managingOrganization") or {}).get("reference")
                organization = await self._read(str(managing)) if managing else None
                npi = _npi(organization or {})
            sites[reference] = cards.Site(str(location.get("name") or reference), npi)
        return sites

    async def _read(self, reference: str) -> dict[str, Any] | None:
        resource_type, _, resource_id = reference.partition("/")
        try:
            return (await self.deps.store.read(resource_type, resource_id)).json()
        except FhirError:
            return None
