"""Adaptive forms: `Questionnaire/$next-question` (SDC, as profiled by DTR 2.0.1).

An adaptive form is written as a step plan, `<topic>/adaptive.yaml`:

    questionnaire: <canonical of the adaptive-search Questionnaire>
    items-from: <canonical of the standard Questionnaire whose items are asked>
    steps:
      - name: presentation
        items: [diagnosis, red-flags]        # linkIds, at any depth, of the standard form
      - name: conservative-therapy
        after: [red-flags]                   # decided only once these are answered
        when: "<FHIRPath over the QuestionnaireResponse (%resource)>"
        items: [conservative-therapy-weeks]

The questions are the standard form's own items (same linkIds, same CQL pre-population), so a
response means the same whichever form produced it and the topic's approval criteria read both.
Branching happens here, on the server: the adaptive Questionnaire profile allows no enableWhen.

Each call receives the QuestionnaireResponse with its contained Questionnaire (DTR spec-25), checks
the answers against it (an invalid response is a 400, DTR spec-147), then appends every step that
can be decided now (as many items per call as possible, spec-36) and, once no step is left, marks
the response `completed`. The final step is the display item saying the clinical questions are
done (spec-39). Nothing is stored: the response carries all state (DTR sec-10).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import fhirpathpy
import yaml
from fhirpathpy.models import models

from app.dtr.content import (
    DtrContent,
    DtrContentError,
    content_for,
    split_canonical,
    walk_items,
)
from app.fhir.json_copy import json_copy
from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError, Issue

FLOW_FILE = "adaptive.yaml"
INFORMATION_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
DTR_ADAPT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt"
_NOT_ADAPTIVE_ELEMENTS = ("enableWhen", "enableBehavior")

Condition = Callable[[Any, dict[str, Any]], list[Any]]

#: The answer[x] element each item type takes.
ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",),
    "decimal": ("valueDecimal",),
    "integer": ("valueInteger",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "time": ("valueTime",),
    "string": ("valueString",),
    "text": ("valueString",),
    "url": ("valueUri",),
    "choice": ("valueCoding",),
    "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",),
    "reference": ("valueReference",),
    "quantity": ("valueQuantity",),
}


@dataclass(frozen=True)
class Step:
    name: str
    items: tuple[str, ...]
    after: tuple[str, ...] = ()
    when: Condition | None = None


@dataclass(frozen=True)
class AdaptiveFlow:
    """The step plan of one adaptive form."""

    questionnaire: dict[str, Any]  # the adaptive-search form
    bank: dict[str, Any]  # the standard form whose items are asked
    steps: tuple[Step, ...]
    source: Path

    @property
    def url(self) -> str:
        return str(self.questionnaire["url"])

    @property
    def base_url(self) -> str:
        return str(self.bank["url"])


@dataclass
class AdaptiveFlows:
    """Every adaptive form, by the canonical URL of its adaptive-search Questionnaire."""

    flows: dict[str, AdaptiveFlow]

    def base_questionnaire(self, url: str) -> str | None:
        flow = self.flows.get(split_canonical(url)[0])
        return flow.base_url if flow else None

    def for_contained(self, questionnaire: dict[str, Any]) -> AdaptiveFlow | None:
        """The flow a contained Questionnaire belongs to (its url, or what it derives from)."""
        candidates = [questionnaire.get("url"), *(questionnaire.get("derivedFrom") or [])]
        for canonical in candidates:
            if isinstance(canonical, str) and split_canonical(canonical)[0] in self.flows:
                return self.flows[split_canonical(canonical)[0]]
        return None


def _compile(expression: str, source: Path, where: str) -> Condition:
    try:
        function: Condition = fhirpathpy.compile(expression, models["r4"])
        function({"resourceType": "QuestionnaireResponse"}, {"resource": {}})
    except Exception as exc:  # fhirpathpy raises bare Exceptions
        raise DtrContentError(source, f"{where}: not a usable FHIRPath expression: {exc}") from None
    return function


def _link_ids(value: Any, source: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DtrContentError(source, f"{where} must be a list of linkIds")
    return tuple(value)


def load_flow(path: Path, content: DtrContent) -> AdaptiveFlow:
    """One step plan, checked against the Questionnaires it names."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DtrContentError(path, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise DtrContentError(path, "must hold a mapping")
    form = content.questionnaire(str(raw.get("questionnaire") or ""))
    bank = content.questionnaire(str(raw.get("items-from") or ""))
    if form is None:
        raise DtrContentError(path, f"questionnaire {raw.get('questionnaire')} is not published")
    if bank is None:
        raise DtrContentError(path, f"items-from {raw.get('items-from')} is not published")
    known = {str(item["linkId"]) for item in walk_items(bank.get("item"))}
    steps: list[Step] = []
    for index, raw_step in enumerate(raw.get("steps") or []):
        where = f"steps[{index}]"
        if not isinstance(raw_step, dict) or not raw_step.get("name"):
            raise DtrContentError(path, f"{where} needs a name")
        items = _link_ids(raw_step.get("items"), path, f"{where}.items")
        after = _link_ids(raw_step.get("after"), path, f"{where}.after")
        for link_id in (*items, *after):
            if link_id not in known:
                raise DtrContentError(path, f"{where}: {link_id} is not an item of {bank['url']}")
        if not items:
            raise DtrContentError(path, f"{where}.items is empty")
        when = raw_step.get("when")
        steps.append(
            Step(
                name=str(raw_step["name"]),
                items=items,
                after=after,
                when=_compile(str(when), path, f"{where}.when") if when else None,
            )
        )
    if not steps:
        raise DtrContentError(path, "an adaptive form needs steps")
    return AdaptiveFlow(form, bank, tuple(steps), path)


