"""`app.fhir.quick_check.conforms` never accepts what the R4B models reject.

Every valid resource of a small corpus (the Inferno DTR kit's QuestionnaireResponses, the
`$next-question` requests shipped for testers, a Coverage and a ServiceRequest from the kit's
input) is mutated at every element in the ways clients get FHIR JSON wrong (wrong JSON types,
empty or null values, unknown or missing elements, bad dates and codes, two types for one choice
element); for each mutant, `conforms` True implies that the models accept it. The quick check
must also accept the valid corpus, or it would save nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from app.demo.dtr_inputs import NEXT_QUESTION_REQUESTS, load
from app.fhir.model_classes import model_class
from app.fhir.quick_check import conforms
from tests.conftest import INFERNO_FIXTURES

KIT = INFERNO_FIXTURES / "davinci-dtr-test-kit"
Path = tuple[str | int, ...]


def _kit(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((KIT / path).read_bytes())
    return loaded


def corpus() -> list[dict[str, Any]]:
    found = [
        {k: v for k, v in r["parameter"][0]["resource"].items() if k != "contained"}
        for r in load(NEXT_QUESTION_REQUESTS)
    ]
    found.append(_kit("extracted/postman_static_dinner_questionnaire_response.json"))
    found.append(_kit("extracted/postman_respiratory_questionnaire_response.json"))
    conformant = _kit("spec/fixtures/questionnaire_package_input_params_conformant.json")
    for parameter in conformant["parameter"]:
        found.append({k: v for k, v in parameter["resource"].items() if k != "contained"})
    return found


def models_accept(resource: dict[str, Any]) -> bool:
    model = model_class(str(resource["resourceType"]))
    assert model is not None
    try:
        model.model_validate(resource)
    except ValidationError:
        return False
    return True


def _paths(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "resourceType" or path:
                yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _replaced(resource: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def _edited(resource: dict[str, Any], path: Path, edit: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    node: Any = changed
    for part in path:
        node = node[part]
    edit(node)
    return changed


def _wrong_values(value: Any) -> list[Any]:
    """Values a client might send instead of `value`."""
    wrong: list[Any] = [None, {"bogus": 1}, [value]]
    if isinstance(value, bool):
        wrong += ["true", 1]
    elif isinstance(value, int):
        wrong += ["ten", True, 1.5, 2**40]
    elif isinstance(value, float):
        wrong += ["1.5x", True]
    elif isinstance(value, str):
        wrong += [123, "", " leading", "two  spaces", "2025-02-30", "2025-13-01", "10:61:00"]
    elif isinstance(value, dict):
        wrong += [{}, "text"]
    elif isinstance(value, list):
        wrong += [[], [None], "text"]
    return wrong


def mutants(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path, value in _paths(resource):
        if path:
            for wrong in _wrong_values(value):
                yield _replaced(resource, path, wrong)
        if isinstance(value, dict):
            yield _edited(resource, path, lambda node: node.update({"bogus": True}))
            for key in list(value):
                if key != "resourceType" or path:
                    yield _edited(resource, path, lambda node, key=key: node.pop(key))
            if any(key.startswith("value") for key in value):
                yield _edited(resource, path, lambda node: node.update({"valueString": "x"}))
                yield _edited(resource, path, lambda node: node.update({"valueBoolean": True}))


@pytest.mark.parametrize("index", range(len(corpus())))
def test_quick_check_accepts_the_valid_corpus(index: int) -> None:
    resource = corpus()[index]
    assert models_accept(resource)
    assert conforms(resource, str(resource["resourceType"]))


@pytest.mark.parametrize("index", range(len(corpus())))
def test_quick_check_never_accepts_what_the_models_reject(index: int) -> None:
    resource = corpus()[index]
    rejected = 0
    for mutant in mutants(resource):
        if not models_accept(mutant):
            rejected += 1
            assert not conforms(mutant, str(resource["resourceType"])), orjson.dumps(mutant)
    assert rejected >= 20  # the mutations do find what the models reject


def test_quick_check_leaves_other_shapes_to_the_models() -> None:
    response = corpus()[1]
    assert not conforms({**response, "resourceType": "Patient"}, "QuestionnaireResponse")
    assert not conforms(response, "NotAType")
    assert not conforms({**response, "_status": {"extension": []}}, "QuestionnaireResponse")
    assert not conforms({**response, "contained": [{"resourceType": "Basic"}]}, "Questionnaire")
