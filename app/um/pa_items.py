"""The list of items and services that require prior authorization, read from the coverage topics
(CMS-0057-F public report, element (1): "a list of all items and services that require prior
authorization").

A topic is listed when, for at least one plan, its answer (the topic's `answer` merged with the
plan's `by-plan` override, as `app.rules.engine` merges them) is covered and needs authorization:
`pa-needed` `auth-needed` or `performpa` lists the plan as *required*, `conditional` as
*conditional*; a not-covered plan is never listed (an excluded benefit needs no authorization).
A topic whose answer needs no authorization but one of whose `conditions` can make it needed is
listed as conditional on every plan of the topic, with the condition names. Exemptions
(gold-carded ordering providers, exempt diagnoses) are named, since they lift the requirement.
Plans `*` (every plan) read "all plans", or "all other plans" beside plans with an override.

CMS-0057-F does not apply to drugs: a topic whose codes are all drug codes (RxNorm, NDC) is a
drug topic, listed apart (`drugs`) for information and left out of the metrics
(`app.um.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from app.rules.codes import CPT, HCPCS, ICD10_CM, RXNORM, SNOMED, canonical_system
from app.rules.loader import CompiledTopic, TopicSet
from app.rules.topic import ALL_PLANS, Outcome, Topic

NDC = "http://hl7.org/fhir/sid/ndc"
LOINC = "http://loinc.org"
DRUG_SYSTEMS = frozenset({RXNORM, NDC})
SYSTEM_LABELS = {
    CPT: "CPT",
    HCPCS: "HCPCS",
    RXNORM: "RxNorm",
    NDC: "NDC",
    LOINC: "LOINC",
    ICD10_CM: "ICD-10-CM",
    SNOMED: "SNOMED CT",
}
_NEEDS_AUTH = ("auth-needed", "performpa")
Requirement = Literal["required", "conditional"]


@dataclass(frozen=True)
class CodeGroup:
    """The codes of one code system a topic names: single codes (with display) and ranges."""

    system: str
    label: str
    codes: tuple[tuple[str, str | None], ...]
    ranges: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """`CPT 72148 (MRI lumbar spine without contrast), 99202-99205`."""
        parts = [f"{code} ({display})" if display else code for code, display in self.codes]
        parts += [f"{low}-{high}" for low, high in self.ranges]
        return f"{self.label} {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "label": self.label,
            "codes": [
                {"code": code, **({"display": display} if display else {})}
                for code, display in self.codes
            ],
            "ranges": [{"from": low, "to": high} for low, high in self.ranges],
        }


@dataclass(frozen=True)
class PlanRequirement:
    """Which plans need authorization for a topic's codes, and how (`required`/`conditional`)."""

    plans: str  # "all plans", "all other plans" or a plan id
    requirement: Requirement

    def to_json(self) -> dict[str, str]:
        return {"plans": self.plans, "requirement": self.requirement}


@dataclass(frozen=True)
class PaItem:
    """One topic's items or services that need prior authorization."""

    topic: str
    title: str
    description: str | None
    codes: tuple[CodeGroup, ...]
    plans: tuple[PlanRequirement, ...]
    conditions: tuple[str, ...]  # conditions that can make authorization needed
    exemptions: tuple[str, ...]
    policy_title: str | None
    policy_url: str | None
    drug: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "title": self.title,
            "description": self.description,
            "codes": [group.to_json() for group in self.codes],
            "plans": [plan.to_json() for plan in self.plans],
            "conditions": list(self.conditions),
            "exemptions": list(self.exemptions),
            "policy": {"title": self.policy_title, "url": self.policy_url}
            if self.policy_url
            else None,
        }


@dataclass(frozen=True)
class PaItemList:
    """Element (1): the items and services requiring authorization; drugs apart."""

    services: tuple[PaItem, ...]
    drugs: tuple[PaItem, ...]


def is_drug_topic(topic: Topic) -> bool:
    """Every code set of the topic is in a drug code system (RxNorm, NDC)."""
    return all(canonical_system(code_set.system) in DRUG_SYSTEMS for code_set in topic.codes)


