"""Invariants: the constraints of each element and type, evaluated on the instance.

A node's constraints come from its element and from the definition of its type, deduplicated by
key; each runs as a native Python check when `native.py` has one, else as compiled FHIRPath (see
`fhirpath.py`). The DomainResource invariants dom-2..dom-6 run natively on every resource. A
failed `error` constraint is an error (a best-practice one a warning); one that cannot be
evaluated or decided is an `information` issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.fhir.validation import fhirpath
from app.fhir.validation.definitions import Definitions
from app.fhir.validation.native import NativeCheck, native_check
from app.fhir.validation.run import ResCtx, Run
from app.fhir.validation.structure import CORE_PREFIX, Constraint, ElementDef, TypeRef


@dataclass(frozen=True)
class Check:
    """One constraint, ready to run: natively, as FHIRPath, or (neither) reported unchecked."""

    constraint: Constraint
    native: NativeCheck | None
    invariant: fhirpath.CompiledInvariant | None


def _prepared(constraints: tuple[Constraint, ...]) -> tuple[Check, ...]:
    """The constraints to run on a node: deduplicated by key, natives first choice."""
    checks: list[Check] = []
    seen: set[str] = set()
    for constraint in constraints:
        if constraint.key in seen or fhirpath.is_structural(constraint):
            continue
        seen.add(constraint.key)
        native = native_check(constraint.key, constraint.expression)
        invariant = None if native is not None else fhirpath.invariant_for(constraint)
        checks.append(Check(constraint, native, invariant))
    return tuple(checks)


class Invariants:
    """The checks of each node, prepared once per (element, definition, type)."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        self._cache: dict[tuple[int, int, str], tuple[Check, ...]] = {}

    def checks(
        self, element: ElementDef, definition: ElementDef, type_ref: TypeRef | None
    ) -> tuple[Check, ...]:
        """The invariants of a node: its element's, its type definition's (cached)."""
        key = (id(element), id(definition), type_ref.code if type_ref else "")
        checks = self._cache.get(key)
        if checks is None:
            constraints: list[Constraint] = list(element.constraints)
            if definition is not element:
                constraints.extend(definition.constraints)
            elif type_ref is not None and element.children and not type_ref.is_primitive:
                core = self._definitions.structure(CORE_PREFIX + type_ref.code)
                if core is not None:
                    constraints.extend(core.root.constraints)
            checks = _prepared(tuple(constraints))
            self._cache[key] = checks
        return checks


def check_invariants(
    run: Run,
    node: Any,
    checks: tuple[Check, ...],
    path: str,
    type_path: str,
    ctx: ResCtx,
) -> None:
    """Run `checks` on `node` and report each that fails or cannot be decided."""
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
                holds = fhirpath.evaluate(check.invariant, node, type_path, ctx.resource, ctx.root)
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


def domain_checks(run: Run, resource: dict[str, Any], path: str, ctx: ResCtx) -> None:
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
