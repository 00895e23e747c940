"""Completed QuestionnaireResponses: which coverage assertion (CRD) or request they belong to, and
whether they meet the topic's documentation requirement, so PAS adjudication can use them.

- Links: the `coverage-assertion-id` of every CRD `coverage-information` extension the response
  carries (the draft in a `$questionnaire-package` built from a CRD context has one, DTR spec-107),
  and the orders and coverages of its `qr-context` extensions. A stored response is tagged with its
  assertion ids (`meta.tag`, system `ASSERTION_TAG_SYSTEM`) so it can be searched by assertion.
  A response to a package asked for with a PAS context (DTR spec-109) carries the prior
  authorization request's reference number as a tag from the draft on (`PA_REQUEST_TAG_SYSTEM`),
  so it is found by request the same way (`responses_for_pa_request`).
- Evaluation: the topic is the one whose documentation names the response's Questionnaire (or the
  standard form an adaptive form asks from). A response satisfies the requirement when it is
  `completed` and every enabled required item (enableWhen evaluated on its answers) is answered.
  The topic's auto-approval criteria are evaluated on it as well (`criteria_met`); what to do with
  them is PAS adjudication's decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.dtr.adaptive import AdaptiveFlows
from app.dtr.content import DtrContent, split_canonical, walk_items
from app.rules.loader import REQUEST_VARIABLES, CompiledTopic, TopicSet
from app.store.repository import ResourceStore
from app.store.search import parse_search

log = logging.getLogger("greenlight.dtr")

COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
ASSERTION_TAG_SYSTEM = "https://greenlight.example.org/fhir/CodeSystem/coverage-assertion"
PA_REQUEST_TAG_SYSTEM = "https://greenlight.example.org/fhir/CodeSystem/pa-request"


@dataclass(frozen=True)
class ResponseLinks:
    """What a response is about."""

    assertion_ids: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()  # qr-context references (orders, coverages, encounters)
    pa_requests: tuple[str, ...] = ()  # reference numbers of prior authorization requests


def links_of(response: dict[str, Any]) -> ResponseLinks:
    assertions: list[str] = []
    contexts: list[str] = []
    requests: list[str] = []
    for tag in (response.get("meta") or {}).get("tag") or []:
        if not isinstance(tag, dict) or tag.get("system") != PA_REQUEST_TAG_SYSTEM:
            continue
        if tag.get("code") and str(tag["code"]) not in requests:
            requests.append(str(tag["code"]))
    for ext in response.get("extension") or []:
        if ext.get("url") == COVERAGE_INFORMATION:
            for sub in ext.get("extension") or []:
                value = sub.get("valueString")
                if sub.get("url") == "coverage-assertion-id" and value and value not in assertions:
                    assertions.append(str(value))
        elif ext.get("url") == QR_CONTEXT:
            reference = (ext.get("valueReference") or {}).get("reference")
            if reference and reference not in contexts:
                contexts.append(str(reference))
    return ResponseLinks(tuple(assertions), tuple(contexts), tuple(requests))


def tagged(response: dict[str, Any]) -> dict[str, Any]:
    """A copy of `response` whose `meta.tag` names each coverage assertion it belongs to."""
    ids = links_of(response).assertion_ids
    if not ids:
        return response
    meta = dict(response.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t.get("system") != ASSERTION_TAG_SYSTEM]
    tags += [{"system": ASSERTION_TAG_SYSTEM, "code": assertion_id} for assertion_id in ids]
    meta["tag"] = tags
    return {**response, "meta": meta}


async def responses_for_assertion(store: ResourceStore, assertion_id: str) -> list[dict[str, Any]]:
    """The stored responses that belong to a CRD coverage assertion, newest first."""
    return await _tagged_responses(store, ASSERTION_TAG_SYSTEM, assertion_id)


async def responses_for_pa_request(
    store: ResourceStore, reference_number: str
) -> list[dict[str, Any]]:
    """The stored responses that belong to a prior authorization request, newest first."""
    return await _tagged_responses(store, PA_REQUEST_TAG_SYSTEM, reference_number)


async def _tagged_responses(store: ResourceStore, system: str, code: str) -> list[dict[str, Any]]:
    spec = store.registry.resources["QuestionnaireResponse"]
    query = parse_search(
        spec,
        [("_tag", f"{system}|{code}"), ("_count", "50")],
        fhir_base="",
        default_count=50,
        max_count=50,
        strict=True,
    )
    page = await store.search(query)
    found = [item.json() for item in page.items]
    return sorted(found, key=lambda r: str((r.get("meta") or {}).get("lastUpdated")), reverse=True)


# ---- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentationEvaluation:
    """A response measured against its topic's documentation requirement."""

    topic_id: str | None
    questionnaire: str | None
    completed: bool
    missing: tuple[str, ...] = ()  # enabled required items without an answer
    criteria_met: tuple[str, ...] = ()  # auto-approval criteria ids that hold
    links: ResponseLinks = field(default_factory=ResponseLinks)

    @property
    def satisfied(self) -> bool:
        return self.topic_id is not None and self.completed and not self.missing


