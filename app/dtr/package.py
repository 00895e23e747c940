"""`Questionnaire/$questionnaire-package` (DTR 2.0.1): which documentation templates an order (or a
CRD coverage assertion, or an explicit canonical) needs, each packaged with what renders it.

- Orders are mapped to topics by the same decision function CRD uses (`app.rules.engine.decide`);
  a `context` that is a CRD `coverage-assertion-id` reuses the decisions stored with it (DTR
  spec-107), re-deciding only orders that were not part of it or whose codes changed (prof-1;
  other changes such as status or notes are tolerated, spec-128). A `context` that is the number
  a pended PAS response issued (DTR spec-109, PAS ainfo-3; `app.pas.dtr_context`) gives the
  documentation templates of the request's pended services; the draft response is tagged with
  the request's number (`PA_REQUEST_TAG_SYSTEM`) so the completed one is linked to it. A context
  of another member's coverage is a 400 (spec-129), an unknown one a 404 (spec-130).
- Each package is a `collection` Bundle: the Questionnaire first (dtrb-1), one draft
  QuestionnaireResponse (oper-18), the Libraries it names with `cqf-library` and, recursively,
  what they depend on (oper-12), then the value sets, expanded inline (oper-14, oper-15).
- The result is Parameters with one `PackageBundle` per Questionnaire (the output profile's slice
  name, which Inferno validates) and an `operationOutcome` for warnings (oper-9) or explanations
  (oper-8). Source data that cannot be found answers 4xx with an OperationOutcome (spec-130).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from app.dtr.adaptive import AdaptiveFlows
from app.dtr.content import (
    INLINE_EXPANSION_LIMIT,
    DtrContent,
    expand,
    is_adaptive,
    split_canonical,
)
from app.dtr.responses import PA_REQUEST_TAG_SYSTEM
from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError, Issue, operation_outcome
from app.pas.dtr_context import find_requests
from app.rules.engine import Decision, OrderContext, decide
from app.rules.loader import TopicSet
from app.rules.orders import ORDER_TYPES, order_codings
from app.store.assertions import AssertionStore, CoverageAssertion
from app.store.repository import ResourceStore
from cds_hooks.coverage_information import coverage_information
from cds_hooks.membership import Membership, find_membership

QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
INTENDED_USE = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/intendedUse"
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
DTR_ADAPT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt"
CONTEXT_PATH = "Parameters.parameter[context].valueString"
PACKAGE_ORDER_TYPES = frozenset(
    (*ORDER_TYPES, "SupplyRequest", "ImmunizationRecommendation")
)  # the input profile's order types


@dataclass(frozen=True)
class PackageInput:
    """The operation's input parameters."""

    coverage: dict[str, Any]
    orders: tuple[dict[str, Any], ...] = ()
    questionnaires: tuple[str, ...] = ()
    context: str | None = None
    changed_since: datetime | None = None


@dataclass(frozen=True)
class PackageServices:
    store: ResourceStore
    assertions: AssertionStore
    topics: TopicSet
    content: DtrContent
    flows: AdaptiveFlows
    fhir_base: str


@dataclass
class _Selection:
    """A Questionnaire chosen for the package, and why (orders, decisions)."""

    questionnaire: dict[str, Any]
    orders: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    pa_requests: list[str] = field(default_factory=list)  # reference numbers (PAS context)


def _bad(message: str, *expression: str, code: str = "invalid") -> FhirError:
    return FhirError.single(400, code, message, *expression)


