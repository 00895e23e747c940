"""Slicing: sorting the items of a sliced element into its slices, and checking each slice.

An item belongs to the first slice whose discriminators all match it (value, pattern, type,
profile and exists discriminators; without discriminators, the first slice it conforms to). Then
the slicing rules apply: closed (no item outside the slices), openAtEnd (those items come last)
and ordered; then each slice's cardinality, and each item is walked against its slice (re-slices
recursively). Where the discriminator paths lead is `discriminators.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.fhir.validation.bindings import codes_of, member_of
from app.fhir.validation.definitions import RESOURCE_BASES, Definitions
from app.fhir.validation.discriminators import Targets, extension_url, segments, values_at
from app.fhir.validation.run import Item, ResCtx, Run
from app.fhir.validation.structure import Discriminator, ElementDef, TypeRef
from app.fhir.validation.terminology import Terminology
from app.fhir.validation.values import json_equal, matches_pattern

#: Walks one item against its element (the Validator's element walk).
WalkItem = Callable[[Run, Item, ElementDef, ResCtx], None]
#: Does a resource conform to a profile? None when the profile is not loaded.
Conforms = Callable[[dict[str, Any], str], bool | None]


def retype(item: Item, slice_def: ElementDef) -> Item:
    """The item with the slice's own TypeRef (it may carry a profile the base has not)."""
    if item.type is None:
        return item
    for t in slice_def.types:
        if t.code == item.type.code:
            return Item(item.value, item.ext, t, item.path)
    if len(slice_def.types) == 1 and item.type.code in RESOURCE_BASES:
        return Item(item.value, item.ext, slice_def.types[0], item.path)
    return item


class Slicer:
    """Applies the slicing of an element to its items, walking each with `walk`."""

    def __init__(
        self,
        definitions: Definitions,
        terminology: Terminology,
        walk: WalkItem,
        conforms: Conforms,
    ) -> None:
        self._definitions = definitions
        self._terminology = terminology
        self._walk = walk
        self._conforms = conforms
        self._targets = Targets(definitions)

    def sliced(self, run: Run, items: list[Item], base: ElementDef, path: str, ctx: ResCtx) -> None:
        slicing = base.slicing
        discriminators = slicing.discriminators if slicing else ()
        rules = slicing.rules if slicing else "open"
        counts = [0] * len(base.slices)
        groups: list[list[Item]] = [[] for _ in base.slices]
        last = -1
        unmatched = False
        for item in items:
            matched = -1
            for index, candidate in enumerate(base.slices):
                if self._matches(run, item, candidate, discriminators, ctx):
                    matched = index
                    break
            if matched < 0:
                unmatched = True
                if rules == "closed":
                    run.add(
                        "error",
                        "structure",
                        item.path,
                        f"This element does not match any known slice of {base.id}, "
                        "and slicing is closed",
                    )
                self._walk(run, item, base, ctx)
                continue
            if slicing is not None and slicing.ordered and matched < last:
                run.add("error", "structure", item.path, f"Slices of {base.id} are out of order")
            if rules == "openAtEnd" and unmatched:
                run.add(
                    "error",
                    "structure",
                    item.path,
                    f"Open items of {base.id} must come after the slices",
                )
            last = max(last, matched)
            counts[matched] += 1
            groups[matched].append(item)
        for index, slice_def in enumerate(base.slices):
            count = counts[index]
            if count < slice_def.min:
                run.add(
                    "error",
                    "required",
                    path,
                    f"Slice '{slice_def.slice_name}' of {base.path}: minimum required = "
                    f"{slice_def.min}, but only found {count}",
                )
            if slice_def.max is not None and count > slice_def.max:
                run.add(
                    "error",
                    "structure",
                    path,
                    f"Slice '{slice_def.slice_name}' of {base.path}: maximum allowed = "
                    f"{slice_def.max_label}, but found {count}",
                )
            if slice_def.slices:
                if groups[index]:
                    self.sliced(run, groups[index], slice_def, path, ctx)
            else:
                for item in groups[index]:
                    self._walk(run, retype(item, slice_def), slice_def, ctx)

    def _matches(
        self,
        run: Run,
        item: Item,
        slice_def: ElementDef,
        discriminators: Sequence[Discriminator],
        ctx: ResCtx,
    ) -> bool:
        if not discriminators:
            return self._conforms_item(run, item, slice_def, ctx)
        return all(self._discriminator(run, item, slice_def, d) for d in discriminators)

    def _conforms_item(self, run: Run, item: Item, element: ElementDef, ctx: ResCtx) -> bool:
        probe = run.probe()
        self._walk(probe, retype(item, element), element, ctx)
        return probe.errors == 0

    def _discriminator(
        self, run: Run, item: Item, slice_def: ElementDef, disc: Discriminator
    ) -> bool:
        values = values_at(run, item, disc.path)
        target = self._targets.target(slice_def, disc.path)
        if disc.type == "exists":
            if target is None:
                return False
            if target.min >= 1:
                return bool(values)
            if target.max == 0:
                return not values
            return True
        if disc.type in ("value", "pattern"):
            expected_url = extension_url(slice_def, disc.path)
            if expected_url is not None:
                return any(v == expected_url for v, _t in values)
            if target is None:
                return False
            if target.fixed is not None:
                return any(json_equal(target.fixed, v) for v, _t in values)
            if target.pattern is not None:
                return any(matches_pattern(target.pattern, v) for v, _t in values)
            binding = target.binding
            if binding is not None and binding.strength == "required" and binding.value_set:
                for v, _t in values:
                    codes = codes_of(v)
                    if codes and member_of(self._terminology, binding.value_set, codes) is True:
                        return True
            return False
        if disc.type == "type":
            if target is None:
                return False
            allowed = {t.code for t in target.types}
            for v, t in values:
                actual = v.get("resourceType") if isinstance(v, dict) and "resourceType" in v else t
                if actual in allowed:
                    return True
            return False
        if disc.type == "profile":
            if target is None:
                return False
            resolving = any(kind == "resolve" for kind, _ in segments(disc.path))
            profiles = [
                p for t in target.types for p in (t.target_profiles if resolving else t.profiles)
            ]
            if not profiles:
                return bool(values)  # no profile constrains this slice: any value fits
            for v, _t in values:
                if not isinstance(v, dict):
                    continue
                for profile in profiles:
                    if "resourceType" in v:
                        if self._conforms(v, profile):
                            return True
                    else:
                        structure = self._definitions.structure(profile)
                        if structure is not None and self._conforms_item(
                            run,
                            Item(v, None, TypeRef(structure.type, (profile,)), ""),
                            structure.root,
                            run.resources[-1] if run.resources else ResCtx(v, v),
                        ):
                            return True
            return False
        return False