def load_flows(root: Path, content: DtrContent) -> AdaptiveFlows:
    flows: dict[str, AdaptiveFlow] = {}
    for path in sorted(root.glob(f"*/{FLOW_FILE}")):
        flow = load_flow(path, content)
        flows[flow.url] = flow
    return AdaptiveFlows(flows)


@lru_cache(maxsize=8)
def flows_for(root: Path) -> AdaptiveFlows:
    return load_flows(root, content_for(root))


# ---- $next-question ------------------------------------------------------------------------


def _invalid(issues: list[Issue]) -> FhirError:
    return FhirError(400, issues)


def questionnaire_response_from(body: Any) -> dict[str, Any]:
    """The QuestionnaireResponse of a `$next-question` call: Parameters with a
    `questionnaire-response` parameter (SDC), or the bare resource."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        found = [
            p.get("resource")
            for p in body.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "questionnaire-response"
        ]
        if len(found) != 1 or not isinstance(found[0], dict):
            raise FhirError.single(
                400,
                "required",
                "Exactly one questionnaire-response parameter holding a QuestionnaireResponse "
                "is required",
                "Parameters.parameter",
            )
        body = found[0]
    if not isinstance(body, dict) or body.get("resourceType") != "QuestionnaireResponse":
        raise FhirError.single(
            400, "invalid", "Expected a QuestionnaireResponse", "QuestionnaireResponse"
        )
    return _checked_response(body)


def _check_shell(response: dict[str, Any]) -> None:
    """The response (without `contained`) checked as R4 (`check_resource`: the quick check for
    the common, valid case, the R4 models otherwise, which answer 400 naming the element)."""
    check_resource(response, path_prefix="QuestionnaireResponse")


def _checked_response(response: dict[str, Any]) -> dict[str, Any]:
    """The response checked as R4 (400 naming the element otherwise). Its contained adaptive
    Questionnaire is mostly Greenlight's own previous output, with few distinct states per flow:
    `check_resource` remembers each one it accepted, so it is checked once, not on every step."""
    contained = response.get("contained")
    if not isinstance(contained, list):
        _check_shell(response)
        return response
    _check_shell({k: v for k, v in response.items() if k != "contained"})
    for index, resource in enumerate(contained):
        check_resource(resource, path_prefix=f"QuestionnaireResponse.contained[{index}]")
    return response


def contained_questionnaire(response: dict[str, Any]) -> dict[str, Any]:
    """The Questionnaire the response points to with `#id` (DTR spec-25)."""
    reference = response.get("questionnaire")
    if not isinstance(reference, str) or not reference.startswith("#"):
        raise FhirError.single(
            400,
            "invalid",
            "An adaptive QuestionnaireResponse must reference its contained Questionnaire as #<id>",
            "QuestionnaireResponse.questionnaire",
        )
    for index, resource in enumerate(response.get("contained") or []):
        if resource.get("resourceType") == "Questionnaire" and resource.get("id") == reference[1:]:
            return dict(resource, _index=index)
    raise FhirError.single(
        400,
        "not-found",
        f"No contained Questionnaire has the id {reference[1:]}",
        "QuestionnaireResponse.contained",
    )


def _origin_ok(answer: dict[str, Any]) -> bool:
    for ext in answer.get("extension") or []:
        if ext.get("url") == INFORMATION_ORIGIN:
            return any(
                sub.get("url") == "source" and sub.get("valueCode")
                for sub in ext.get("extension") or []
            )
    return False


def _answers_by_link(response: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    answers: dict[str, list[dict[str, Any]]] = {}
    for item in walk_items(response.get("item")):
        answers.setdefault(str(item.get("linkId")), []).extend(item.get("answer") or [])
    return answers


def _path(index: int, trail: Iterable[int]) -> str:
    path = "QuestionnaireResponse"
    for position in (*trail, index):
        path += f".item[{position}]"
    return path


class ResponseChecker:
    """Checks answers against the contained Questionnaire (DTR spec-147, spec-137)."""

    def __init__(self, questionnaire: dict[str, Any], content: DtrContent, today: date) -> None:
        self.items = {str(i["linkId"]): i for i in walk_items(questionnaire.get("item"))}
        self.content = content
        self.today = today
        self.issues: list[Issue] = []

    def _allowed(self, item: dict[str, Any]) -> frozenset[tuple[str, str]] | None:
        canonical = item.get("answerValueSet")
        if canonical:
            return self.content.codes(str(canonical))  # the expansion's codes, computed once
        options = item.get("answerOption")
        if options:
            return frozenset(
                (str(o["valueCoding"].get("system")), str(o["valueCoding"].get("code")))
                for o in options
                if "valueCoding" in o
            )
        return None

    def check(self, response: dict[str, Any]) -> list[Issue]:
        self._walk(response.get("item") or [], ())
        answered = {k for k, v in _answers_by_link(response).items() if v}
        for link_id, item in self.items.items():
            question = item.get("type") not in ("group", "display")
            if item.get("required") and question and link_id not in answered:
                self.issues.append(
                    Issue(
                        "error",
                        "required",
                        f"Item {link_id} ({item.get('text', '')}) is required and unanswered",
                        (f"QuestionnaireResponse.item.where(linkId = '{link_id}')",),
                    )
                )
        return self.issues

    def _walk(self, items: list[dict[str, Any]], trail: tuple[int, ...]) -> None:
        for index, item in enumerate(items):
            where = _path(index, trail)
            link_id = str(item.get("linkId"))
            definition = self.items.get(link_id)
            if definition is None:
                self.issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"Item {link_id} is not in the contained Questionnaire",
                        (f"{where}.linkId",),
                    )
                )
                continue
            answers = item.get("answer") or []
            if len(answers) > 1 and not definition.get("repeats"):
                self.issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"Item {link_id} does not repeat but has {len(answers)} answers",
                        (f"{where}.answer",),
                    )
                )
            for a_index, answer in enumerate(answers):
                self._answer(answer, definition, f"{where}.answer[{a_index}]")
            self._walk(item.get("item") or [], (*trail, index))

    def _answer(self, answer: dict[str, Any], definition: dict[str, Any], where: str) -> None:
        link_id = definition["linkId"]
        expected = ANSWER_TYPES.get(str(definition.get("type")), ())
        given = [key for key in answer if key.startswith("value")]
        if not given or (expected and given[0] not in expected):
            self.issues.append(
                Issue(
                    "error",
                    "value",
                    f"Item {link_id} ({definition.get('type')}) needs "
                    f"{' or '.join(expected) or 'a value'}, not {', '.join(given) or 'nothing'}",
                    (where,),
                )
            )
            return
        if not _origin_ok(answer):  # dtr-questionnaireresponse: information-origin 1..1
            self.issues.append(
                Issue(
                    "error",
                    "required",
                    f"The answer to {link_id} has no information-origin extension saying where "
                    "it came from",
                    (f"{where}.extension",),
                )
            )
        if given[0] == "valueCoding":
            allowed = self._allowed(definition)
            coding = answer["valueCoding"]
            if allowed is not None and (str(coding.get("system")), str(coding.get("code"))) not in (
                allowed
            ):
                self.issues.append(
                    Issue(
                        "error",
                        "code-invalid",
                        f"{coding.get('system')}|{coding.get('code')} is not an answer option of "
                        f"{link_id}",
                        (f"{where}.valueCoding",),
                    )
                )


def _adaptive_copy(item: dict[str, Any], keep_children: bool) -> dict[str, Any]:
    """An item of the standard form as the adaptive profile allows it (no enableWhen)."""
    copied = {k: json_copy(v) for k, v in item.items() if k not in _NOT_ADAPTIVE_ELEMENTS}
    if keep_children and item.get("item"):
        copied["item"] = [_adaptive_copy(child, True) for child in item["item"]]
    else:
        copied.pop("item", None)
    return copied


class NextQuestion:
    """Grows the contained Questionnaire of one adaptive QuestionnaireResponse."""

    def __init__(self, flow: AdaptiveFlow, content: DtrContent, today: date) -> None:
        self.flow = flow
        self.content = content
        self.today = today
        self.parents: dict[str, str | None] = {}
        self.bank_items: dict[str, dict[str, Any]] = {}
        self._index(flow.bank.get("item") or [], None)

    def _index(self, items: list[dict[str, Any]], parent: str | None) -> None:
        for item in items:
            link_id = str(item["linkId"])
            self.parents[link_id] = parent
            self.bank_items[link_id] = item
            self._index(item.get("item") or [], link_id)

    def _ancestors(self, link_id: str) -> list[str]:
        chain: list[str] = []
        parent = self.parents.get(link_id)
        while parent is not None:
            chain.insert(0, parent)
            parent = self.parents.get(parent)
        return chain

    def _add(self, questionnaire: dict[str, Any], link_id: str) -> None:
        present = {str(i["linkId"]): i for i in walk_items(questionnaire.get("item"))}
        if link_id in present:
            return
        container: list[dict[str, Any]] = questionnaire.setdefault("item", [])
        for ancestor in self._ancestors(link_id):
            node = present.get(ancestor)
            if node is None:
                node = _adaptive_copy(self.bank_items[ancestor], keep_children=False)
                container.append(node)
                present[ancestor] = node
            container = node.setdefault("item", [])
        container.append(_adaptive_copy(self.bank_items[link_id], keep_children=True))

    def respond(self, response: dict[str, Any]) -> dict[str, Any]:
        """The response with the next questions added (or `completed`), or raise 400."""
        found = contained_questionnaire(response)
        index = found.pop("_index")
        issues = ResponseChecker(found, self.content, self.today).check(response)
        if issues:
            raise _invalid(issues)
        questionnaire = json_copy(found)
        answers = _answers_by_link(response)
        answered = {link for link, values in answers.items() if values}
        present = {str(i["linkId"]) for i in walk_items(questionnaire.get("item"))}
        finished = True
        for step in self.flow.steps:
            if all(link in present for link in step.items):
                continue  # asked before
            if not all(link in answered for link in step.after):
                finished = False  # decided once those are answered
                break
            if step.when is not None and step.when(response, {"resource": response}) != [True]:
                continue  # this branch does not apply
            for link_id in step.items:
                self._add(questionnaire, link_id)
            present = {str(i["linkId"]) for i in walk_items(questionnaire.get("item"))}
        unanswered = [  # required questions still open (optional ones never hold it back)
            link
            for link in present
            if link not in answered
            and self.bank_items.get(link, {}).get("required")
            and self.bank_items.get(link, {}).get("type") not in ("group", "display")
        ]
        # only `contained[index]` and `status` change: the request's own body can be shared
        result = {**response, "contained": list(response["contained"])}
        questionnaire["meta"] = {"profile": [DTR_ADAPT]}
        derived = questionnaire.get("derivedFrom") or []
        if not any(split_canonical(str(d))[0] == self.flow.url for d in derived):
            questionnaire["derivedFrom"] = [
                *derived,
                f"{self.flow.url}|{self.flow.questionnaire.get('version')}",
            ]
        questionnaire.setdefault("text", self.flow.questionnaire.get("text") or _text(self.flow))
        result["contained"][index] = questionnaire
        result["status"] = "completed" if finished and not unanswered else "in-progress"
        return result


def _text(flow: AdaptiveFlow) -> dict[str, Any]:
    title = str(flow.questionnaire.get("title") or flow.url)
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{title}</p></div>',
    }


def next_question(
    body: Any, flows: AdaptiveFlows, content: DtrContent, today: date
) -> dict[str, Any]:
    """Answer one `$next-question` call: the QuestionnaireResponse to return (SDC: bare)."""
    response = questionnaire_response_from(body)
    questionnaire = contained_questionnaire(response)
    flow = flows.for_contained(questionnaire)
    if flow is None:
        raise FhirError.single(
            400,
            "not-found",
            "The contained Questionnaire is not derived from an adaptive form of this payer "
            f"({', '.join(sorted(flows.flows)) or 'none'})",
            "QuestionnaireResponse.contained.derivedFrom",
        )
    return NextQuestion(flow, content, today).respond(response)
