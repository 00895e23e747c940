"""Invariants: FHIRPath constraints compiled once, with what `fhirpathpy` lacks supplied here.

`fhirpathpy` (with the R4 model) evaluates most constraint expressions. What it lacks:

- `hasValue()`, `resolve()`, `memberOf()`, `conformsTo()`, `htmlChecks()`: our own functions
  (registered through its user invocation table). `resolve()` looks up references inside the
  Bundle being validated and in `contained`; `memberOf()` asks the package terminology and raises
  `Undecidable` when the code system is not available; `conformsTo()` runs the validator.
- `$this` at the top of an expression (e.g. PAS `FullDateRule`, `$this.toString()...`): the
  expression is evaluated as `select(<expression>)`, where `$this` is bound.
- `%rootResource`: passed as a variable with `%resource`.

Core invariants that hold on nearly every element are checked natively by the validator for
speed (`ele-1`, `ext-1`, `dom-2`..`dom-6`; see `NATIVE`). Any other function the engine does not
know is found when the expression is compiled, and the invariant is then reported as an explicit
`information` issue naming its key: never skipped silently.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy import parser as _fp_parser
from fhirpathpy.engine import util as _fp_util
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from app.fhir.validation.structure import Constraint

R4_MODEL: dict[str, Any] = models["r4"]
# fhirpathpy's helpers carry no annotations: typed handles on the few we call.
_create_node: Callable[[Any, str | None], Any] = ResourceNode.create_node
get_data: Callable[[Any], Any] = _fp_util.get_data
parse: Callable[[str], Any] = _fp_parser.parse

#: Core invariants the validator checks in Python (key -> FHIRPath it replaces).
NATIVE = {
    "ele-1": "hasValue() or (children().count() > id.count())",
    "ext-1": "extension.exists() != value.exists()",
    "dom-2": "contained.contained.empty()",
    "dom-3": "contained.where(...referenced from the resource...).empty()",
    "dom-4": "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    "dom-5": "contained.meta.security.empty()",
    "dom-6": "text.`div`.exists()",
}
CORE_SOURCE = "http://hl7.org/fhir/StructureDefinition/"


class Undecidable(Exception):  # noqa: N818 - a signal, not an error condition
    """An invariant cannot be decided here (e.g. `memberOf` on an unavailable code system)."""


@dataclass
class EvalEnv:
    """What our FHIRPath functions need from the validation in progress."""

    resolve: Callable[[str], dict[str, Any] | None]
    member_of: Callable[[str, list[tuple[str | None, str]]], bool | None]
    conforms_to: Callable[[dict[str, Any], str], bool | None]


_ENV: ContextVar[EvalEnv | None] = ContextVar("greenlight_fhirpath_env", default=None)


def set_env(env: EvalEnv | None) -> Any:
    return _ENV.set(env)


def reset_env(token: Any) -> None:
    _ENV.reset(token)


def _is_primitive_value(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _has_value(inputs: list[Any]) -> bool:
    # A primitive with extensions arrives as [value, {"extension": ...}]; a bare extension-only
    # primitive as [{"extension": ...}].
    values = [v for v in inputs if _is_primitive_value(v)]
    return len(values) == 1


def _resolve(inputs: list[Any]) -> list[Any]:
    env = _ENV.get()
    if env is None:
        raise Undecidable("resolve() outside a validation")
    out: list[Any] = []
    for item in inputs:
        reference: Any = item
        if isinstance(item, dict):
            reference = item.get("reference")
        if not isinstance(reference, str):
            continue
        target = env.resolve(reference)
        if target is not None:
            out.append(_create_node(target, target.get("resourceType")))
    return out


def _codings(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        if "coding" in value:
            return [
                (c.get("system"), str(c["code"]))
                for c in value.get("coding", [])
                if isinstance(c, dict) and "code" in c
            ]
        if "code" in value:
            return [(value.get("system"), str(value["code"]))]
    return []


def _member_of(inputs: list[Any], value_set: str) -> list[bool]:
    env = _ENV.get()
    if env is None:
        raise Undecidable("memberOf() outside a validation")
    out: list[bool] = []
    for item in inputs:
        codings = _codings(item)
        if not codings:
            continue
        result = env.member_of(value_set, codings)
        if result is None:
            raise Undecidable(f"membership in {value_set} cannot be decided")
        out.append(result)
    return out


def _conforms_to(inputs: list[Any], profile: str) -> list[bool]:
    env = _ENV.get()
    if env is None:
        raise Undecidable("conformsTo() outside a validation")
    out: list[bool] = []
    for item in inputs:
        if isinstance(item, dict):
            result = env.conforms_to(item, profile)
            if result is None:
                raise Undecidable(f"profile {profile} is not available")
            out.append(result)
    return out


# The R4 narrative rules (txt-1): the XHTML subset FHIR allows.
_ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
    ]
)
_ALLOWED_ATTRS = frozenset(
    [
        "abbr",
        "accesskey",
        "align",
        "alt",
        "axis",
        "bgcolor",
        "border",
        "cellhalign",
        "cellpadding",
        "cellspacing",
        "cellvalign",
        "char",
        "charoff",
        "charset",
        "cite",
        "class",
        "colspan",
        "compact",
        "coords",
        "dir",
        "frame",
        "headers",
        "height",
        "href",
        "hreflang",
        "hspace",
        "id",
        "lang",
        "longdesc",
        "name",
        "nowrap",
        "rel",
        "rev",
        "rowspan",
        "rules",
        "scope",
        "shape",
        "span",
        "src",
        "start",
        "style",
        "summary",
        "tabindex",
        "title",
        "type",
        "valign",
        "value",
        "vspace",
        "width",
        "xml:lang",
        "xmlns",
    ]
)


_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTR = re.compile(r"""([^\s=/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_NON_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.S)


@lru_cache(maxsize=256)
def html_checks(div: Any) -> bool:
    """txt-1 (allowed XHTML only, rooted at <div>) and txt-2 (some non-whitespace content)."""
    if not isinstance(div, str):
        return False
    text = _NON_TAG.sub("", div)
    if "<?" in text or "<!" in text:
        return False  # processing instructions, doctype: not narrative XHTML
    first = True
    for match in _TAG.finditer(text):
        closing, tag, rest = match.group(1), match.group(2).lower(), match.group(3)
        if first and (closing or tag != "div"):
            return False
        first = False
        if tag not in _ALLOWED_TAGS:
            return False
        if closing:
            continue
        for attr in _ATTR.finditer(rest.rstrip("/")):
            name = attr.group(1).lower()
            value = next((v for v in attr.groups()[1:] if v is not None), "")
            if name not in _ALLOWED_ATTRS:
                return False
            if name in ("href", "src") and value.strip().lower().startswith("javascript:"):
                return False
    if first:
        return False  # no element at all
    content = _TAG.sub("", text)
    return bool(content.strip()) or "<img" in text.lower()


def _html_checks(inputs: list[Any]) -> list[bool]:
    return [html_checks(v) for v in inputs if _is_primitive_value(v)]


def _truth(collection: list[Any]) -> bool | None:
    """FHIRPath singleton evaluation in a boolean context: a lone non-boolean item is true."""
    items = [get_data(x) for x in collection]
    if not items:
        return None
    if len(items) > 1:
        raise ValueError("a collection of several items used as a boolean")
    value = items[0]
    return value if isinstance(value, bool) else True


def _and(a: list[Any], b: list[Any]) -> list[bool]:
    left, right = _truth(a), _truth(b)
    if left is False or right is False:
        return [False]
    return [True] if left is True and right is True else []


def _or(a: list[Any], b: list[Any]) -> list[bool]:
    left, right = _truth(a), _truth(b)
    if left is True or right is True:
        return [True]
    return [False] if left is False and right is False else []


def _xor(a: list[Any], b: list[Any]) -> list[bool]:
    left, right = _truth(a), _truth(b)
    return [] if left is None or right is None else [left != right]


def _implies(a: list[Any], b: list[Any]) -> list[bool]:
    left, right = _truth(a), _truth(b)
    if left is False or right is True:
        return [True]
    if left is True and right is False:
        return [False]
    return []


# fhirpathpy's boolean operators reject a singleton that is not a boolean (`where(...) and x`),
# which FHIRPath evaluates as true: these replace them (same three-valued logic otherwise).
_LOGIC = {
    name: {"fn": fn, "arity": {2: ["Any", "Any"]}}
    for name, fn in (("and", _and), ("or", _or), ("xor", _xor), ("implies", _implies))
}

USER_FUNCTIONS: dict[str, dict[str, Any]] = {
    **_LOGIC,
    "hasValue": {"fn": _has_value},
    "resolve": {"fn": _resolve},
    "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
    "conformsTo": {"fn": _conforms_to, "arity": {1: ["String"]}},
    "htmlChecks": {"fn": _html_checks},
}


def _quiet_trace(_label: str, _value: Any) -> None:
    """`trace()` in core invariants (ref-1) would otherwise print to stdout."""


_OPTIONS = {"userInvocationTable": USER_FUNCTIONS, "traceFn": _quiet_trace}
KNOWN_FUNCTIONS = frozenset(invocation_registry) | frozenset(USER_FUNCTIONS)


def _walk(node: Any, functions: set[str], flags: set[str]) -> None:
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "FunctionInvocation":
        with contextlib.suppress(KeyError, IndexError, TypeError):
            functions.add(node["children"][0]["children"][0]["text"])
    elif kind == "ThisInvocation":
        flags.add("this")
    for child in node.get("children") or ():
        _walk(child, functions, flags)


@dataclass(frozen=True)
class CompiledInvariant:
    """A constraint ready to run: `fn` is None when it cannot be evaluated (see `problem`)."""

    key: str
    severity: str
    human: str
    expression: str
    fn: Callable[..., list[Any]] | None
    problem: str | None


@lru_cache(maxsize=4096)
def compile_invariant(key: str, expression: str, severity: str, human: str) -> CompiledInvariant:
    """Parse and compile once; unknown functions are found here rather than at run time."""
    try:
        tree = parse(expression)
    except Exception as exc:
        return CompiledInvariant(key, severity, human, expression, None, f"unparsable: {exc}")
    functions: set[str] = set()
    flags: set[str] = set()
    _walk(tree, functions, flags)
    missing = sorted(functions - KNOWN_FUNCTIONS)
    if missing:
        problem = "uses FHIRPath functions not available here: " + ", ".join(missing)
        return CompiledInvariant(key, severity, human, expression, None, problem)
    text = f"select({expression})" if "this" in flags else expression
    fn = fhirpathpy.compile(text, R4_MODEL, _OPTIONS)
    return CompiledInvariant(key, severity, human, expression, fn, None)


def is_structural(constraint: Constraint) -> bool:
    """ele-1, ext-1 and dom-*: checked by the validator's walk itself."""
    return constraint.key in NATIVE and (constraint.source or CORE_SOURCE).startswith(CORE_SOURCE)


def invariant_for(constraint: Constraint) -> CompiledInvariant | None:
    """The compiled invariant, or None for constraints the validator checks natively."""
    if is_structural(constraint):
        return None
    if not constraint.expression:
        return CompiledInvariant(
            constraint.key,
            constraint.severity,
            constraint.human,
            "",
            None,
            "has no FHIRPath expression",
        )
    return compile_invariant(
        constraint.key, constraint.expression, constraint.severity, constraint.human
    )


def evaluate(
    invariant: CompiledInvariant,
    node: Any,
    type_path: str,
    resource: dict[str, Any] | None,
    root: dict[str, Any] | None,
) -> bool | None:
    """True if the invariant holds on `node`, False if not, None if it cannot be decided."""
    assert invariant.fn is not None
    variables = {"resource": resource, "rootResource": root or resource}
    try:
        result = invariant.fn(_create_node(node, type_path), variables)
    except Undecidable:
        return None
    # Any other exception propagates: the caller reports it with the invariant key.
    # As in the HL7 validator: the invariant holds only if it evaluates to true; an empty result
    # (e.g. `{} and true`) is a failure.
    return bool(result) and all(r is True for r in result)
