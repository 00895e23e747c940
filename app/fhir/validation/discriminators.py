"""Discriminator paths: parsed, followed through an instance, and followed through a profile.

A slicing discriminator's path (`code`, `extension('url').value`, `resolve().meta.profile`,
`value as Quantity`, `$this`) is read into segments once. `values_at` follows it through an
instance value to the values it names; `Targets.target` follows it through a slice's definition
to the element that constrains those values. Whether a value matches is decided in `slicing.py`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from app.fhir.validation.definitions import Definitions
from app.fhir.validation.references import resolve
from app.fhir.validation.run import Item, Run
from app.fhir.validation.structure import ElementDef
from app.fhir.validation.values import type_from_suffix

Segment = tuple[str, str]  # (kind, argument): name, extension, ofType, resolve


@lru_cache(maxsize=1024)
def segments(path: str) -> tuple[Segment, ...]:
    """Parse a discriminator path: names, `extension('url')`, `ofType(T)`, `as T`, `resolve()`."""
    parts: list[str] = []
    depth = 0
    quote = False
    current: list[str] = []
    for ch in path:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "." and depth == 0 and not quote:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if current:
        parts.append("".join(current).strip())
    out: list[Segment] = []
    for part in parts:
        cast = re.fullmatch(r"(\w+)\s+as\s+(\w+)", part)
        call = re.fullmatch(r"(\w+)\(\s*'?([^')]*)'?\s*\)", part)
        if part == "$this":
            continue
        if cast:
            out.extend([("name", cast[1]), ("ofType", cast[2])])
        elif call and call[1] in ("ofType", "extension", "resolve", "as"):
            out.append(("ofType" if call[1] == "as" else call[1], call[2]))
        else:
            out.append(("name", part))
    return tuple(out)


def values_at(run: Run, item: Item, path: str) -> list[tuple[Any, str | None]]:
    """The values (with their type, where known) a discriminator path reaches in `item`."""
    current: list[tuple[Any, str | None]] = [(item.value, item.type.code if item.type else None)]
    for kind, segment in segments(path):
        following: list[tuple[Any, str | None]] = []
        if kind == "resolve":
            for value, _t in current:
                ref = value.get("reference") if isinstance(value, dict) else None
                target = resolve(run, ref) if isinstance(ref, str) else None
                if target is not None:
                    following.append((target, target.get("resourceType")))
        elif kind == "ofType":
            following = [
                (v, t)
                for v, t in current
                if t == segment or (isinstance(v, dict) and v.get("resourceType") == segment)
            ]
        elif kind == "extension":
            for value, _t in current:
                if isinstance(value, dict):
                    for ext in value.get("extension") or []:
                        if isinstance(ext, dict) and ext.get("url") == segment:
                            following.append((ext, "Extension"))
        else:
            for value, _t in current:
                if not isinstance(value, dict):
                    continue
                if segment in value:
                    found = value[segment]
                    for v in found if isinstance(found, list) else [found]:
                        following.append((v, None))
                    continue
                for key, found in value.items():
                    if key.startswith(segment) and key[len(segment) : len(segment) + 1].isupper():
                        following.append((found, type_from_suffix(key[len(segment) :])))
        current = following
    return current


def extension_url(slice_def: ElementDef, path: str) -> str | None:
    """For `url` discriminators on extension slices: the profile's canonical URL."""
    if path != "url":
        return None
    for t in slice_def.types:
        if t.code == "Extension" and t.profiles:
            return t.profiles[0].split("|", 1)[0]
    return None


class Targets:
    """The element a discriminator path reaches in a slice's definition (cached per slice)."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        self._cache: dict[tuple[int, str], ElementDef | None] = {}

    def target(self, slice_def: ElementDef, path: str) -> ElementDef | None:
        key = (id(slice_def), path)
        if key in self._cache:
            return self._cache[key]
        structure_of = self._definitions.structure
        current: ElementDef | None = slice_def
        for kind, argument in segments(path):
            if current is None:
                break
            if kind == "resolve":
                profiles = [p for t in current.types for p in t.target_profiles]
                structure = next((s for s in map(structure_of, profiles) if s is not None), None)
                current = structure.root if structure else None
                continue
            if kind == "ofType":
                typed = next(
                    (s for s in current.slices if [t.code for t in s.types] == [argument]), None
                )
                current = typed or current
                continue
            if kind == "extension":
                url = argument
                holder = self._child(current, "extension")
                found = None
                if holder is not None:
                    for candidate in holder.slices:
                        for t in candidate.types:
                            if any(p.split("|", 1)[0] == url for p in t.profiles):
                                found = candidate
                        url_child = candidate.children.get("url")
                        if url_child is not None and url_child.fixed == url:
                            found = candidate
                if found is None:
                    structure = structure_of(url)
                    current = structure.root if structure else None
                else:
                    current = found
                continue
            current = self._child(current, argument)
        self._cache[key] = current
        return current

    def _child(self, element: ElementDef, name: str) -> ElementDef | None:
        if element.children:
            return element.children.get(name)
        definition = self._definitions.definition(
            Run(silent=True), element, element.types[0] if element.types else None, ""
        )
        if definition is None:
            return None
        return definition.children.get(name)
