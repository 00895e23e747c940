"""The one decision function: (order, patient, coverage, practitioner, location, encounter) ->
coverage decision. CRD answers from it at order time, DTR picks Questionnaires from it, PAS
adjudicates with it, so the three can never disagree.

Order of evaluation for a matched topic: the topic's answer, then the member's plan override
(`by-plan`), then exemptions (gold card, diagnosis), then conditions in file order (later ones
win). A code no topic names gets the documented default answer (`DEFAULT_ANSWER`).

An input the EHR could not give (a technical failure: `OrderContext.unavailable`) leaves what
depends on it unknown: the gold-card exemption needs the ordering practitioner, a condition or a
site of care needs the inputs its expression names. Those elements answer `indeterminate`, with
the reason `technical` saying what could not be read (CRD resp-43); what does not depend on the
missing input is answered as usual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from app.rules.codes import NPI, canonical_system, normalize_code
from app.rules.loader import Compiled, CompiledTopic, TopicSet
from app.rules.orders import order_codings, reason_codings
from app.rules.topic import CRD_TEMP, Companion, Outcome, Reason

log = logging.getLogger("greenlight.rules")

GOLD_CARD = Reason(
    code="gold-card",
    system=CRD_TEMP,
    display="Gold card",
    text="The ordering provider is gold-carded for this service: no prior authorization needed.",
)
NO_RULE = Reason(
    text=(
        "No coverage rule names this service: prior authorization is not required, and coverage "
        "is determined when the claim is adjudicated."
    ),
)
INDETERMINATE = "indeterminate"
#: the decision inputs each FHIRPath environment variable comes from
_VARIABLE_INPUTS = {
    "practitioner": "practitioner",
    "orderingNpi": "practitioner",
    "location": "location",
    "patient": "patient",
    "encounter": "encounter",
}
_PRACTITIONER = frozenset({"practitioner"})
_INPUT_NAMES = {
    "practitioner": "the ordering practitioner",
    "location": "the order's location",
    "patient": "the patient",
    "encounter": "the encounter",
}
#: what the caller could add when an input is missing (CRD info-needed; 2.0.1 `conditional`)
_INPUT_INFO_NEEDED = {"practitioner": "performer", "location": "location"}
_DEPENDENT_TEXT = {
    "covered": "coverage",
    "pa_needed": "whether prior authorization is needed",
    "doc_needed": "whether documentation is needed",
}
DEFAULT_ANSWER = Outcome(
    covered="conditional",
    **{"pa-needed": "no-auth", "info-needed": ("OTH",)},
    reasons=(NO_RULE,),
)


@dataclass(frozen=True)
class OrderContext:
    """The inputs of one decision (resources as FHIR JSON; any but `order` may be missing)."""

    order: dict[str, Any]
    patient: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None
    practitioner: dict[str, Any] | None = None
    location: dict[str, Any] | None = None
    encounter: dict[str, Any] | None = None
    plan: str | None = None
    #: inputs the EHR could not give (technical failure), by name ("practitioner", "location",
    #: "patient", "encounter"), each with why
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def ordering_npi(self) -> str | None:
        for identifier in (self.practitioner or {}).get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("system") == NPI:
                value = identifier.get("value")
                return str(value) if value else None
        return None

    def environment(self) -> dict[str, Any]:
        """FHIRPath environment variables for topic expressions."""
        return {
            "order": self.order,
            "patient": self.patient,
            "coverage": self.coverage,
            "practitioner": self.practitioner,
            "location": self.location,
            "encounter": self.encounter,
            "orderingNpi": self.ordering_npi,
            "plan": self.plan,
            "diagnoses": reason_codings(self.order),
        }


@dataclass(frozen=True)
class SiteProposal:
    location: str
    summary: str
    detail: str


@dataclass(frozen=True)
class Decision:
    """A coverage decision for one order (before it is stored and given an assertion id)."""

    topic_id: str | None
    topic_title: str | None
    covered: str
    pa_needed: str | None
    doc_needed: str | None = None
    doc_purpose: tuple[str, ...] = ()
    info_needed: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()
    questionnaires: tuple[str, ...] = ()
    billing_codes: tuple[dict[str, Any], ...] = ()
    policy_title: str | None = None
    policy_url: str | None = None
    instructions: str | None = None
    site_proposals: tuple[SiteProposal, ...] = ()
    applied: tuple[str, ...] = field(default=())  # the trace: which rule parts shaped this answer
    expiry_date: date | None = None
    auto_approval_criteria: tuple[str, ...] = ()
    companions: tuple[Companion, ...] = ()


_DOC_KIND = {
    "clinical": "Clinical documentation",
    "admin": "Administrative documentation",
    "both": "Clinical and administrative documentation",
    "conditional": "Documentation",
}
_DOC_PURPOSE = {
    "withpa": "with the prior authorization request",
    "withclaim": "with the claim",
    "withorder": "with the order",
    "retain-doc": "kept on file for review",
    "OTH": "as the policy describes",
}


def documentation_reason(doc_needed: str, purposes: tuple[str, ...]) -> Reason:
    """Why documentation is asked for, in words (CRD 2.2 q8: doc-purpose needs a reason)."""
    where = " and ".join(_DOC_PURPOSE.get(p, p) for p in purposes)
    return Reason(text=f"{_DOC_KIND.get(doc_needed, 'Documentation')} is needed {where}.")


def _merge(base: Outcome, override: Outcome) -> Outcome:
    """`base` with every field that `override` sets replaced (typed values kept as they are)."""
    values = {
        name: getattr(override, name)
        for name in Outcome.model_fields
        if getattr(override, name) is not None
    }
    return base.model_copy(update=values)


@lru_cache(maxsize=4096)
def expression_inputs(expression: str) -> frozenset[str]:
    """The decision inputs a FHIRPath expression reads through environment variables."""
    return frozenset(
        _VARIABLE_INPUTS[name]
        for name in re.findall(r"%`?(\w+)", expression)
        if name in _VARIABLE_INPUTS
    )


def _missing(ctx: OrderContext, needed: frozenset[str]) -> frozenset[str]:
    return needed & ctx.unavailable.keys() if ctx.unavailable else frozenset()


def technical_reason(what: str, inputs: Mapping[str, str]) -> Reason:
    """The reason `technical` (CRD resp-43): what could not be determined, and which input the
    EHR could not give, and why."""
    causes = "; ".join(f"{_INPUT_NAMES.get(name, name)}: {why}" for name, why in inputs.items())
    return Reason(
        code="technical",
        system=CRD_TEMP,
        display="Technical issues",
        text=f"{what[0].upper()}{what[1:]} could not be determined: the EHR could not give "
        f"{causes}. Ask again once the EHR answers.",
    )


def _true(function: Compiled, ctx: OrderContext, name: str) -> bool:
    try:
        result = function(ctx.order, ctx.environment())
    except Exception:  # a broken expression must not break the answer; it is logged
        log.exception("rule expression %s failed", name)
        return False
    return result == [True]


def _diagnosis_exemption(topic: CompiledTopic, ctx: OrderContext) -> str | None:
    diagnoses = {
        (
            canonical_system(c.get("system")),
            normalize_code(canonical_system(c.get("system")), str(c["code"])),
        )
        for c in reason_codings(ctx.order)
    }
    for name, codes in topic.exempt_diagnoses:
        if diagnoses & codes:
            return name
    return None


def _billing_codes(
    topic: CompiledTopic, codings: list[dict[str, Any]]
) -> tuple[dict[str, Any], ...]:
    matched = []
    for coding in codings:
        system = canonical_system(coding.get("system"))
        if (system, normalize_code(system, str(coding["code"]))) in topic.codes:
            entry = {"system": system, "code": str(coding["code"])}
            if coding.get("display"):
                entry["display"] = coding["display"]
            matched.append(entry)
    return tuple(matched)


def _topic_decision(topic: CompiledTopic, ctx: OrderContext, today: date) -> Decision:
    rule = topic.topic
    outcome = rule.answer
    applied = [f"topic:{rule.id}"]
    if ctx.plan and ctx.plan in rule.by_plan:
        outcome = _merge(outcome, rule.by_plan[ctx.plan])
        applied.append(f"plan:{ctx.plan}")
    requires_auth = outcome.pa_needed in ("auth-needed", "performpa", "conditional")
    unknown: dict[str, frozenset[str]] = {}  # element -> the missing inputs it depends on
    if requires_auth and ctx.ordering_npi and ctx.ordering_npi in rule.exemptions.gold_card_npis:
        outcome = _merge(
            outcome, Outcome(**{"pa-needed": "no-auth", "doc-purpose": ()}, reasons=(GOLD_CARD,))
        )
        applied.append("exemption:gold-card")
    elif requires_auth and (exemption := _diagnosis_exemption(topic, ctx)):
        reason = next(d.reason for d in rule.exemptions.diagnoses if d.name == exemption)
        outcome = _merge(
            outcome, Outcome(**{"pa-needed": "no-auth", "doc-purpose": ()}, reasons=(reason,))
        )
        applied.append(f"exemption:{exemption}")
    elif requires_auth and rule.exemptions.gold_card_npis and _missing(ctx, _PRACTITIONER):
        unknown["pa_needed"] = _PRACTITIONER  # the orderer may be gold-carded
        applied.append("unknown:exemption:gold-card")
    for condition, function in topic.conditions:
        if missing := _missing(ctx, expression_inputs(condition.when)):
            for element in _DEPENDENT_TEXT:
                if getattr(condition.then, element) is not None:
                    unknown[element] = unknown.get(element, frozenset()) | missing
            applied.append(f"unknown:condition:{condition.name}")
        elif _true(function, ctx, f"{rule.id}.{condition.name}"):
            outcome = _merge(outcome, condition.then)
            unknown = {
                k: v for k, v in unknown.items() if getattr(condition.then, k) is None
            }  # a later condition that holds decides the element again
            applied.append(f"condition:{condition.name}")
    proposals: list[SiteProposal] = []
    for site, function in topic.site_of_care:
        if _missing(ctx, expression_inputs(site.when)):
            applied.append(f"unknown:site-of-care:{site.name}")  # nothing proposed on a guess
        elif _true(function, ctx, f"{rule.id}.{site.name}"):
            proposals.append(SiteProposal(site.propose_location, site.summary, site.detail))
            applied.append(f"site-of-care:{site.name}")
    covered = outcome.covered or "covered"
    not_covered = covered == "not-covered"
    doc_needed = None if not_covered else outcome.doc_needed
    doc_purpose = tuple(outcome.doc_purpose or ()) if doc_needed else ()
    reasons = tuple(outcome.reasons or ())
    if doc_needed and doc_purpose and not reasons:
        reasons = (documentation_reason(doc_needed, doc_purpose),)
    decision = Decision(
        topic_id=rule.id,
        topic_title=rule.title,
        covered=covered,
        pa_needed=None if not_covered else outcome.pa_needed,  # CRD q2
        doc_needed=doc_needed,
        doc_purpose=doc_purpose,
        info_needed=tuple(outcome.info_needed or ()),
        reasons=reasons,
        questionnaires=rule.documentation.questionnaires if doc_needed else (),  # CRD q1
        billing_codes=_billing_codes(topic, order_codings(ctx.order)),
        policy_title=rule.policy.title if rule.policy else None,
        policy_url=str(rule.policy.url) if rule.policy else None,
        instructions=rule.documentation.instructions,
        site_proposals=tuple(proposals),
        applied=tuple(applied),
        expiry_date=today + timedelta(days=rule.valid_days),
        auto_approval_criteria=tuple(c.id for c, _ in topic.approval),
        companions=() if not_covered else rule.companions,
    )
    return _with_unknowns(decision, unknown, ctx) if unknown else decision


def _with_unknowns(
    decision: Decision, unknown: dict[str, frozenset[str]], ctx: OrderContext
) -> Decision:
    """`decision` with the elements depending on missing inputs answered `indeterminate`."""
    if decision.covered == "not-covered" and "covered" not in unknown:
        return decision  # not covered whatever the rest: no authorization or documentation
    inputs = frozenset[str]().union(*unknown.values())
    changes: dict[str, Any] = {element: INDETERMINATE for element in unknown}
    if "covered" in unknown:
        changes["pa_needed"] = INDETERMINATE  # whether to ask depends on coverage
    what = " and ".join(_DEPENDENT_TEXT[e] for e in _DEPENDENT_TEXT if e in changes)
    needed = {_INPUT_INFO_NEEDED.get(name, "OTH") for name in inputs}
    return replace(
        decision,
        **changes,
        info_needed=tuple(dict.fromkeys((*decision.info_needed, *sorted(needed)))),
        reasons=(
            technical_reason(what, {n: ctx.unavailable[n] for n in sorted(inputs)}),
            *decision.reasons,
        ),
    )


DEFAULT_POLICY_TITLE = "Greenlight prior authorization list"
DEFAULT_POLICY_URL = "https://greenlight.example.org/policies/prior-authorization-list"


def default_decision() -> Decision:
    """The documented answer for a service no topic names (with the payer's published list)."""
    return Decision(
        topic_id=None,
        topic_title=None,
        policy_title=DEFAULT_POLICY_TITLE,
        policy_url=DEFAULT_POLICY_URL,
        covered=DEFAULT_ANSWER.covered or "conditional",
        pa_needed=DEFAULT_ANSWER.pa_needed,
        info_needed=tuple(DEFAULT_ANSWER.info_needed or ()),
        reasons=tuple(DEFAULT_ANSWER.reasons or ()),
        applied=("default",),
    )


def matching_topics(
    topics: TopicSet, order: dict[str, Any], plan: str | None
) -> list[CompiledTopic]:
    """Topics naming any of the order's codes that apply to the member's plan (first code first)."""
    found: list[CompiledTopic] = []
    for coding in order_codings(order):
        for topic in topics.for_code(coding.get("system"), str(coding["code"])):
            if topic not in found and topic.topic.applies_to_plan(plan):
                found.append(topic)
    return found


def decide(topics: TopicSet, ctx: OrderContext, today: date) -> Decision:
    """The coverage decision for one order."""
    matched = matching_topics(topics, ctx.order, ctx.plan)
    if not matched:
        return default_decision()
    decision = _topic_decision(matched[0], ctx, today)
    if len(matched) > 1:
        decision = replace(
            decision, applied=(*decision.applied, *(f"also:{t.id}" for t in matched[1:]))
        )
    return decision
