"""Looking up definitions in the loaded packages, each compiled once and cached.

`Definitions` finds the compiled profile or type for a canonical URL, the regex of a primitive
type, the resource types a Reference may target, and the element that describes an element's
content (inline children, a `contentReference`, a type profile or the core type). The Validator
extends it; nothing here reads instances.
"""

from __future__ import annotations

import re

from app.fhir.packages import FhirPackage, PackageRegistry
from app.fhir.validation.run import Run
from app.fhir.validation.structure import (
    CORE_PREFIX,
    REGEX_EXT,
    CompiledStructure,
    ElementDef,
    TypeRef,
    compile_structure,
)

#: Abstract types standing for "any resource".
RESOURCE_BASES = ("Resource", "DomainResource")


class Definitions:
    """The compiled StructureDefinitions of one package registry, and lookups over them."""

    def __init__(self, registry: PackageRegistry, prefer: FhirPackage | None = None) -> None:
        self.registry = registry
        self.prefer = prefer
        self._structures: dict[str, CompiledStructure | None] = {}
        self._regex: dict[str, re.Pattern[str] | None] = {}
        self._resource_types: dict[str, bool] = {}
        self._targets: dict[tuple[str, ...], frozenset[str] | None] = {}
        self._fallbacks: dict[int, dict[str, tuple[ElementDef, TypeRef | None]]] = {}

    def structure(self, canonical: str) -> CompiledStructure | None:
        """The compiled profile or type definition for `canonical` (None if not loaded)."""
        if canonical in self._structures:
            return self._structures[canonical]
        located = self.registry.locate(canonical, "StructureDefinition", self.prefer)
        compiled: CompiledStructure | None = None
        if located is not None:
            sd = located.resource
            if (sd.get("snapshot") or {}).get("element"):
                compiled = compile_structure(sd, located.package)
        self._structures[canonical] = compiled
        return compiled

    def is_resource_type(self, code: str) -> bool:
        known = self._resource_types.get(code)
        if known is None:
            known = False
            if code[:1].isupper():
                sd = self.registry.structure_definition(CORE_PREFIX + code)
                known = bool(sd and sd.get("kind") == "resource")
            self._resource_types[code] = known
        return known

    def primitive_regex(self, code: str) -> re.Pattern[str] | None:
        if code not in self._regex:
            pattern: re.Pattern[str] | None = None
            core = self.structure(CORE_PREFIX + code)
            value = core.root.children.get("value") if core else None
            if value is not None and value.types:
                sd = self.registry.structure_definition(CORE_PREFIX + code) or {}
                for element in (sd.get("snapshot") or {}).get("element", []):
                    if element.get("path") != f"{code}.value":
                        continue
                    for t in element.get("type", []):
                        for ext in t.get("extension", []):
                            if ext.get("url") == REGEX_EXT:
                                try:
                                    pattern = re.compile(ext["valueString"])
                                except re.error:
                                    pattern = None
            self._regex[code] = pattern
        return self._regex[code]

    def target_types(self, profiles: tuple[str, ...]) -> frozenset[str] | None:
        """Resource types a Reference may point to (None: any, or not knowable)."""
        if profiles in self._targets:
            return self._targets[profiles]
        types: set[str] = set()
        result: frozenset[str] | None = None
        for profile in profiles:
            sd = self.registry.structure_definition(profile, self.prefer)
            if sd is None:
                url = profile.split("|", 1)[0]
                if url.startswith(CORE_PREFIX) and self.is_resource_type(url[len(CORE_PREFIX) :]):
                    types.add(url[len(CORE_PREFIX) :])
                    continue
                types = set()
                break
            type_name = str(sd.get("type"))
            if type_name in RESOURCE_BASES:
                types = set()
                break
            types.add(type_name)
        if types:
            result = frozenset(types)
        self._targets[profiles] = result
        return result

    def definition(
        self, run: Run, element: ElementDef, type_ref: TypeRef | None, path: str
    ) -> ElementDef | None:
        """The element whose children describe the content of `element` (inline or by type)."""
        if element.content_reference and element.structure is not None:
            target = element.structure.element_by_path(element.content_reference)
            if target is None:
                core = self.structure(CORE_PREFIX + element.content_reference.split(".")[0])
                target = core.element_by_path(element.content_reference) if core else None
            return target
        if element.children:
            return element
        if type_ref is None:
            return element
        for profile in type_ref.profiles:
            structure = self.structure(profile)
            if structure is not None:
                return structure.root
            run.add(
                "information",
                "not-found",
                path,
                f"Profile {profile} is not available in the loaded packages; "
                f"validated as {type_ref.code}",
            )
        core = self.structure(CORE_PREFIX + type_ref.code)
        return core.root if core else None

    def fallback_keys(self, definition: ElementDef) -> dict[str, tuple[ElementDef, TypeRef | None]]:
        """Children a snapshot left out of an inline definition: from the sliced element, or
        from the element's type. (Snapshots list them all; this keeps partial ones usable.)"""
        key = id(definition)
        found = self._fallbacks.get(key)
        if found is None:
            found = {}
            if definition.sliced_from is not None and definition.sliced_from.children:
                found = definition.sliced_from.json_keys()
            elif len(definition.types) == 1 and definition.children:
                type_ref = definition.types[0]
                if (
                    type_ref.code not in ("BackboneElement", "Element")
                    and not type_ref.is_primitive
                ):
                    core = self.structure(CORE_PREFIX + type_ref.code)
                    if core is not None and core.root is not definition:
                        found = core.root.json_keys()
            # Only elements the inline definition lacks entirely: a choice it restricts to fewer
            # types (value[x] -> valueCode only) stays restricted.
            found = {k: v for k, v in found.items() if v[0].name not in definition.children}
            self._fallbacks[key] = found
        return found


def type_path(element: ElementDef, type_ref: TypeRef | None) -> str:
    """The FHIRPath type of a node, for evaluating its invariants."""
    if type_ref is not None and type_ref.code not in ("BackboneElement", "Element"):
        return type_ref.code
    if element.content_reference:
        return element.content_reference
    return element.path
