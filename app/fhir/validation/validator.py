"""The profile validator: walks a JSON resource against compiled StructureDefinition snapshots.

What is checked, element by element: JSON shape (objects, arrays, primitive JSON types and the
regex of each primitive type), unknown elements, cardinality, types (choice types `value[x]`,
datatype profiles, resource types of references), fixed and pattern values, slicing (value,
pattern, type, profile and exists discriminators; open, closed and openAtEnd rules; ordering),
required and extensible bindings (see `terminology.py`), invariants (see `fhirpath.py`) and, in a
Bundle, that references resolve to an entry. Every issue names its element with a FHIRPath-style
`expression` such as `Bundle.entry[2].resource.item[0].productOrService`.

A resource is validated against its core definition, the profiles in `meta.profile` and any
profile the caller names. A profile that is not in the loaded packages (US Core, HRex, SDC...) is
an `information` issue, and the resource is still checked against what is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.fhir.outcomes import Issue, Severity, operation_outcome
from app.fhir.packages import FhirPackage, PackageRegistry
from app.fhir.validation import fhirpath
from app.fhir.validation.bundles import BundleIndex
from app.fhir.validation.native import NativeCheck, native_check
from app.fhir.validation.structure import (
    CORE_PREFIX,
    PRIMITIVE_JSON,
    REGEX_EXT,
    CompiledStructure,
    Constraint,
    Discriminator,
    ElementDef,
    TypeRef,
    compile_structure,
)
from app.fhir.validation.terminology import Terminology

_RESOURCE_BASES = ("Resource", "DomainResource")
_LITERAL_REF = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$"
)
_INT32 = (-(2**31), 2**31 - 1)
_PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
#: Bundles whose every reference must resolve to an entry, with the IG statement that says so.
CLOSED_BUNDLES = {
    _PAS + "profile-pas-request-bundle": "PAS spec-13",
    _PAS + "profile-pas-inquiry-request-bundle": "PAS spec-13",
}


@dataclass
class ValidationResult:
    """Issues found, as OperationOutcome issues; `ok` when none is an error."""

    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity in ("error", "fatal")]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    def describe(self, severities: Iterable[str] = ("fatal", "error")) -> str:
        wanted = set(severities)
        return "\n".join(
            f"{i.severity} [{i.code}] {', '.join(i.expression)}: {i.diagnostics}"
            for i in self.issues
            if i.severity in wanted
        )


@dataclass
class _Item:
    """One instance value found under an element: value, `_x` companion, type, path."""

    value: Any
    ext: Any
    type: TypeRef | None
    path: str


@dataclass
class _ResCtx:
    resource: dict[str, Any]
    root: dict[str, Any]
    contained: bool = False


@dataclass
class _Run:
    """The state of one validation call (the Validator itself only holds caches)."""

    silent: bool = False
    issues: list[Issue] = field(default_factory=list)
    seen: set[tuple[str, str, str, str]] = field(default_factory=set)
    errors: int = 0
    bundles: list[BundleIndex] = field(default_factory=list)
    full_urls: list[str | None] = field(default_factory=list)
    resources: list[_ResCtx] = field(default_factory=list)

    def add(self, severity: Severity, code: str, path: str, message: str) -> None:
        if severity in ("error", "fatal"):
            self.errors += 1
        if self.silent:
            return
        key = (severity, code, path, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.issues.append(Issue(severity, code, message, (path,)))


Segment = tuple[str, str]  # (kind, argument): name, extension, ofType, resolve


@lru_cache(maxsize=1024)
def _segments(path: str) -> tuple[Segment, ...]:
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


def _type_from_suffix(suffix: str) -> str:
    lowered = suffix[:1].lower() + suffix[1:]
    return lowered if lowered in PRIMITIVE_JSON else suffix


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Validator:
    """Validates resources against the profiles of one package registry (caches are shared)."""

    def __init__(self, registry: PackageRegistry, prefer: FhirPackage | None = None) -> None:
        self.registry = registry
        self.prefer = prefer
        self.terminology = Terminology(registry, prefer)
        self._structures: dict[str, CompiledStructure | None] = {}
        self._regex: dict[str, re.Pattern[str] | None] = {}
        self._resource_types: dict[str, bool] = {}
        self._targets: dict[tuple[str, ...], frozenset[str] | None] = {}
        self._disc_targets: dict[tuple[int, str], ElementDef | None] = {}
        self._check_cache: dict[tuple[int, int, str], tuple[_Check, ...]] = {}
        self._fallbacks: dict[int, dict[str, tuple[ElementDef, TypeRef | None]]] = {}

    # ----------------------------------------------------------------- definitions

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
            if type_name in _RESOURCE_BASES:
                types = set()
                break
            types.add(type_name)
        if types:
            result = frozenset(types)
        self._targets[profiles] = result
        return result

    # ----------------------------------------------------------------- public API

    def validate(
        self, resource: dict[str, Any], profile: str | Sequence[str] | None = None
    ) -> ValidationResult:
        """Validate `resource` (a Bundle: every entry too) against its profiles and `profile`."""
        run = _Run()
        profiles = [profile] if isinstance(profile, str) else list(profile or ())
        self._with_env(run, lambda: self._resource(run, resource, _root_path(resource), profiles))
        return ValidationResult(run.issues)

    def conforms(self, resource: dict[str, Any], profile: str) -> bool | None:
        """Does `resource` conform to `profile`? None when the profile is not loaded."""
        if self.structure(profile) is None:
            return None
        run = _Run(silent=True)
        self._with_env(run, lambda: self._resource(run, resource, "", [profile], declared=False))
        return run.errors == 0

    def _with_env(self, run: _Run, action: Any) -> None:
        env = fhirpath.EvalEnv(
            resolve=lambda ref: self._resolve(run, ref),
            member_of=lambda vs, codings: self._member_of(vs, codings),
            conforms_to=lambda res, prof: self.conforms(res, prof),
        )
        token = fhirpath.set_env(env)
        try:
            action()
        finally:
            fhirpath.reset_env(token)

    def _member_of(self, value_set: str, codings: list[tuple[str | None, str]]) -> bool | None:
        unknown = False
        for system, code in codings:
            result, _reason = self.terminology.contains(value_set, system, code)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    # ----------------------------------------------------------------- resources

    def _resource(
        self,
        run: _Run,
        resource: Any,
        path: str,
        profiles: Sequence[str],
        parent: _ResCtx | None = None,
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
        ctx = _ResCtx(resource, parent.root if parent and contained else resource, contained)
        run.resources.append(ctx)
        if rtype == "Bundle":
            closed = [CLOSED_BUNDLES[s.url] for s in structures if s.url in CLOSED_BUNDLES]
            run.bundles.append(BundleIndex(resource, closed=closed[0] if closed else None))
        try:
            for structure in structures:
                self._complex(run, resource, structure.root, path, ctx, None, is_resource=True)
            self._domain_checks(run, resource, path, ctx)
        finally:
            run.resources.pop()
            if rtype == "Bundle":
                run.bundles.pop()

    def _one_of(
        self,
        run: _Run,
        resource: dict[str, Any],
        rtype: str,
        any_of: Sequence[str],
        path: str,
        parent: _ResCtx | None,
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
            probe = _Run(
                silent=True,
                bundles=list(run.bundles),
                full_urls=list(run.full_urls),
                resources=list(run.resources),
            )
            self._resource(probe, resource, path, [structure.canonical], parent, declared=False)
            if best is None or probe.errors < best[0]:
                best = (probe.errors, structure)
            if probe.errors == 0:
                break
        assert best is not None
        return best[1]

    def _domain_checks(self, run: _Run, resource: dict[str, Any], path: str, ctx: _ResCtx) -> None:
        """dom-2..dom-6, natively (they hold on every DomainResource)."""
        rtype = resource["resourceType"]
        if rtype in ("Bundle", "Parameters", "Binary"):
            return
        contained = resource.get("contained")
        if isinstance(contained, list) and contained:
            local_refs = _local_references(resource)
            for index, item in enumerate(contained):
                if not isinstance(item, dict):
                    continue
                where = f"{path}.contained[{index}]"
                if item.get("contained"):
                    run.add(
                        "error",
                        "invariant",
                        where,
                        "dom-2: contained resources SHALL NOT contain resources",
                    )
                raw_meta = item.get("meta")
                meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
                if meta.get("versionId") is not None or meta.get("lastUpdated") is not None:
                    run.add(
                        "error",
                        "invariant",
                        where,
                        "dom-4: a contained resource SHALL NOT have a meta.versionId or "
                        "meta.lastUpdated",
                    )
                if meta.get("security"):
                    run.add(
                        "error",
                        "invariant",
                        where,
                        "dom-5: a contained resource SHALL NOT have a security label",
                    )
                if f"#{item.get('id')}" not in local_refs and "#" not in local_refs:
                    run.add(
                        "error",
                        "invariant",
                        where,
                        "dom-3: a contained resource SHALL be referred to from elsewhere in "
                        "the resource",
                    )
        text = resource.get("text")
        if not ctx.contained and not (isinstance(text, dict) and text.get("div")):
            run.add(
                "warning",
                "invariant",
                path,
                "dom-6: a resource should have narrative for robust management (best practice)",
            )

    # ----------------------------------------------------------------- elements

    def _definition(
        self, run: _Run, element: ElementDef, type_ref: TypeRef | None, path: str
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

    def _type_path(self, element: ElementDef, type_ref: TypeRef | None) -> str:
        if type_ref is not None and type_ref.code not in ("BackboneElement", "Element"):
            return type_ref.code
        if element.content_reference:
            return element.content_reference
        return element.path

    def _complex(
        self,
        run: _Run,
        obj: Any,
        element: ElementDef,
        path: str,
        ctx: _ResCtx,
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
                f"Expected a JSON object for {type_name}, found {_short(obj)}",
            )
            return
        definition = element if is_resource else self._definition(run, element, type_ref, path)
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
        type_path = obj["resourceType"] if is_resource else self._type_path(element, type_ref)
        self._invariants(
            run, obj, self._checks(element, definition, type_ref), path, type_path, ctx
        )
        if type_name == "Extension" or (type_ref is not None and type_ref.code == "Extension"):
            self._extension(run, obj, path, ctx, type_ref, element)

    def _extension(
        self,
        run: _Run,
        obj: dict[str, Any],
        path: str,
        ctx: _ResCtx,
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
        self._invariants(run, obj, self._checks(root, root, None), path, "Extension", ctx)

    def _children(
        self,
        run: _Run,
        obj: dict[str, Any],
        definition: ElementDef,
        path: str,
        ctx: _ResCtx,
        is_resource: bool,
    ) -> None:
        keys = definition.json_keys()
        groups: dict[str, list[_Item]] = {}
        children: dict[str, ElementDef] = {}
        for key, raw in obj.items():
            if key == "resourceType" and is_resource:
                continue
            name = key[1:] if key.startswith("_") else key
            if key.startswith("_") and name in obj:
                continue  # read with its primitive
            hit = keys.get(name) or self._fallback_keys(definition).get(name)
            if hit is None:
                self._unknown(run, name, definition, path)
                continue
            child, type_ref = hit
            if key.startswith("_"):
                items = self._items(run, None, raw, child, type_ref, name, path)
            else:
                items = self._items(run, raw, obj.get("_" + key), child, type_ref, key, path)
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
                self._sliced(run, items, child, where, ctx)
            else:
                for item in items:
                    self._item(run, item, child, ctx)

    def _fallback_keys(
        self, definition: ElementDef
    ) -> dict[str, tuple[ElementDef, TypeRef | None]]:
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

    def _unknown(self, run: _Run, key: str, definition: ElementDef, path: str) -> None:
        for child in definition.children.values():
            name = child.name
            if child.choice and key.startswith(name) and key[len(name) : len(name) + 1].isupper():
                allowed = ", ".join(t.code for t in child.types)
                found = _type_from_suffix(key[len(name) :])
                closed = child.slicing is not None and child.slicing.rules == "closed"
                detail = (
                    f"; it matches no slice of {child.id}, and that slicing is closed"
                    if closed
                    else ""
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

    def _items(
        self,
        run: _Run,
        raw: Any,
        ext: Any,
        child: ElementDef,
        type_ref: TypeRef | None,
        key: str,
        path: str,
    ) -> list[_Item]:
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
            return [_Item(raw, ext, type_ref, base)]
        values = raw if raw is not None else []
        extensions = ext if ext is not None else []
        if not isinstance(values, list) or not isinstance(extensions, list):
            run.add("error", "structure", base, f"{child.path} repeats: it must be a JSON array")
            values = values if isinstance(values, list) else [values]
            extensions = extensions if isinstance(extensions, list) else []
        if not values and not extensions:
            run.add("error", "structure", base, f"{key} is an empty array; omit it instead")
            return []
        items: list[_Item] = []
        for index in range(max(len(values), len(extensions))):
            value = values[index] if index < len(values) else None
            extension = extensions[index] if index < len(extensions) else None
            where = f"{base}[{index}]"
            if value is None and extension is None:
                run.add("error", "structure", where, f"{key}[{index}] is null")
                continue
            items.append(_Item(value, extension, type_ref, where))
        return items

    def _item(self, run: _Run, item: _Item, element: ElementDef, ctx: _ResCtx) -> None:
        if len(element.types) > 1 and not element.choice:
            item = self._resource_type(run, item, element)
        type_ref = item.type
        if type_ref is None:
            if element.content_reference:
                self._complex(run, item.value, element, item.path, ctx, None)
            return
        code = type_ref.code
        if code in PRIMITIVE_JSON:
            self._primitive(run, item, element, type_ref, ctx)
        elif code in _RESOURCE_BASES or self.is_resource_type(code):
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
                f"Value is {_short(value)} but must be exactly {_short(element.fixed)} "
                f"({element.id})",
            )
        if element.pattern is not None and not matches_pattern(element.pattern, value):
            run.add(
                "error",
                "value",
                item.path,
                f"Value {_short(value)} does not match the pattern {_short(element.pattern)} "
                f"({element.id})",
            )
        binding = element.binding
        if (
            binding is not None
            and binding.value_set
            and binding.strength in ("required", "extensible")
        ):
            self._binding(run, item, element, type_ref)
        if code == "Reference" and isinstance(value, dict):
            self._reference(run, item, type_ref, ctx)

    def _resource_type(self, run: _Run, item: _Item, element: ElementDef) -> _Item:
        """For a non-choice element allowing several resource types: the instance's one."""
        value = item.value
        rtype = value.get("resourceType") if isinstance(value, dict) else None
        for t in element.types:
            if t.code == rtype:
                return _Item(item.value, item.ext, t, item.path)
        for t in element.types:
            if t.code in _RESOURCE_BASES:
                return _Item(item.value, item.ext, t, item.path)
        if isinstance(rtype, str):
            allowed = ", ".join(t.code for t in element.types)
            run.add(
                "error",
                "structure",
                item.path,
                f"Resource type {rtype} is not allowed for {element.id} (allowed: {allowed})",
            )
        return item

    def _primitive(
        self, run: _Run, item: _Item, element: ElementDef, type_ref: TypeRef, ctx: _ResCtx
    ) -> None:
        code = type_ref.code
        value = item.value
        if value is not None:
            expected = PRIMITIVE_JSON[code]
            if (isinstance(value, bool) and bool not in expected) or not isinstance(
                value, expected
            ):
                run.add(
                    "error",
                    "structure",
                    item.path,
                    f"{code} value {_short(value)} has the wrong JSON type",
                )
                return
            if isinstance(value, str):
                if code != "xhtml":
                    pattern = self.primitive_regex(code)
                    if (
                        pattern is not None and pattern.fullmatch(value) is None
                    ) or not value.strip():
                        run.add(
                            "error", "value", item.path, f"{_short(value)} is not a valid {code}"
                        )
                elif not value.lstrip().startswith("<div"):
                    run.add("error", "value", item.path, "Narrative must be an XHTML <div>")
            elif code in ("integer", "unsignedInt", "positiveInt") and isinstance(value, int):
                low = {"integer": _INT32[0], "unsignedInt": 0, "positiveInt": 1}[code]
                if not low <= value <= _INT32[1]:
                    run.add("error", "value", item.path, f"{value} is out of range for {code}")
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
                    else self._definition(run, element, type_ref, item.path)
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
            self._invariants(run, value, self._checks(element, element, None), item.path, code, ctx)

    # ----------------------------------------------------------------- invariants

    def _checks(
        self, element: ElementDef, definition: ElementDef, type_ref: TypeRef | None
    ) -> tuple[_Check, ...]:
        """The invariants of a node: its element's, its type definition's (cached)."""
        key = (id(element), id(definition), type_ref.code if type_ref else "")
        checks = self._check_cache.get(key)
        if checks is None:
            constraints: list[Constraint] = list(element.constraints)
            if definition is not element:
                constraints.extend(definition.constraints)
            elif type_ref is not None and element.children and not type_ref.is_primitive:
                core = self.structure(CORE_PREFIX + type_ref.code)
                if core is not None:
                    constraints.extend(core.root.constraints)
            checks = _prepared(tuple(constraints))
            self._check_cache[key] = checks
        return checks

    def _invariants(
        self,
        run: _Run,
        node: Any,
        checks: tuple[_Check, ...],
        path: str,
        type_path: str,
        ctx: _ResCtx,
    ) -> None:
        for check in checks:
            constraint = check.constraint
            if check.native is not None:
                holds = check.native(node, ctx.resource, ctx.root)
            elif check.invariant is None or check.invariant.fn is None:
                problem = check.invariant.problem if check.invariant else "is not supported"
                run.add(
                    "information",
                    "informational",
                    path,
                    f"Invariant {constraint.key} was not checked: it {problem}",
                )
                continue
            else:
                try:
                    holds = fhirpath.evaluate(
                        check.invariant, node, type_path, ctx.resource, ctx.root
                    )
                except Exception as exc:
                    run.add(
                        "information",
                        "informational",
                        path,
                        f"Invariant {constraint.key} could not be evaluated: "
                        f"{type(exc).__name__}: {exc}",
                    )
                    continue
            if holds is None:
                run.add(
                    "information",
                    "informational",
                    path,
                    f"Invariant {constraint.key} cannot be decided with the loaded packages",
                )
            elif not holds:
                error = constraint.severity == "error" and not constraint.best_practice
                run.add(
                    "error" if error else "warning",
                    "invariant",
                    path,
                    f"Constraint failed: {constraint.key}: '{constraint.human}'",
                )

    # ----------------------------------------------------------------- terminology

    def _binding(self, run: _Run, item: _Item, element: ElementDef, type_ref: TypeRef) -> None:
        assert element.binding is not None and element.binding.value_set
        value_set = element.binding.value_set
        strength = element.binding.strength
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
            result, reason = self.terminology.contains(value_set, system, code_value)
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

    # ----------------------------------------------------------------- references

    def _resolve(self, run: _Run, reference: str) -> dict[str, Any] | None:
        ctx = run.resources[-1] if run.resources else None
        if reference.startswith("#"):
            if ctx is None:
                return None
            if reference == "#":
                return ctx.root
            for item in ctx.root.get("contained") or []:
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return None
        if not run.bundles:
            return None
        return run.bundles[-1].resolve(reference, run.full_urls[-1] if run.full_urls else None)

    def _reference(self, run: _Run, item: _Item, type_ref: TypeRef, ctx: _ResCtx) -> None:
        reference = item.value.get("reference")
        if not isinstance(reference, str):
            return
        allowed = self.target_types(type_ref.target_profiles) if type_ref.target_profiles else None
        actual: str | None = None
        if reference.startswith("#") or run.bundles:
            target = self._resolve(run, reference)
            if target is None:
                self._dangling(run, reference, f"{item.path}.reference")
                return
            actual = target.get("resourceType")
        else:
            match = _LITERAL_REF.search(reference)
            actual = match["type"] if match else None
        declared = item.value.get("type")
        if isinstance(declared, str) and actual and declared != actual:
            run.add(
                "error",
                "structure",
                f"{item.path}.type",
                f"Reference type {declared} does not match the target {actual}",
            )
        if allowed and actual and actual not in allowed:
            run.add(
                "error",
                "structure",
                f"{item.path}.reference",
                f"Reference to {actual} is not allowed here; expected {', '.join(sorted(allowed))}",
            )

    def _dangling(self, run: _Run, reference: str, path: str) -> None:
        """An unresolved reference: an error where it must resolve, else a warning."""
        if reference.startswith("#"):
            return  # the core invariant ref-1 (on every Reference) reports it
        bundle = run.bundles[-1]
        message = f"Reference {reference} cannot be resolved in the Bundle"
        if bundle.closed:
            run.add(
                "error",
                "not-found",
                path,
                f"{message}; {bundle.closed}: the Bundle SHALL hold every resource the Claim "
                "references",
            )
        elif reference.startswith("urn:") or bundle.type in ("document", "message"):
            run.add("error", "not-found", path, message)
        else:
            run.add("warning", "not-found", path, message)

    # ----------------------------------------------------------------- slicing

    def _sliced(
        self, run: _Run, items: list[_Item], base: ElementDef, path: str, ctx: _ResCtx
    ) -> None:
        slicing = base.slicing
        discriminators = slicing.discriminators if slicing else ()
        rules = slicing.rules if slicing else "open"
        counts = [0] * len(base.slices)
        groups: list[list[_Item]] = [[] for _ in base.slices]
        last = -1
        unmatched = False
        for item in items:
            matched = -1
            for index, candidate in enumerate(base.slices):
                if self._slice_matches(run, item, candidate, discriminators, ctx):
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
                self._item(run, item, base, ctx)
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
                    self._sliced(run, groups[index], slice_def, path, ctx)
            else:
                for item in groups[index]:
                    self._item(run, self._retype(item, slice_def), slice_def, ctx)

    @staticmethod
    def _retype(item: _Item, slice_def: ElementDef) -> _Item:
        """The item with the slice's own TypeRef (it may carry a profile the base has not)."""
        if item.type is None:
            return item
        for t in slice_def.types:
            if t.code == item.type.code:
                return _Item(item.value, item.ext, t, item.path)
        if len(slice_def.types) == 1 and item.type.code in _RESOURCE_BASES:
            return _Item(item.value, item.ext, slice_def.types[0], item.path)
        return item

    def _slice_matches(
        self,
        run: _Run,
        item: _Item,
        slice_def: ElementDef,
        discriminators: Sequence[Discriminator],
        ctx: _ResCtx,
    ) -> bool:
        if not discriminators:
            return self._conforms_item(run, item, slice_def, ctx)
        return all(self._discriminator(run, item, slice_def, d) for d in discriminators)

    def _conforms_item(self, run: _Run, item: _Item, element: ElementDef, ctx: _ResCtx) -> bool:
        probe = _Run(
            silent=True,
            bundles=list(run.bundles),
            full_urls=list(run.full_urls),
            resources=list(run.resources),
        )
        self._item(probe, self._retype(item, element), element, ctx)
        return probe.errors == 0

    def _discriminator(
        self, run: _Run, item: _Item, slice_def: ElementDef, disc: Discriminator
    ) -> bool:
        values = self._disc_values(run, item, disc.path)
        target = self._disc_target(slice_def, disc.path)
        if disc.type == "exists":
            if target is None:
                return False
            if target.min >= 1:
                return bool(values)
            if target.max == 0:
                return not values
            return True
        if disc.type in ("value", "pattern"):
            expected_url = self._extension_url(slice_def, disc.path)
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
                for v, t in values:
                    probe = _Item(v, None, TypeRef(t or "code"), "")
                    codes = _codes_of(probe)
                    if codes and self._member_of(binding.value_set, codes) is True:
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
            resolving = any(kind == "resolve" for kind, _ in _segments(disc.path))
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
                        if self.conforms(v, profile):
                            return True
                    else:
                        structure = self.structure(profile)
                        if structure is not None and self._conforms_item(
                            run,
                            _Item(v, None, TypeRef(structure.type, (profile,)), ""),
                            structure.root,
                            run.resources[-1] if run.resources else _ResCtx(v, v),
                        ):
                            return True
            return False
        return False

    def _extension_url(self, slice_def: ElementDef, path: str) -> str | None:
        """For `url` discriminators on extension slices: the profile's canonical URL."""
        if path != "url":
            return None
        for t in slice_def.types:
            if t.code == "Extension" and t.profiles:
                return t.profiles[0].split("|", 1)[0]
        return None

    def _child_def(self, element: ElementDef, name: str) -> ElementDef | None:
        if element.children:
            return element.children.get(name)
        definition = self._definition(
            _Run(silent=True), element, element.types[0] if element.types else None, ""
        )
        if definition is None:
            return None
        return definition.children.get(name)

    def _disc_target(self, slice_def: ElementDef, path: str) -> ElementDef | None:
        key = (id(slice_def), path)
        if key in self._disc_targets:
            return self._disc_targets[key]
        current: ElementDef | None = slice_def
        for kind, argument in _segments(path):
            if current is None:
                break
            if kind == "resolve":
                profiles = [p for t in current.types for p in t.target_profiles]
                structure = next((s for s in map(self.structure, profiles) if s is not None), None)
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
                holder = self._child_def(current, "extension")
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
                    structure = self.structure(url)
                    current = structure.root if structure else None
                else:
                    current = found
                continue
            current = self._child_def(current, argument)
        self._disc_targets[key] = current
        return current

    def _disc_values(self, run: _Run, item: _Item, path: str) -> list[tuple[Any, str | None]]:
        current: list[tuple[Any, str | None]] = [
            (item.value, item.type.code if item.type else None)
        ]
        for kind, segment in _segments(path):
            following: list[tuple[Any, str | None]] = []
            if kind == "resolve":
                for value, _t in current:
                    ref = value.get("reference") if isinstance(value, dict) else None
                    target = self._resolve(run, ref) if isinstance(ref, str) else None
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
                        if (
                            key.startswith(segment)
                            and key[len(segment) : len(segment) + 1].isupper()
                        ):
                            following.append((found, _type_from_suffix(key[len(segment) :])))
            current = following
        return current


@dataclass(frozen=True)
class _Check:
    constraint: Constraint
    native: NativeCheck | None
    invariant: fhirpath.CompiledInvariant | None


def _prepared(constraints: tuple[Constraint, ...]) -> tuple[_Check, ...]:
    """The constraints to run on a node: deduplicated by key, natives first choice."""
    checks: list[_Check] = []
    seen: set[str] = set()
    for constraint in constraints:
        if constraint.key in seen or fhirpath.is_structural(constraint):
            continue
        seen.add(constraint.key)
        native = native_check(constraint.key, constraint.expression)
        invariant = None if native is not None else fhirpath.invariant_for(constraint)
        checks.append(_Check(constraint, native, invariant))
    return tuple(checks)


def _codes_of(item: _Item) -> list[tuple[str | None, str]]:
    value = item.value
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


def _local_references(resource: dict[str, Any]) -> set[str]:
    """Every string starting with `#` anywhere in the resource (dom-3)."""
    found: set[str] = set()
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.startswith("#"):
            found.add(node)
    return found


def _root_path(resource: Any) -> str:
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
        return str(resource["resourceType"])
    return "Resource"


__all__ = ["CLOSED_BUNDLES", "ValidationResult", "Validator", "json_equal", "matches_pattern"]
