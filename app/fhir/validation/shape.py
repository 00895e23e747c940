"""The JSON form of instance values, checked before the walk descends into them.

Arrays only for repeating elements, never null or empty; no unrecognised keys (a choice element
with a type it does not allow is named as such); the resource type of an element allowing
several; and primitive values of the right JSON type, matching the regex of their FHIR type and,
for integers, within range.
"""

from __future__ import annotations

from typing import Any

from app.fhir.validation.definitions import RESOURCE_BASES, Definitions
from app.fhir.validation.run import Item, Run
from app.fhir.validation.structure import PRIMITIVE_JSON, ElementDef, TypeRef
from app.fhir.validation.values import short, type_from_suffix

_INT32 = (-(2**31), 2**31 - 1)


def items_of(
    run: Run,
    raw: Any,
    ext: Any,
    child: ElementDef,
    type_ref: TypeRef | None,
    key: str,
    path: str,
) -> list[Item]:
    """The values of the JSON property `key` (and its `_key` companion) as items to walk."""
    name = child.name
    if child.choice and type_ref is not None:
        name = f"{child.name}.ofType({type_ref.code})"
    base = f"{path}.{name}"
    if not child.is_array:
        if isinstance(raw, list) or isinstance(ext, list):
            run.add(
                "error",
                "structure",
                base,
                f"{child.path} is not repeating, but an array was found",
            )
            return []
        if raw is None and ext is None:
            run.add("error", "structure", base, f"{key} is null; empty values are not allowed")
            return []
        return [Item(raw, ext, type_ref, base)]
    values = raw if raw is not None else []
    extensions = ext if ext is not None else []
    if not isinstance(values, list) or not isinstance(extensions, list):
        run.add("error", "structure", base, f"{child.path} repeats: it must be a JSON array")
        values = values if isinstance(values, list) else [values]
        extensions = extensions if isinstance(extensions, list) else []
    if not values and not extensions:
        run.add("error", "structure", base, f"{key} is an empty array; omit it instead")
        return []
    items: list[Item] = []
    for index in range(max(len(values), len(extensions))):
        value = values[index] if index < len(values) else None
        extension = extensions[index] if index < len(extensions) else None
        where = f"{base}[{index}]"
        if value is None and extension is None:
            run.add("error", "structure", where, f"{key}[{index}] is null")
            continue
        items.append(Item(value, extension, type_ref, where))
    return items


def unknown_element(run: Run, key: str, definition: ElementDef, path: str) -> None:
    """Report a JSON property `definition` does not define."""
    for child in definition.children.values():
        name = child.name
        if child.choice and key.startswith(name) and key[len(name) : len(name) + 1].isupper():
            allowed = ", ".join(t.code for t in child.types)
            found = type_from_suffix(key[len(name) :])
            closed = child.slicing is not None and child.slicing.rules == "closed"
            detail = (
                f"; it matches no slice of {child.id}, and that slicing is closed" if closed else ""
            )
            run.add(
                "error",
                "structure",
                f"{path}.{name}.ofType({found})",
                f"Type {found} is not allowed for {child.path} (allowed: {allowed}){detail}",
            )
            return
    run.add(
        "error",
        "structure",
        f"{path}.{key}",
        f"Unrecognized element '{key}' in {definition.path}",
    )


def with_resource_type(run: Run, item: Item, element: ElementDef) -> Item:
    """For a non-choice element allowing several resource types: the instance's one."""
    value = item.value
    rtype = value.get("resourceType") if isinstance(value, dict) else None
    for t in element.types:
        if t.code == rtype:
            return Item(item.value, item.ext, t, item.path)
    for t in element.types:
        if t.code in RESOURCE_BASES:
            return Item(item.value, item.ext, t, item.path)
    if isinstance(rtype, str):
        allowed = ", ".join(t.code for t in element.types)
        run.add(
            "error",
            "structure",
            item.path,
            f"Resource type {rtype} is not allowed for {element.id} (allowed: {allowed})",
        )
    return item


def primitive_value(run: Run, value: Any, code: str, path: str, definitions: Definitions) -> bool:
    """Check a (non-null) primitive value; False if its JSON type is wrong (check no further)."""
    expected = PRIMITIVE_JSON[code]
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        run.add("error", "structure", path, f"{code} value {short(value)} has the wrong JSON type")
        return False
    if isinstance(value, str):
        if code != "xhtml":
            pattern = definitions.primitive_regex(code)
            if (pattern is not None and pattern.fullmatch(value) is None) or not value.strip():
                run.add("error", "value", path, f"{short(value)} is not a valid {code}")
        elif not value.lstrip().startswith("<div"):
            run.add("error", "value", path, "Narrative must be an XHTML <div>")
    elif code in ("integer", "unsignedInt", "positiveInt") and isinstance(value, int):
        low = {"integer": _INT32[0], "unsignedInt": 0, "positiveInt": 1}[code]
        if not low <= value <= _INT32[1]:
            run.add("error", "value", path, f"{value} is out of range for {code}")
    return True
