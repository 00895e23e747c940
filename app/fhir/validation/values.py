"""JSON instance values: fixed and pattern comparison, choice-type suffixes, short renderings.

Fixed values must be equal exactly; a pattern only needs each of its elements present (in an
array: matched by some item). Numbers compare by value (`1` equals `1.0`), never as booleans.
"""

from __future__ import annotations

from typing import Any

from app.fhir.validation.structure import PRIMITIVE_JSON


def _numbers_equal(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def json_equal(expected: Any, actual: Any) -> bool:
    """Exact equality for fixed values (numbers compared by value)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or expected.keys() != actual.keys():
            return False
        return all(json_equal(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        return all(json_equal(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual or _numbers_equal(expected, actual)


def matches_pattern(pattern: Any, actual: Any) -> bool:
    """Pattern semantics: every element of the pattern is present (arrays: some item each)."""
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return False
        return all(k in actual and matches_pattern(v, actual[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = actual if isinstance(actual, list) else [actual]
        return all(any(matches_pattern(p, a) for a in items) for p in pattern)
    return pattern == actual or _numbers_equal(pattern, actual)


def type_from_suffix(suffix: str) -> str:
    """The type a choice element's JSON suffix names (`valueString` -> `string`)."""
    lowered = suffix[:1].lower() + suffix[1:]
    return lowered if lowered in PRIMITIVE_JSON else suffix


def short(value: Any) -> str:
    """`value` for a message, cut to 120 characters."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
