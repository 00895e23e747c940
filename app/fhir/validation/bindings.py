"""Terminology bindings: whether coded values are in the value set an element is bound to.

A code outside a `required` binding is an error, outside an `extensible` one a warning; a code
that cannot be checked with the loaded packages (CPT, ICD-10, ...) is an `information` issue.
Value set membership itself is `terminology.py`.
"""

from __future__ import annotations

from typing import Any

from app.fhir.validation.run import Item, Run
from app.fhir.validation.structure import Binding, TypeRef
from app.fhir.validation.terminology import Terminology


def check_binding(
    run: Run, item: Item, binding: Binding, type_ref: TypeRef, terminology: Terminology
) -> None:
    """The codes of `item` against the value set of a required or extensible binding."""
    assert binding.value_set
    value_set = binding.value_set
    strength = binding.strength
    value = item.value
    code = type_ref.code
    codings: list[tuple[str | None, str]] = []
    if code in ("code", "string", "uri") and isinstance(value, str):
        codings = [(None, value)]
    elif code in ("Coding", "Quantity") and isinstance(value, dict):
        if isinstance(value.get("code"), str):
            codings = [(value.get("system"), value["code"])]
    elif code == "CodeableConcept" and isinstance(value, dict):
        for coding in value.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                codings.append((coding.get("system"), coding["code"]))
        if not codings:
            if strength == "required":
                run.add(
                    "error",
                    "code-invalid",
                    item.path,
                    f"No code provided, and a code is required from the value set {value_set}",
                )
            return
    else:
        return
    if not codings:
        return
    reasons: list[str] = []
    for system, code_value in codings:
        result, reason = terminology.contains(value_set, system, code_value)
        if result is True:
            return
        if result is None:
            reasons.append(reason or "undecidable")
    shown = ", ".join(f"{s}#{c}" if s else c for s, c in codings)
    if reasons:
        run.add(
            "information",
            "code-invalid",
            item.path,
            f"Code {shown} was not checked against {value_set}: {reasons[0]}",
        )
        return
    if strength == "required":
        run.add(
            "error",
            "code-invalid",
            item.path,
            f"The code {shown} is not in the value set {value_set} (required binding)",
        )
    else:
        run.add(
            "warning",
            "code-invalid",
            item.path,
            f"The code {shown} is not in the value set {value_set} (extensible binding)",
        )


def member_of(
    terminology: Terminology, value_set: str, codings: list[tuple[str | None, str]]
) -> bool | None:
    """Is any of `codings` in `value_set`? None when that cannot be decided."""
    unknown = False
    for system, code in codings:
        result, _reason = terminology.contains(value_set, system, code)
        if result is True:
            return True
        if result is None:
            unknown = True
    return None if unknown else False


def codes_of(value: Any) -> list[tuple[str | None, str]]:
    """(system, code) pairs of a code, Coding or CodeableConcept value."""
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        if isinstance(value.get("coding"), list):
            return [
                (c.get("system"), str(c["code"]))
                for c in value["coding"]
                if isinstance(c, dict) and "code" in c
            ]
        if "code" in value:
            return [(value.get("system"), str(value["code"]))]
    return []
