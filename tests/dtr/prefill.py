"""What a DTR client does with CQL results: turn each item's initialExpression (and
candidateExpression) result into QuestionnaireResponse answers of the item's type, and build a
response from them, then store it as a DTR client does. Used by the pre-population tests and the
end-to-end DTR flows."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx

from app.dtr.content import walk_items

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
INITIAL = SDC + "sdc-questionnaire-initialExpression"
CANDIDATE = SDC + "sdc-questionnaire-candidateExpression"
ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"


def expressions(questionnaire: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str, str]]:
    """(item, kind, library, define) for each CQL initial or candidate expression."""
    for item in walk_items(questionnaire.get("item")):
        for ext in item.get("extension") or []:
            kind = {INITIAL: "initial", CANDIDATE: "candidate"}.get(ext.get("url"))
            if kind is None:
                continue
            expression = ext["valueExpression"]
            assert expression["language"] == "text/cql"
            library, _, define = expression["expression"].partition(".")
            yield item, kind, library.strip('"'), define.strip('"')


def answer_values(item_type: str, result: Any) -> list[dict[str, Any]]:
    """CQL results (as tools/cql/execute.mjs prints them) as answer[x] values of `item_type`."""
    values = result if isinstance(result, list) else [result]
    answers: list[dict[str, Any]] = []
    for value in values:
        if value is None:
            continue
        if item_type in ("choice", "open-choice"):
            code = value["Code"]
            coding = {"system": code["system"], "code": code["code"]}
            if code.get("display"):
                coding["display"] = code["display"]
            answers.append({"valueCoding": coding})
        elif item_type == "integer":
            answers.append({"valueInteger": int(value)})
        elif item_type == "decimal":
            answers.append({"valueDecimal": value})
        elif item_type == "boolean":
            answers.append({"valueBoolean": bool(value)})
        elif item_type == "date":
            answers.append({"valueDate": value["Date"] if isinstance(value, dict) else value})
        elif item_type in ("string", "text"):
            answers.append({"valueString": str(value)})
        else:
            raise AssertionError(f"no mapping for {item_type}: {value!r}")
    return answers


def simple(answers: list[dict[str, Any]]) -> list[Any]:
    """Answers compared in tests: codings as `system|code`, other values as they are."""
    out: list[Any] = []
    for answer in answers:
        kind, value = next((k, v) for k, v in answer.items() if k.startswith("value"))
        out.append(f"{value['system']}|{value['code']}" if kind == "valueCoding" else value)
    return out


def auto(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer marked as filled in automatically by the DTR client (DTR information-origin)."""
    return {
        **answer,
        "extension": [{"url": ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}],
    }


def manual(answer: dict[str, Any], practitioner: str = "Practitioner/pra1234") -> dict[str, Any]:
    """An answer the clinician gave (information-origin `manual`, with the author)."""
    return {
        **answer,
        "extension": [
            {
                "url": ORIGIN,
                "extension": [
                    {"url": "source", "valueCode": "manual"},
                    {
                        "url": "author",
                        "extension": [
                            {"url": "practitioner", "valueReference": {"reference": practitioner}}
                        ],
                    },
                ],
            }
        ],
    }


def response_items(
    items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Response items mirroring `items` (groups kept when they hold an answer)."""
    built: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") == "display":
            continue
        if item.get("type") == "group":
            children = response_items(item.get("item") or [], answers)
            if children:
                built.append({"linkId": item["linkId"], "text": item["text"], "item": children})
        elif answers.get(item["linkId"]):
            built.append(
                {"linkId": item["linkId"], "text": item["text"], "answer": answers[item["linkId"]]}
            )
    return built


def completed_response(
    draft: dict[str, Any],
    items: list[dict[str, Any]],
    answers: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """The draft QuestionnaireResponse of a package completed with `answers` (a new resource:
    no id), as a DTR client stores it."""
    completed = copy.deepcopy(draft)
    completed.pop("id", None)
    completed["status"] = "completed"
    completed["item"] = response_items(items, answers)
    return completed


def stored_outcome(fhir: httpx.Client, completed: dict[str, Any]) -> list[str]:
    """POST `completed` asking for the OperationOutcome (assert 201); its diagnostics."""
    created = fhir.post(
        "/QuestionnaireResponse", json=completed, headers={"Prefer": "return=OperationOutcome"}
    )
    assert created.status_code == 201, created.text
    return [issue["diagnostics"] for issue in created.json()["issue"]]