def _answers(response: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    answers: dict[str, list[dict[str, Any]]] = {}
    for item in walk_items(response.get("item")):
        answers.setdefault(str(item.get("linkId")), []).extend(item.get("answer") or [])
    return answers


def _value(answer: dict[str, Any]) -> tuple[str, Any] | None:
    for key, value in answer.items():
        if key.startswith("value"):
            return key[5:], value
    return None


def _matches(answer: dict[str, Any], operator: str, condition: dict[str, Any]) -> bool:
    found = _value(answer)
    expected = next(((k[6:], v) for k, v in condition.items() if k.startswith("answer")), None)
    if found is None or expected is None:
        return False
    (kind, value), (_, wanted) = found, expected
    if kind == "Coding" and isinstance(wanted, dict):
        same = value.get("code") == wanted.get("code") and (
            not wanted.get("system") or value.get("system") == wanted.get("system")
        )
        return same if operator == "=" else not same if operator == "!=" else False
    if kind in ("Integer", "Decimal"):
        left, right = Decimal(str(value)), Decimal(str(wanted))
    else:
        left, right = value, wanted
    try:
        return {
            "=": left == right,
            "!=": left != right,
            ">": left > right,
            "<": left < right,
            ">=": left >= right,
            "<=": left <= right,
        }.get(operator, False)
    except TypeError:
        return False


def _enabled(item: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> bool:
    conditions = item.get("enableWhen") or []
    if not conditions:
        return True
    results = []
    for condition in conditions:
        given = answers.get(str(condition.get("question")), [])
        operator = str(condition.get("operator"))
        if operator == "exists":
            results.append(bool(given) == bool(condition.get("answerBoolean")))
        else:
            results.append(any(_matches(a, operator, condition) for a in given))
    return any(results) if item.get("enableBehavior") == "any" else all(results)


def missing_required(questionnaire: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """linkIds of enabled required questions without an answer."""
    answers = _answers(response)
    missing: list[str] = []

    def visit(items: list[dict[str, Any]]) -> None:
        for item in items:
            if not _enabled(item, answers):
                continue  # a disabled item's children are disabled too
            question = item.get("type") not in ("group", "display")
            if item.get("required") and question and not answers.get(str(item["linkId"])):
                missing.append(str(item["linkId"]))
            visit(item.get("item") or [])

    visit(questionnaire.get("item") or [])
    return missing


class ResponseEvaluator:
    """Evaluates responses against the topics' documentation requirements."""

    def __init__(self, topics: TopicSet, content: DtrContent, flows: AdaptiveFlows) -> None:
        self.topics = topics
        self.content = content
        self.flows = flows

    def _questionnaire(self, response: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """The canonical the response answers, and the Questionnaire to check it against."""
        reference = str(response.get("questionnaire") or "")
        if reference.startswith("#"):
            for resource in response.get("contained") or []:
                if (
                    resource.get("resourceType") == "Questionnaire"
                    and resource.get("id") == (reference[1:])
                ):
                    for canonical in [resource.get("url"), *(resource.get("derivedFrom") or [])]:
                        if isinstance(canonical, str) and self.content.questionnaire(canonical):
                            return split_canonical(canonical)[0], resource
                    return None, resource
            return None, None
        return (split_canonical(reference)[0] or None), self.content.questionnaire(reference)

    def topic_for(self, canonical: str | None) -> CompiledTopic | None:
        if not canonical:
            return None
        base = self.flows.base_questionnaire(canonical) or canonical
        for topic in self.topics.topics.values():
            if any(split_canonical(q)[0] == base for q in topic.topic.documentation.questionnaires):
                return topic
        return None

    def evaluate(self, response: dict[str, Any]) -> DocumentationEvaluation:
        canonical, questionnaire = self._questionnaire(response)
        topic = self.topic_for(canonical)
        missing = tuple(missing_required(questionnaire, response)) if questionnaire else ()
        met: list[str] = []
        if topic is not None:
            env: dict[str, Any] = dict.fromkeys(REQUEST_VARIABLES)
            env["questionnaireResponse"] = response
            for criterion, function in topic.approval:
                try:
                    if function(response, env) == [True]:
                        met.append(criterion.id)
                except Exception:  # a broken expression must not break the evaluation
                    log.exception("approval criterion %s.%s failed", topic.id, criterion.id)
        return DocumentationEvaluation(
            topic_id=topic.id if topic else None,
            questionnaire=canonical,
            completed=response.get("status") in ("completed", "amended"),
            missing=missing,
            criteria_met=tuple(met),
            links=links_of(response),
        )
