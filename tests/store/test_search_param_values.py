"""What a search parameter indexes (`SearchParam.values`, walked level by level): engineering
tests against a reference walk written the obvious way (recursive: lists entered at every step,
missing elements and nulls skipped, values in document order), on every Da Vinci example and on
shapes the examples lack (nested lists, nulls, scalars where an object is expected); and the
index rows made of them (`index_entries`: deduplicated, in order, cut to the column size).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.registry import REGISTRY, ResourceSpec, SearchParam
from app.store.indexing import MAX_VALUE_LENGTH, IndexEntry, index_entries
from tests.support.ig_examples import davinci_examples


def _reference_walk(node: Any, steps: list[str]) -> list[Any]:
    if isinstance(node, list):
        return [value for item in node for value in _reference_walk(item, steps)]
    if not steps:
        return [] if node is None else [node]
    if isinstance(node, dict):
        return _reference_walk(node.get(steps[0]), steps[1:])
    return []


def _reference_values(param: SearchParam, resource: dict[str, Any]) -> list[Any]:
    return [v for path in param.paths for v in _reference_walk(resource, path.split("."))]


def test_every_registered_param_gives_the_reference_values_on_every_davinci_example() -> None:
    examples = davinci_examples()
    compared = found = 0
    for resource in examples:
        spec = REGISTRY.resource(str(resource.get("resourceType")))
        for param in spec.search_params if spec is not None else ():
            expected = _reference_values(param, resource)
            assert list(param.values(resource)) == expected, (resource.get("id"), param.name)
            compared += 1
            found += len(expected)
    assert len(examples) > 100 and compared > 200 and found > 100  # the walk was exercised


PARAM = SearchParam("p", "token", ("a.b.c", "d"), "two paths")

SHAPES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"a": {"b": {"c": "x"}}, "d": "y"}, ["x", "y"]),  # paths in order
    ({"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}]}, [1, 2, 3]),  # lists at each step
    ({"a": [[{"b": {"c": "deep"}}], {"b": {"c": "flat"}}]}, ["deep", "flat"]),  # nested lists
    ({"a": {"b": {"c": ["u", None, ["v"]]}}, "d": None}, ["u", "v"]),  # list values, nulls
    ({"a": {"b": None}, "d": [None]}, []),  # nulls on the way
    ({"a": "scalar", "d": {"nested": True}}, [{"nested": True}]),  # a scalar where an object is
    ({"a": {"b": {"c": False}}, "d": 0}, [False, 0]),  # falsy values are values
    ({}, []),
]


@pytest.mark.parametrize(("resource", "expected"), SHAPES)
def test_shapes_the_examples_lack_give_the_reference_values(
    resource: dict[str, Any], expected: list[Any]
) -> None:
    assert _reference_values(PARAM, resource) == expected
    assert list(PARAM.values(resource)) == expected


def test_index_rows_are_deduplicated_in_order_and_cut_to_the_column_size() -> None:
    spec = ResourceSpec(
        "Thing",
        (
            SearchParam("code", "token", ("code", "alias"), "codes"),
            SearchParam("name", "string", ("name",), "names"),
            SearchParam("owner", "reference", ("owner.reference",), "owner", target="Patient"),
        ),
    )
    long = "x" * (MAX_VALUE_LENGTH + 10)
    thing = {
        "code": [{"coding": [{"system": "s", "code": "1"}, {"system": "s", "code": "2"}]}],
        "alias": [{"system": "s", "code": "1"}, long, long + "y"],  # a repeat; two cut alike
        "name": ["  Ann   LEE ", "ann lee"],  # equal once normalized
        "owner": [{"reference": "Patient/7"}, {"reference": "Group/8"}],  # only Patient kept
    }
    assert index_entries(spec, thing) == [
        IndexEntry("code", "s", "1"),
        IndexEntry("code", "s", "2"),
        IndexEntry("code", None, long[:MAX_VALUE_LENGTH]),
        IndexEntry("name", None, "ann lee"),
        IndexEntry("owner", "Patient", "7"),
    ]
