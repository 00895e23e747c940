"""Value-set membership over the ValueSets and CodeSystems found in the loaded packages.

A ValueSet is compiled once into include/exclude rules. Membership is three-valued:
`True` (the code is in the set), `False` (it is provably not), or `None` (it cannot be decided
here: the code system, or a value set the set imports, is not in any package, e.g. CPT, ICD-10,
SNOMED CT or the X12 external code lists). The validator turns `None` into an `information`
issue, never an error.

Supported compose features: explicit concept lists, whole code systems (complete content),
`valueSet` imports, and the filters `is-a`, `descendent-of`, `is-not-a`, `=` (on concept
properties, `parent` and `child`), `regex` on `code` and `in`. Other filters make the include
undecidable (`None`). Pre-expanded `expansion.contains` is used when compose cannot decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.fhir.packages import FhirPackage, PackageRegistry

Membership = bool | None


@dataclass
class CodeSystemIndex:
    """The codes of one CodeSystem with their hierarchy and properties."""

    url: str
    complete: bool
    case_sensitive: bool
    codes: set[str] = field(default_factory=set)
    parents: dict[str, set[str]] = field(default_factory=dict)
    properties: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def normalize(self, code: str) -> str:
        return code if self.case_sensitive else code.lower()

    def ancestors(self, code: str) -> set[str]:
        seen: set[str] = set()
        stack = [code]
        while stack:
            for parent in self.parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen


def _walk_concepts(
    concepts: list[dict[str, Any]], parent: str | None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    for concept in concepts:
        yield concept, parent
        yield from _walk_concepts(concept.get("concept", []), concept.get("code"))


def index_code_system(cs: dict[str, Any]) -> CodeSystemIndex:
    case_sensitive = cs.get("caseSensitive", True) is not False
    index = CodeSystemIndex(
        url=str(cs.get("url")),
        complete=cs.get("content") == "complete",
        case_sensitive=case_sensitive,
    )
    for concept, parent in _walk_concepts(cs.get("concept", []), None):
        code = concept.get("code")
        if not isinstance(code, str):
            continue
        code = index.normalize(code)
        index.codes.add(code)
        if parent is not None:
            index.parents.setdefault(code, set()).add(index.normalize(parent))
        for prop in concept.get("property", []):
            name = prop.get("code")
            value = next(
                (str(v) for k, v in prop.items() if k.startswith("value") and v is not None), None
            )
            if not isinstance(name, str) or value is None:
                continue
            index.properties.setdefault(name, {}).setdefault(code, set()).add(value)
            if name in ("parent", "subsumedBy"):
                index.parents.setdefault(code, set()).add(index.normalize(value))
    return index


@dataclass
class _Rule:
    """One compose include or exclude."""

    system: str | None
    codes: set[str] | None
    filters: list[dict[str, Any]]
    value_sets: list[str]


@dataclass
class CompiledValueSet:
    url: str
    includes: list[_Rule]
    excludes: list[_Rule]
    expansion: dict[str, set[str]] | None
    found: bool = True


class Terminology:
    """Membership checks against the packages of one registry (results cached)."""

    def __init__(self, registry: PackageRegistry, prefer: FhirPackage | None = None) -> None:
        self.registry = registry
        self.prefer = prefer
        self._code_systems: dict[str, CodeSystemIndex | None] = {}
        self._value_sets: dict[str, CompiledValueSet] = {}
        self._cache: dict[tuple[str, str | None, str], tuple[Membership, str | None]] = {}

    def code_system(self, url: str) -> CodeSystemIndex | None:
        if url not in self._code_systems:
            cs = self.registry.code_system(url, self.prefer) or self.registry.code_system(
                url.split("|", 1)[0], self.prefer
            )
            self._code_systems[url] = index_code_system(cs) if cs else None
        return self._code_systems[url]

    def value_set(self, canonical: str) -> CompiledValueSet:
        compiled = self._value_sets.get(canonical)
        if compiled is None:
            compiled = self._compile(canonical)
            self._value_sets[canonical] = compiled
        return compiled

    def _compile(self, canonical: str) -> CompiledValueSet:
        vs = self.registry.value_set(canonical, self.prefer)
        if vs is None and "|" in canonical:
            # Core R4 binds `...|4.0.1` to terminology.hl7.org sets that carry their own versions.
            vs = self.registry.value_set(canonical.split("|", 1)[0], self.prefer)
        if vs is None:
            return CompiledValueSet(canonical, [], [], None, found=False)
        compose = vs.get("compose") or {}

        def rules(items: list[dict[str, Any]]) -> list[_Rule]:
            out: list[_Rule] = []
            for inc in items:
                concepts = inc.get("concept")
                out.append(
                    _Rule(
                        system=inc.get("system"),
                        codes={str(c.get("code")) for c in concepts} if concepts else None,
                        filters=list(inc.get("filter", [])),
                        value_sets=list(inc.get("valueSet", [])),
                    )
                )
            return out

        expansion: dict[str, set[str]] | None = None
        contains = (vs.get("expansion") or {}).get("contains")
        if contains:
            expansion = {}
            for item, _parent in _walk_contains(contains):
                if "code" in item:
                    expansion.setdefault(str(item.get("system")), set()).add(str(item["code"]))
        return CompiledValueSet(
            canonical,
            rules(compose.get("include", [])),
            rules(compose.get("exclude", [])),
            expansion,
        )

    def contains(
        self, canonical: str, system: str | None, code: str
    ) -> tuple[Membership, str | None]:
        """Is `system|code` in the value set? With a reason when it cannot be decided.

        `system` None means a bare `code` element: any system of the set may hold it.
        """
        key = (canonical, system, code)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._contains(canonical, system, code, depth=0)
            self._cache[key] = cached
        return cached

    def _contains(
        self, canonical: str, system: str | None, code: str, depth: int
    ) -> tuple[Membership, str | None]:
        if depth > 10:
            return None, f"value set {canonical} imports too deeply"
        vs = self.value_set(canonical)
        if not vs.found:
            return None, f"value set {canonical} is not available in the loaded packages"
        excluded, excluded_reason = self._rules(vs.excludes, system, code, depth)
        if excluded is True:
            return False, None
        result, reason = self._rules(vs.includes, system, code, depth)
        if result is None and vs.expansion is not None:
            if system is None:
                hit = any(code in codes for codes in vs.expansion.values())
            else:
                hit = code in vs.expansion.get(system, set())
            return hit, None
        if result is True and excluded is None:
            return None, excluded_reason
        return result, reason

    def _rules(
        self, rules: list[_Rule], system: str | None, code: str, depth: int
    ) -> tuple[Membership, str | None]:
        """Any rule matches -> True; some undecidable -> None; else False."""
        unknown: str | None = None
        for rule in rules:
            result, reason = self._rule(rule, system, code, depth)
            if result is True:
                return True, None
            if result is None:
                unknown = unknown or reason
        return (None, unknown) if unknown else (False, None)

    def _rule(
        self, rule: _Rule, system: str | None, code: str, depth: int
    ) -> tuple[Membership, str | None]:
        if rule.system is not None and system is not None and rule.system != system:
            return False, None
        outcome: Membership = True
        reason: str | None = None
        if rule.system is not None:
            outcome, reason = self._in_system(rule, code)
            if outcome is False:
                return False, None
        for imported in rule.value_sets:
            sub, sub_reason = self._contains(imported, system, code, depth + 1)
            if sub is False:
                return False, None
            if sub is None:
                outcome, reason = None, reason or sub_reason
        if rule.system is None and not rule.value_sets:
            return False, None
        return outcome, reason

    def _in_system(self, rule: _Rule, code: str) -> tuple[Membership, str | None]:
        assert rule.system is not None
        cs = self.code_system(rule.system)
        if rule.codes is not None:
            if cs is not None and not cs.case_sensitive:
                return code.lower() in {c.lower() for c in rule.codes}, None
            return code in rule.codes, None
        if cs is None or not (cs.complete or cs.codes):
            return None, f"code system {rule.system} is not available in the loaded packages"
        normalized = cs.normalize(code)
        if not rule.filters:
            if normalized in cs.codes:
                return True, None
            return (False, None) if cs.complete else (None, f"{rule.system} is a fragment")
        for flt in rule.filters:
            result = _filter(cs, flt, normalized)
            if result is None:
                return None, f"filter {flt.get('property')} {flt.get('op')} is not supported"
            if not result:
                return False, None
        return True, None


def _walk_contains(
    items: list[dict[str, Any]], parent: str | None = None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    for item in items:
        yield item, parent
        yield from _walk_contains(item.get("contains", []), item.get("code"))


def _filter(cs: CodeSystemIndex, flt: dict[str, Any], code: str) -> bool | None:
    op = flt.get("op")
    prop = flt.get("property")
    value = str(flt.get("value", ""))
    if code not in cs.codes:
        return False
    if prop == "concept" or prop == "code":
        target = cs.normalize(value)
        if op == "is-a":
            return code == target or target in cs.ancestors(code)
        if op == "descendent-of":
            return target in cs.ancestors(code)
        if op == "is-not-a":
            return not (code == target or target in cs.ancestors(code))
        if op == "in":
            return code in {cs.normalize(v) for v in value.split(",")}
        if op == "regex":
            return re.fullmatch(value, code) is not None
        if op == "=":
            return code == target
        return None
    if op == "=" and isinstance(prop, str):
        if prop == "parent":
            return cs.normalize(value) in cs.parents.get(code, set())
        if prop == "child":
            return code in cs.parents.get(cs.normalize(value), set())
        values = cs.properties.get(prop, {}).get(code)
        if values is None:
            return False if prop in cs.properties else None
        return value in values
    return None
