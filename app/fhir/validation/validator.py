"""The profile validator: walks a JSON resource against compiled StructureDefinition snapshots.

What is checked, element by element: JSON shape (objects, arrays, primitive JSON types and the
regex of each primitive type; see `shape.py`), unknown elements, cardinality, types (choice types
`value[x]`, datatype profiles, resource types of references), fixed and pattern values, slicing
(value, pattern, type, profile and exists discriminators; open, closed and openAtEnd rules;
ordering; see `slicing.py`), required and extensible bindings (`bindings.py`), invariants
(`invariants.py`) and, in a Bundle, that references resolve to an entry (`references.py`). Every
issue names its element with a FHIRPath-style `expression` such as
`Bundle.entry[2].resource.item[0].productOrService`.

A resource is validated against its core definition, the profiles in `meta.profile` and any
profile the caller names. A profile that is not in the loaded packages (US Core, HRex, SDC...) is
an `information` issue, and the resource is still checked against what is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.fhir.packages import FhirPackage, PackageRegistry
from app.fhir.validation import fhirpath
from app.fhir.validation.bindings import check_binding, member_of
from app.fhir.validation.bundles import BundleIndex
from app.fhir.validation.definitions import RESOURCE_BASES, Definitions, type_path
from app.fhir.validation.invariants import Invariants, check_invariants, domain_checks
from app.fhir.validation.references import CLOSED_BUNDLES, check_reference, resolve
from app.fhir.validation.run import Item, ResCtx, Run, ValidationResult
from app.fhir.validation.shape import (
    items_of,
    primitive_value,
    unknown_element,
    with_resource_type,
)
from app.fhir.validation.slicing import Slicer
from app.fhir.validation.structure import (
    CORE_PREFIX,
    PRIMITIVE_JSON,
    CompiledStructure,
    ElementDef,
    TypeRef,
)
from app.fhir.validation.terminology import Terminology
from app.fhir.validation.values import json_equal, matches_pattern, short


class Validator(Definitions):
    """Validates resources against the profiles of one package registry (caches are shared)."""

    def __init__(self, registry: PackageRegistry, prefer: FhirPackage | None = None) -> None:
        super().__init__(registry, prefer)
        self.terminology = Terminology(registry, prefer)
        self._invariants = Invariants(self)
        self._slicer = Slicer(self, self.terminology, self._item, self.conforms)

    # ----------------------------------------------------------------- public API

    def validate(
        self, resource: dict[str, Any], profile: str | Sequence[str] | None = None
    ) -> ValidationResult:
        """Validate `resource` (a Bundle: every entry too) against its profiles and `profile`."""
        run = Run()
        profiles = [profile] if isinstance(profile, str) else list(profile or ())
        self._with_env(run, lambda: self._resource(run, resource, _root_path(resource), profiles))
        return ValidationResult(run.issues)

    def conforms(self, resource: dict[str, Any], profile: str) -> bool | None:
        """Does `resource` conform to `profile`? None when the profile is not loaded."""
        if self.structure(profile) is None:
            return None
        run = Run(silent=True)
        self._with_env(run, lambda: self._resource(run, resource, "", [profile], declared=False))
        return run.errors == 0

    def _with_env(self, run: Run, action: Callable[[], None]) -> None:
        env = fhirpath.EvalEnv(
            resolve=lambda ref: resolve(run, ref),
            member_of=lambda vs, codings: member_of(self.terminology, vs, codings),
            conforms_to=lambda res, prof: self.conforms(res, prof),
        )
        token = fhirpath.set_env(env)
        try:
            action()
        finally:
            fhirpath.reset_env(token)

    # ----------------------------------------------------------------- resources

    def _resource(
        self,
        run: Run,
        resource: Any,
        path: str,
        profiles: Sequence[str],
        parent: ResCtx | None = None,
        *,
        any_of: Sequence[str] = (),
        declared: bool = True,
        contained: bool = False,
    ) -> None:
        if not isinstance(resource, dict):
            run.add("error", "structure", path, "A resource must be a JSON object")
            return
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not self.is_resource_type(rtype):
            run.add("error", "structure", path, f"Unknown or missing resourceType {rtype!r}")
            return
        path = path or rtype
        canonicals: list[str] = []
        for canonical in profiles:
            if canonical not in canonicals:
                canonicals.append(canonical)
        meta = resource.get("meta")
        if declared and isinstance(meta, dict) and isinstance(meta.get("profile"), list):
            for canonical in meta["profile"]:
                if isinstance(canonical, str) and canonical not in canonicals:
                    canonicals.append(canonical)
        structures: list[CompiledStructure] = []
        for canonical in canonicals:
            if canonical.split("|", 1)[0] in (CORE_PREFIX + "Resource", CORE_PREFIX + rtype):
                continue
            structure = self.structure(canonical)
            if structure is None:
                run.add(
                    "information",
                    "not-found",
                    path,
                    f"Profile {canonical} is not available in the loaded packages; "
                    f"validated against what is known",
                )
            elif structure.type != rtype:
                run.add(
                    "error",
                    "structure",
                    path,
                    f"Profile {canonical} is for {structure.type}, not {rtype}",
                )
            else:
                structures.append(structure)
        chosen = self._one_of(run, resource, rtype, any_of, path, parent)
        if chosen is not None and chosen not in structures:
            structures.append(chosen)
        if not structures:
            core = self.structure(CORE_PREFIX + rtype)
            if core is None:
                run.add("error", "not-found", path, f"No definition of {rtype} is loaded")
                return
            structures = [core]
        # %rootResource differs from %resource only for contained resources: a Bundle entry or a
        # Parameters resource is its own root (so `#id` references resolve in its `contained`).
        ctx = ResCtx(resource, parent.root if parent and contained else resource, contained)
        run.resources.append(ctx)
        if rtype == "Bundle":
            closed = [CLOSED_BUNDLES[s.url] for s in structures if s.url in CLOSED_BUNDLES]
            run.bundles.append(BundleIndex(resource, closed=closed[0] if closed else None))
        try:
            for structure in structures:
                self._complex(run, resource, structure.root, path, ctx, None, is_resource=True)
            domain_checks(run, resource, path, ctx)
        finally:
            run.resources.pop()
            if rtype == "Bundle":
                run.bundles.pop()

    def _one_of(
        self,
        run: Run,
        resource: dict[str, Any],
        rtype: str,
        any_of: Sequence[str],
        path: str,
        parent: ResCtx | None,
    ) -> CompiledStructure | None:
        """Of the profiles a type allows (any one suffices), the one the resource fits best."""
        candidates: list[CompiledStructure] = []
        for canonical in any_of:
            structure = self.structure(canonical)
            if structure is None:
                run.add(
                    "information",
                    "not-found",
                    path,
                    f"Profile {canonical} is not available in the loaded packages",
                )
            elif structure.type == rtype:
                candidates.append(structure)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        best: tuple[int, CompiledStructure] | None = None
        for structure in candidates:
            probe = run.probe()
            self._resource(probe, resource, path, [structure.canonical], parent, declared=False)
            if best is None or probe.errors < best[0]:
                best = (probe.errors, structure)
            if probe.errors == 0:
                break
        assert best is not None
        return best[1]

    # ----------------------------------------------------------------- elements

    def _complex(
        self,
        run: Run,
        obj: Any,
        element: ElementDef,
        path: str,
        ctx: ResCtx,
        type_ref: TypeRef | None,
        *,
        is_resource: bool = False,
    ) -> None:
        type_name = type_ref.code if type_ref else element.path
        if not isinstance(obj, dict):
            run.add(
                "error",
                "structure",
                path,
                f"Expected a JSON object for {type_name}, found {short(obj)}",
            )
            return
        definition = element if is_resource else self.definition(run, element, type_ref, path)
        if definition is None:
            run.add(
                "information", "not-supported", path, f"No definition of type {type_name} is loaded"
            )
            return
        if not is_resource and not any(k != "id" for k in obj):
            run.add(
                "error",
                "invariant",
                path,
                "ele-1: All FHIR elements must have a @value or children",
            )
        self._children(run, obj, definition, path, ctx, is_resource)
        node_type = obj["resourceType"] if is_resource else type_path(element, type_ref)
        checks = self._invariants.checks(element, definition, type_ref)
        check_invariants(run, obj, checks, path, node_type, ctx)
        if type_name == "Extension" or (type_ref is not None and type_ref.code == "Extension"):
            self._extension(run, obj, path, ctx, type_ref, element)

    def _extension(
        self,
        run: Run,
        obj: dict[str, Any],
        path: str,
        ctx: ResCtx,
        type_ref: TypeRef | None,
        element: ElementDef,
    ) -> None:
        has_value = any(k.startswith("value") for k in obj)
        if ("extension" in obj) == has_value:
            run.add(
                "error",
                "invariant",
                path,
                "ext-1: Must have either extensions or value[x], not both",
            )
        if (type_ref is not None and type_ref.profiles) or (
            element.children.get("url") is not None and (element.children["url"].fixed is not None)
        ):
            return  # defined by the slice or profile that was just applied
        url = obj.get("url")
        if not isinstance(url, str) or "://" not in url:
            return
        structure = self.structure(url)
        if structure is None:
            run.add(
                "information",
                "not-found",
                path,
                f"Extension {url} is not defined in the loaded packages",
            )
            return
        if structure.type != "Extension":
            run.add("error", "structure", path, f"{url} is not an extension definition")
            return
        self._children(run, obj, structure.root, path, ctx, False)
        root = structure.root
        check_invariants(
            run, obj, self._invariants.checks(root, root, None), path, "Extension", ctx
        )

    def _children(
        self,
        run: Run,
        obj: dict[str, Any],
        definition: ElementDef,
        path: str,
        ctx: ResCtx,
        is_resource: bool,
    ) -> None:
        keys = definition.json_keys()
        groups: dict[str, list[Item]] = {}
        children: dict[str, ElementDef] = {}
        for key, raw in obj.items():
            if key == "resourceType" and is_resource:
                continue
            name = key[1:] if key.startswith("_") else key
            if key.startswith("_") and name in obj:
                continue  # read with its primitive
            hit = keys.get(name) or self.fallback_keys(definition).get(name)
            if hit is None:
                unknown_element(run, name, definition, path)
                continue
            child, type_ref = hit
            if key.startswith("_"):
                items = items_of(run, None, raw, child, type_ref, name, path)
            else:
                items = items_of(run, raw, obj.get("_" + key), child, type_ref, key, path)
            groups.setdefault(child.name, []).extend(items)
            children.setdefault(child.name, child)
        for child in definition.required_children():
            if child.name not in groups:
                run.add(
                    "error",
                    "required",
                    f"{path}.{child.name}",
                    f"{child.id}: minimum required = {child.min}, but only found 0",
                )
        for name, items in groups.items():
            child = children[name]
            where = f"{path}.{name}"
            if len(items) < child.min:
                run.add(
                    "error",
                    "required",
                    where,
                    f"{child.id}: minimum required = {child.min}, but only found {len(items)}",
                )
            if child.max is not None and len(items) > child.max:
                run.add(
                    "error",
                    "structure",
                    where,
                    f"{child.id}: maximum allowed = {child.max_label}, but found {len(items)}",
                )
            if child.slices:
                self._slicer.sliced(run, items, child, where, ctx)
            else:
                for item in items:
                    self._item(run, item, child, ctx)

    def _item(self, run: Run, item: Item, element: ElementDef, ctx: ResCtx) -> None:
        if len(element.types) > 1 and not element.choice:
            item = with_resource_type(run, item, element)
        type_ref = item.type
        if type_ref is None:
            if element.content_reference:
                self._complex(run, item.value, element, item.path, ctx, None)
            return
        code = type_ref.code
        if code in PRIMITIVE_JSON:
            self._primitive(run, item, element, type_ref, ctx)
        elif code in RESOURCE_BASES or self.is_resource_type(code):
            self._resource(
                run,
                item.value,
                item.path,
                (),
                ctx,
                any_of=type_ref.profiles,
                contained=element.path.endswith(".contained"),
            )
        else:
            pushed = element.path == "Bundle.entry"
            if pushed:
                full_url = item.value.get("fullUrl") if isinstance(item.value, dict) else None
                run.full_urls.append(full_url if isinstance(full_url, str) else None)
            try:
                self._complex(run, item.value, element, item.path, ctx, type_ref)
            finally:
                if pushed:
                    run.full_urls.pop()
        value = item.value
        if value is None:
            return
        if element.fixed is not None and not json_equal(element.fixed, value):
            run.add(
                "error",
                "value",
                item.path,
                f"Value is {short(value)} but must be exactly {short(element.fixed)} "
                f"({element.id})",
            )
        if element.pattern is not None and not matches_pattern(element.pattern, value):
            run.add(
                "error",
                "value",
                item.path,
                f"Value {short(value)} does not match the pattern {short(element.pattern)} "
                f"({element.id})",
            )
        binding = element.binding
        if (
            binding is not None
            and binding.value_set
            and binding.strength in ("required", "extensible")
        ):
            check_binding(run, item, binding, type_ref, self.terminology)
        if code == "Reference" and isinstance(value, dict):
            check_reference(run, item, type_ref, self)

    def _primitive(
        self, run: Run, item: Item, element: ElementDef, type_ref: TypeRef, ctx: ResCtx
    ) -> None:
        code = type_ref.code
        value = item.value
        if value is not None and not primitive_value(run, value, code, item.path, self):
            return
        if item.ext is not None:
            if not isinstance(item.ext, dict):
                run.add(
                    "error",
                    "structure",
                    item.path,
                    "A primitive's extension companion must be an object",
                )
            else:
                holder = (
                    element
                    if element.children
                    else self.definition(run, element, type_ref, item.path)
                )
                if holder is not None:
                    self._children(run, item.ext, holder, item.path, ctx, False)
                if value is None and not item.ext.get("extension"):
                    run.add(
                        "error",
                        "invariant",
                        item.path,
                        "ele-1: All FHIR elements must have a @value or children",
                    )
        if value is not None and element.constraints:
            checks = self._invariants.checks(element, element, None)
            check_invariants(run, value, checks, item.path, code, ctx)


def _root_path(resource: Any) -> str:
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
        return str(resource["resourceType"])
    return "Resource"


__all__ = ["Validator"]