def drug_topics(topics: TopicSet) -> frozenset[str]:
    """The ids of the drug topics (outside CMS-0057-F)."""
    return frozenset(
        tid for tid, compiled in topics.topics.items() if is_drug_topic(compiled.topic)
    )


def _requirement(outcome: Outcome) -> Requirement | None:
    if outcome.covered == "not-covered":
        return None
    if outcome.pa_needed in _NEEDS_AUTH:
        return "required"
    if outcome.pa_needed == "conditional":
        return "conditional"
    return None


def _merged(base: Outcome, override: Outcome) -> Outcome:
    """`base` with the fields `override` sets (as `app.rules.engine` merges a plan override)."""
    values = {
        name: getattr(override, name)
        for name in Outcome.model_fields
        if getattr(override, name) is not None
    }
    return base.model_copy(update=values)


def _plan_requirements(topic: Topic) -> list[PlanRequirement]:
    found: list[PlanRequirement] = []
    named = [plan for plan in topic.plans if plan != ALL_PLANS]
    overridden = [plan for plan in topic.by_plan if plan not in named]
    if ALL_PLANS in topic.plans:
        requirement = _requirement(topic.answer)
        if requirement is not None:
            label = "all other plans" if topic.by_plan else "all plans"
            found.append(PlanRequirement(label, requirement))
    for plan in (*named, *overridden):
        outcome = topic.answer
        if plan in topic.by_plan:
            outcome = _merged(outcome, topic.by_plan[plan])
        elif ALL_PLANS in topic.plans:
            continue  # covered by "all other plans"
        requirement = _requirement(outcome)
        if requirement is not None:
            found.append(PlanRequirement(plan, requirement))
    return found


def _conditional_plans(topic: Topic) -> list[PlanRequirement]:
    """Every plan of the topic, as conditional (a condition can make authorization needed)."""
    if ALL_PLANS in topic.plans:
        return [PlanRequirement("all plans", "conditional")]
    return [PlanRequirement(plan, "conditional") for plan in topic.plans]


def _code_groups(topic: Topic) -> tuple[CodeGroup, ...]:
    groups = []
    for code_set in topic.codes:
        system = canonical_system(code_set.system)
        groups.append(
            CodeGroup(
                system=system,
                label=SYSTEM_LABELS.get(system, system),
                codes=tuple((code, code_set.display.get(code)) for code in code_set.values),
                ranges=tuple(code_set.ranges),
            )
        )
    return tuple(groups)


def _exemptions(topic: Topic) -> tuple[str, ...]:
    found = []
    if topic.exemptions.gold_card_npis:
        found.append("gold-carded ordering providers")
    found += [f"diagnosis exemption: {d.name}" for d in topic.exemptions.diagnoses]
    return tuple(found)


def pa_item(compiled: CompiledTopic) -> PaItem | None:
    """The topic as a listed item, or None when no plan ever needs authorization for it."""
    topic = compiled.topic
    plans = _plan_requirements(topic)
    conditions = tuple(
        c.name
        for c in topic.conditions
        if c.then.covered != "not-covered" and c.then.pa_needed in (*_NEEDS_AUTH, "conditional")
    )
    if not plans and conditions:
        plans = _conditional_plans(topic)
    if not plans:
        return None
    return PaItem(
        topic=topic.id,
        title=topic.title,
        description=" ".join(topic.description.split()) if topic.description else None,
        codes=_code_groups(topic),
        plans=tuple(plans),
        conditions=conditions,
        exemptions=_exemptions(topic),
        policy_title=topic.policy.title if topic.policy else None,
        policy_url=str(topic.policy.url) if topic.policy else None,
        drug=is_drug_topic(topic),
    )


def pa_items(topics: TopicSet | Iterable[CompiledTopic]) -> PaItemList:
    """Element (1) from the loaded topics, by title (see the module docstring)."""
    compiled = topics.topics.values() if isinstance(topics, TopicSet) else topics
    listed = sorted(
        (item for item in (pa_item(c) for c in compiled) if item is not None),
        key=lambda item: (item.title.lower(), item.topic),
    )
    return PaItemList(
        services=tuple(i for i in listed if not i.drug),
        drugs=tuple(i for i in listed if i.drug),
    )