def _instant(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"'{text}' is not a FHIR instant", where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_input(parameters: Any) -> PackageInput:
    """The input Parameters (dtr-qpackage-input-parameters), or 400 naming the element."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise _bad("The body must be a Parameters resource", "Parameters")
    coverages: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    canonicals: list[str] = []
    context: str | None = None
    changed_since: datetime | None = None
    for index, parameter in enumerate(parameters.get("parameter") or []):
        where = f"Parameters.parameter[{index}]"
        name = parameter.get("name") if isinstance(parameter, dict) else None
        resource = parameter.get("resource") if isinstance(parameter, dict) else None
        if name == "coverage":
            if not isinstance(resource, dict) or resource.get("resourceType") != "Coverage":
                raise _bad("coverage must hold a Coverage resource", f"{where}.resource")
            coverages.append(check_resource(resource, path_prefix=f"{where}.resource"))
        elif name == "order":
            if not isinstance(resource, dict) or resource.get("resourceType") not in (
                PACKAGE_ORDER_TYPES
            ):
                raise _bad(
                    "order must hold a request (ServiceRequest, DeviceRequest, ...), an "
                    "Encounter or an Appointment",
                    f"{where}.resource",
                )
            orders.append(check_resource(resource, path_prefix=f"{where}.resource"))
        elif name == "questionnaire":
            value = parameter.get("valueCanonical") or parameter.get("valueUri")
            if not isinstance(value, str) or not value:
                raise _bad("questionnaire must be a canonical", f"{where}.valueCanonical")
            canonicals.append(value)
        elif name == "context":
            value = parameter.get("valueString") or parameter.get("valueId")
            if not isinstance(value, str) or not value.strip():
                raise _bad("context must be a string", f"{where}.valueString")
            context = value.strip()
        elif name == "changedsince":
            value = parameter.get("valueInstant") or parameter.get("valueDateTime")
            if not isinstance(value, str):
                raise _bad("changedsince must be an instant", f"{where}.valueInstant")
            changed_since = _instant(value, f"{where}.valueInstant")
        # other parameters (e.g. `referenced`) are accepted and not needed here
    if len(coverages) != 1:  # DTR 2.0.1: coverage 1..1; one call per payer
        raise FhirError.single(
            400, "required", "Exactly one coverage parameter is required", "Parameters.parameter"
        )
    if not (orders or canonicals or context):  # dtr-1
        raise FhirError.single(
            400,
            "required",
            "At least one order, questionnaire or context parameter is required (dtr-1)",
            "Parameters.parameter",
        )
    return PackageInput(coverages[0], tuple(orders), tuple(canonicals), context, changed_since)


def _reference(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _subject(request: PackageInput) -> str | None:
    beneficiary = (request.coverage.get("beneficiary") or {}).get("reference")
    if isinstance(beneficiary, str) and beneficiary.startswith("Patient/"):
        return beneficiary
    for order in request.orders:
        subject = (order.get("subject") or order.get("patient") or {}).get("reference")
        if isinstance(subject, str) and subject.startswith("Patient/"):
            return subject
    return None


class PackageBuilder:
    """Answers one `$questionnaire-package` call."""

    def __init__(self, services: PackageServices, today: date) -> None:
        self.services = services
        self.today = today
        self.issues: list[Issue] = []
        self.selected: dict[str, _Selection] = {}  # by questionnaire url|version
        self.assertion: CoverageAssertion | None = None

    async def build(self, request: PackageInput) -> dict[str, Any]:
        if not request.coverage.get("id"):
            raise _bad("The coverage needs an id to be referenced", "Coverage.id")
        membership = await find_membership(self.services.store, request.coverage)
        if not membership.found:
            raise FhirError.single(
                404,
                "not-found",
                "No member of this health plan matches the coverage's member or subscriber id",
                "Parameters.parameter[coverage].resource",
            )
        if request.context:
            await self._from_context(request, membership)
        else:
            self._from_orders(request.orders, membership)
        self._from_canonicals(request.questionnaires)
        parameters: list[dict[str, Any]] = []
        for selection in self.selected.values():
            if request.changed_since and not self._changed(selection, request.changed_since):
                continue
            parameters.append(
                {"name": "PackageBundle", "resource": self._bundle(selection, request)}
            )
        if not self.selected:
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    "No documentation template applies to this request",
                )
            )
        elif not parameters:
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    "No questionnaire package has changed since "
                    f"{request.changed_since.isoformat() if request.changed_since else ''}",
                )
            )
        if self.issues:
            parameters.append(
                {"name": "operationOutcome", "resource": operation_outcome(self.issues)}
            )
        return {"resourceType": "Parameters", "parameter": parameters}

    # ---- choosing questionnaires --------------------------------------------------------------

    def _select(
        self,
        canonical: str,
        order: dict[str, Any] | None,
        decision: Decision | None,
        pa_request: str | None = None,
    ) -> None:
        questionnaire = self.services.content.questionnaire(canonical)
        if questionnaire is None:
            self.issues.append(
                Issue(
                    "warning",
                    "not-found",
                    f"The questionnaire {canonical} named by the coverage rules is not published",
                )
            )
            return
        key = f"{questionnaire['url']}|{questionnaire.get('version')}"
        selection = self.selected.setdefault(key, _Selection(questionnaire))
        if order is not None and order not in selection.orders:
            selection.orders.append(order)
        if decision is not None:
            selection.decisions.append(decision)
        if pa_request is not None and pa_request not in selection.pa_requests:
            selection.pa_requests.append(pa_request)

    def _decide(self, order: dict[str, Any], membership: Membership) -> Decision:
        context = OrderContext(
            order=order, coverage=membership.member_coverage, plan=membership.plan
        )
        return decide(self.services.topics, context, self.today)

    def _apply(self, order: dict[str, Any], decision: Decision) -> None:
        ref = _reference(order)
        if decision.questionnaires:
            for canonical in decision.questionnaires:
                self._select(canonical, order, decision)
        elif decision.topic_id is None and not order_codings(order):
            text = ((order.get("code") or {}).get("text") or "").strip()
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    f"{ref}: the order carries no code"
                    + (f" (only the text '{text}')" if text else "")
                    + ", so no coverage rule can name it and no documentation template applies",
                    (ref,),
                )
            )
        elif decision.topic_id is None:
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    f"{ref}: no coverage rule names this service, so no documentation "
                    "template applies",
                    (ref,),
                )
            )
        else:
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    f"{ref}: {decision.topic_title} needs no documentation for this member",
                    (ref,),
                )
            )

    def _from_orders(self, orders: Sequence[dict[str, Any]], membership: Membership) -> None:
        for order in orders:
            if not order.get("id"):
                raise _bad("Each order needs an id to be referenced", f"{order['resourceType']}.id")
        if orders and not membership.active_on(self.today):
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    "The member's coverage is not active today: no documentation applies",
                )
            )
            return
        for order in orders:
            self._apply(order, self._decide(order, membership))

    async def _from_context(self, request: PackageInput, membership: Membership) -> None:
        context = str(request.context)
        assertion = await self.services.assertions.get(context)
        if assertion is None:
            await self._from_pa_request(request, membership)
            return
        member = (membership.member_coverage or {}).get("id")
        if assertion.member_coverage_id and member != assertion.member_coverage_id:
            raise _bad(  # DTR spec-129
                f"The context '{context}' was issued for another member's coverage", CONTEXT_PATH
            )
        self.assertion = assertion
        given = {_reference(o): o for o in request.orders if o.get("id")}
        asked_docs = False
        for item in assertion.decisions:
            order = given.pop(item.order_ref, None)
            decision = item.decision
            if order is not None and _codes(order) != _codes_of_inputs(item.inputs):
                decision = self._decide(order, membership)  # prof-1: the order changed
            # DTR oper-8: what CRD said (the stored decision), whatever the orders now need
            asked_docs = asked_docs or bool(item.decision.doc_needed)
            if order is None:
                order = _stub_order(item.order_ref)
            self._apply(order, decision)
        self._from_orders(list(given.values()), membership)  # orders CRD never saw
        if asked_docs and not self.selected:  # oper-8
            self.issues.append(
                Issue(
                    "warning",
                    "informational",
                    "CRD said documentation was needed, but no documentation template applies "
                    "now: the orders changed since. Follow the documentation instructions of the "
                    "coverage rules, or ask CRD again.",
                )
            )

    async def _from_pa_request(self, request: PackageInput, membership: Membership) -> None:
        """A context issued by PAS (DTR spec-109, PAS ainfo-3): the documentation templates of
        the request's pended services, for the member the request was made for."""
        context = str(request.context)
        member = (membership.member_coverage or {}).get("id")
        found = await find_requests(self.services.store.database, context)
        own = [r for r in found if member is not None and r.member_coverage_id == member]
        if not own:
            if any(r.payer_issued for r in found):
                raise _bad(  # DTR spec-129
                    f"The context '{context}' was issued for another member's coverage",
                    CONTEXT_PATH,
                )
            raise FhirError.single(  # DTR spec-130
                404,
                "not-found",
                f"The context '{context}' is not a coverage assertion id from this payer's CRD "
                "service or a prior authorization (PAS) trace number it issued",
                CONTEXT_PATH,
            )
        pa_request = own[0]  # a payer-issued match, else the member's newest request
        number = pa_request.reference_number
        given = {_reference(o): o for o in request.orders if o.get("id")}
        pended = [item for item in pa_request.items if item.pended and item.topic_id]
        if pa_request.case_status != "pended":
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    f"The prior authorization request {number} is no longer pended "
                    f"({pa_request.case_status}): it needs no more documentation",
                )
            )
            pended = []
        elif not pended:
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    f"No service of the prior authorization request {number} waits for "
                    "documentation",
                )
            )
        for item in pended:
            topic = self.services.topics.topics.get(str(item.topic_id))
            if topic is None:  # the topic was withdrawn since the request was adjudicated
                continue
            order = given.pop(str(item.order_ref), None) or pa_request.order(item.order_ref)
            for canonical in topic.topic.documentation.questionnaires:
                self._select(canonical, order, None, pa_request=number)
        self._from_orders(list(given.values()), membership)  # orders the request did not hold

    def _from_canonicals(self, canonicals: Sequence[str]) -> None:
        for canonical in canonicals:
            if self.services.content.questionnaire(canonical) is None:
                self.issues.append(  # oper-9
                    Issue(
                        "warning",
                        "not-found",
                        f"The questionnaire {canonical} is not published by this payer",
                        ("Parameters.parameter[questionnaire]",),
                    )
                )
                continue
            self._select(canonical, None, None)

    # ---- packaging ----------------------------------------------------------------------------

    def _changed(self, selection: _Selection, since: datetime) -> bool:
        content = self.services.content
        libraries = content.libraries_for(selection.questionnaire)
        dates = [selection.questionnaire.get("date")]
        dates += [lib.resource.get("date") for lib in libraries]
        dates += [
            vs.get("date") for vs in content.valuesets_for(selection.questionnaire, libraries)
        ]
        for text in dates:
            if (
                isinstance(text, str)
                and _instant(text if "T" in text else f"{text}T00:00:00Z", "date") > since
            ):
                return True
        return False

    def _entry(self, resource: dict[str, Any]) -> dict[str, Any]:
        return {
            "fullUrl": f"{self.services.fhir_base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }

    def _bundle(self, selection: _Selection, request: PackageInput) -> dict[str, Any]:
        content = self.services.content
        questionnaire = selection.questionnaire
        libraries = content.libraries_for(questionnaire)
        valuesets = [
            expand(vs, self.today)
            for vs in content.valuesets_for(questionnaire, libraries)
            if _size(vs) < INLINE_EXPANSION_LIMIT
        ]
        response = self._draft_response(selection, request)
        entries = [self._entry(questionnaire)]
        entries.append({"fullUrl": f"urn:uuid:{response['id']}", "resource": response})
        entries += [self._entry(lib.resource) for lib in libraries]
        entries += [self._entry(vs) for vs in valuesets]
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {
                "profile": [
                    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/DTR-QPackageBundle"
                ]
            },
            "type": "collection",
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "entry": entries,
        }

    def _intended_uses(self, selection: _Selection) -> list[dict[str, Any]]:
        purposes: list[str] = []
        for decision in selection.decisions:
            purposes += [p for p in decision.doc_purpose if p not in purposes]
        if not purposes:
            topic = self.services.topics.topics.get(self._topic_id(selection) or "")
            if topic is not None:
                purposes = list(topic.topic.answer.doc_purpose or ())
        return [
            {
                "url": INTENDED_USE,
                "valueCodeableConcept": {
                    "coding": [{"system": NULL_FLAVOR if p == "OTH" else CRD_TEMP, "code": p}]
                },
            }
            for p in purposes or ["OTH"]
        ]

    def _topic_id(self, selection: _Selection) -> str | None:
        url = str(selection.questionnaire["url"])
        base = self.services.flows.base_questionnaire(url) or url
        for topic in self.services.topics.topics.values():
            if any(split_canonical(q)[0] == base for q in topic.topic.documentation.questionnaires):
                return topic.id
        return None

    def _draft_response(self, selection: _Selection, request: PackageInput) -> dict[str, Any]:
        questionnaire = selection.questionnaire
        coverage_ref = _reference(request.coverage)
        extensions: list[dict[str, Any]] = [
            {"url": QR_CONTEXT, "valueReference": {"reference": coverage_ref}}
        ]
        extensions += [
            {"url": QR_CONTEXT, "valueReference": {"reference": _reference(order)}}
            for order in selection.orders
        ]
        extensions += self._intended_uses(selection)
        if self.assertion is not None:  # so the completed response names the CRD answer
            for decision in selection.decisions[:1]:
                extensions.append(
                    coverage_information(
                        decision,
                        coverage_reference=coverage_ref,
                        assertion_id=self.assertion.assertion_id,
                        today=self.today,
                    )
                )
        response: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "id": str(uuid.uuid4()),
        }
        if selection.pa_requests:  # so the completed response names the PA request (PAS context)
            response["meta"] = {
                "tag": [
                    {
                        "system": PA_REQUEST_TAG_SYSTEM,
                        "code": number,
                        "display": "Prior authorization request",
                    }
                    for number in selection.pa_requests
                ]
            }
        response["extension"] = extensions
        response["questionnaire"] = f"{questionnaire['url']}|{questionnaire['version']}"
        response["status"] = "in-progress"
        response["authored"] = (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
        subject = _subject(request)
        if subject:
            response["subject"] = {"reference": subject}
        if is_adaptive(questionnaire):  # DTR spec-25: a contained Questionnaire derived from it
            contained = {
                key: value
                for key, value in questionnaire.items()
                if key not in ("meta", "url", "version", "text", "effectivePeriod")
            }
            contained["id"] = "adaptive"
            contained["meta"] = {"profile": [DTR_ADAPT]}
            contained["derivedFrom"] = [f"{questionnaire['url']}|{questionnaire['version']}"]
            contained["text"] = questionnaire.get("text") or _narrative(questionnaire)
            response["contained"] = [contained]
            response["questionnaire"] = "#adaptive"
        else:
            response["item"] = [
                {"linkId": item["linkId"], "text": item.get("text", item["linkId"])}
                for item in questionnaire.get("item") or []
                if item.get("type") != "display"
            ]
        return response


def _narrative(questionnaire: dict[str, Any]) -> dict[str, Any]:
    title = str(questionnaire.get("title") or questionnaire.get("name") or "Questionnaire")
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{_escape(title)}</p></div>',
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _size(valueset: dict[str, Any]) -> int:
    return sum(
        len(include.get("concept") or [])
        for include in (valueset.get("compose") or {}).get("include") or []
    )


def _codes(order: dict[str, Any]) -> set[tuple[str, str]]:
    return {(str(c.get("system")), str(c.get("code"))) for c in order_codings(order)}


def _codes_of_inputs(inputs: dict[str, Any]) -> set[tuple[str, str]]:
    return {(str(c.get("system")), str(c.get("code"))) for c in inputs.get("codes") or []}


def _stub_order(reference: str) -> dict[str, Any]:
    resource_type, _, resource_id = reference.partition("/")
    return {"resourceType": resource_type, "id": resource_id}
