"""Python versions of the core invariants that run on almost every element (for speed).

Each entry replaces one exact `(key, expression)` pair from the R4 core definitions; an IG that
reuses a key with another expression is still evaluated by FHIRPath. Simple shapes such as
`code.empty() or system.exists()` are recognised by pattern whatever their key. The test suite
checks every native check against `fhirpathpy` on the same inputs (`tests/fhir/validation`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.fhir.validation.fhirpath import html_checks

#: (node, resource, root resource) -> holds?  (None: cannot be decided)
NativeCheck = Callable[[Any, Any, Any], bool | None]


def _present(node: Any, name: str) -> bool:
    """FHIRPath `name.exists()` on a JSON object (choice names such as `value` included)."""
    if not isinstance(node, dict):
        return False
    value = node.get(name)
    if value is not None and value != []:
        return True
    if ("_" + name) in node:
        return True
    return any(key.startswith(name) and key[len(name) : len(name) + 1].isupper() for key in node)


def _has_value(node: Any, name: str) -> bool:
    return (
        isinstance(node, dict)
        and node.get(name) is not None
        and not isinstance(node[name], dict | list)
    )


def _ref_1(node: Any, _resource: Any, root: Any) -> bool:
    reference = node.get("reference") if isinstance(node, dict) else None
    if not isinstance(reference, str) or not reference.startswith("#"):
        return True
    contained = root.get("contained") if isinstance(root, dict) else None
    ids = {c.get("id") for c in contained or [] if isinstance(c, dict)}
    return reference[1:] in ids


_DT = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _instant(text: str) -> tuple[int, Any] | None:
    """(precision, comparable value) of a FHIR date/dateTime."""
    match = _DT.match(text)
    if match is None:
        return None
    if match["time"] is not None:
        precision = 4 + match["time"].count(":")
        stamp = datetime.fromisoformat(
            f"{match['y']}-{match['m']}-{match['d']}T{match['time']}{match['tz'] or ''}".replace(
                "Z", "+00:00"
            )
        )
        if stamp.tzinfo is None:
            return precision, ("local", stamp)
        return precision, ("utc", stamp.astimezone(UTC).replace(tzinfo=None))
    parts = [int(p) for p in (match["y"], match["m"], match["d"]) if p is not None]
    return len(parts), ("date", tuple(parts))


def _per_1(node: Any, _resource: Any, _root: Any) -> bool | None:
    if not (_has_value(node, "start") and _has_value(node, "end")):
        return True
    start, end = _instant(str(node["start"])), _instant(str(node["end"]))
    if start is None or end is None:
        return None
    if start[0] <= 3 or end[0] <= 3:
        # Compare at the coarser of the two precisions; equal prefixes are not comparable.
        s = str(node["start"])[:10].split("-")
        e = str(node["end"])[:10].split("-")
        common = min(len(s), len(e))
        left, right = [int(x) for x in s[:common]], [int(x) for x in e[:common]]
        return left < right if left != right else True
    (sp, (skind, svalue)), (ep, (ekind, evalue)) = start, end
    if skind != ekind:
        return True  # one has a time zone, the other not: not comparable
    return bool(svalue <= evalue) if sp == ep or svalue != evalue else True


def _entries(bundle: Any) -> list[dict[str, Any]]:
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    return [e for e in entries or [] if isinstance(e, dict)]


def _bdl_3(node: Any, resource: Any, _root: Any) -> bool:
    expected = isinstance(resource, dict) and resource.get("type") in (
        "batch",
        "transaction",
        "history",
    )
    return all(_present(e, "request") == expected for e in _entries(node))


def _bdl_4(node: Any, resource: Any, _root: Any) -> bool:
    kinds = ("batch-response", "transaction-response", "history")
    expected = isinstance(resource, dict) and resource.get("type") in kinds
    return all(_present(e, "response") == expected for e in _entries(node))


def _bdl_7(node: Any, _resource: Any, _root: Any) -> bool:
    if node.get("type") == "history":
        return True
    seen: set[tuple[str, Any]] = set()
    for entry in _entries(node):
        full_url = entry.get("fullUrl")
        if not isinstance(full_url, str):
            continue
        resource = entry.get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        key = (full_url, version)
        if key in seen:
            return False
        seen.add(key)
    return True


def _first_resource_is(node: Any, rtype: str) -> bool:
    entries = _entries(node)
    if not entries:
        return True  # entry.first() is empty: `is` yields empty, `implies` holds
    resource = entries[0].get("resource")
    return isinstance(resource, dict) and resource.get("resourceType") == rtype


def _bdl_9(node: Any, _r: Any, _root: Any) -> bool:
    if node.get("type") != "document":
        return True
    identifier = node.get("identifier")
    return _present(identifier, "system") and _present(identifier, "value")


def _bdl_10(node: Any, _r: Any, _root: Any) -> bool:
    return node.get("type") != "document" or _has_value(node, "timestamp")


def _html(node: Any, _r: Any, _root: Any) -> bool:
    return html_checks(node)


def _inv_1_parameters(node: Any, _r: Any, _root: Any) -> bool:
    part = _present(node, "part")
    value = _present(node, "value")
    resource = _present(node, "resource")
    return (part and not value and not resource) or (not part and (value != resource))


NATIVE_CHECKS: dict[tuple[str, str], NativeCheck] = {
    (
        "ref-1",
        "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
        "%rootResource.contained.id.trace('ids'))",
    ): _ref_1,
    ("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)"): _per_1,
    ("bdl-1", "total.empty() or (type = 'searchset') or (type = 'history')"): lambda n, _r, _o: (
        not _present(n, "total") or n.get("type") in ("searchset", "history")
    ),
    ("bdl-2", "entry.search.empty() or (type = 'searchset')"): lambda n, _r, _o: (
        n.get("type") == "searchset" or not any(_present(e, "search") for e in _entries(n))
    ),
    (
        "bdl-3",
        "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' "
        "or %resource.type = 'history'))",
    ): _bdl_3,
    (
        "bdl-4",
        "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = "
        "'transaction-response' or %resource.type = 'history'))",
    ): _bdl_4,
    ("bdl-5", "resource.exists() or request.exists() or response.exists()"): lambda n, _r, _o: (
        _present(n, "resource") or _present(n, "request") or _present(n, "response")
    ),
    (
        "bdl-7",
        "(type = 'history') or entry.where(fullUrl.exists())"
        ".select(fullUrl&resource.meta.versionId).isDistinct()",
    ): _bdl_7,
    ("bdl-8", "fullUrl.contains('/_history/').not()"): lambda n, _r, _o: (
        "/_history/" not in str(n.get("fullUrl", ""))
    ),
    (
        "bdl-9",
        "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
    ): _bdl_9,
    ("bdl-10", "type = 'document' implies (timestamp.hasValue())"): _bdl_10,
    (
        "bdl-11",
        "type = 'document' implies entry.first().resource.is(Composition)",
    ): lambda n, _r, _o: n.get("type") != "document" or _first_resource_is(n, "Composition"),
    (
        "bdl-12",
        "type = 'message' implies entry.first().resource.is(MessageHeader)",
    ): lambda n, _r, _o: n.get("type") != "message" or _first_resource_is(n, "MessageHeader"),
    ("txt-1", "htmlChecks()"): _html,
    ("txt-2", "htmlChecks()"): _html,
    (
        "inv-1",
        "(part.exists() and value.empty() and resource.empty()) or (part.empty() and "
        "(value.exists() xor resource.exists()))",
    ): _inv_1_parameters,
}

_NAME = r"([a-z][A-Za-z0-9]*)"
_SIMPLE: list[tuple[re.Pattern[str], Callable[[str, str], NativeCheck]]] = [
    (
        re.compile(rf"^{_NAME}\.empty\(\) or {_NAME}\.exists\(\)$"),
        lambda a, b: lambda n, _r, _o: not _present(n, a) or _present(n, b),
    ),
    (
        re.compile(rf"^{_NAME}\.exists\(\) implies {_NAME}\.exists\(\)$"),
        lambda a, b: lambda n, _r, _o: not _present(n, a) or _present(n, b),
    ),
    (
        re.compile(rf"^{_NAME}\.empty\(\) or {_NAME}\.empty\(\)$"),
        lambda a, b: lambda n, _r, _o: not _present(n, a) or not _present(n, b),
    ),
    (
        re.compile(rf"^{_NAME}\.exists\(\) or {_NAME}\.exists\(\)$"),
        lambda a, b: lambda n, _r, _o: _present(n, a) or _present(n, b),
    ),
]
_SINGLE_EMPTY = re.compile(rf"^{_NAME}\.empty\(\)$")
_LENGTH = re.compile(r"^\$this\.toString\(\)\.length\(\) = (\d+)$")


def _length_is(size: int) -> NativeCheck:
    """`$this.toString().length() = N` on a primitive (e.g. PAS FullDateRule)."""

    def check(node: Any, _r: Any, _o: Any) -> bool | None:
        if isinstance(node, bool):
            return len("true" if node else "false") == size
        if isinstance(node, str | int | float):
            return len(str(node)) == size
        return True  # toString() of an object is empty: the comparison is empty

    return check


def native_check(key: str, expression: str | None) -> NativeCheck | None:
    """The Python check replacing this constraint, if there is one."""
    if expression is None:
        return None
    check = NATIVE_CHECKS.get((key, expression))
    if check is not None:
        return check
    for pattern, build in _SIMPLE:
        match = pattern.match(expression)
        if match:
            return build(match[1], match[2])
    length = _LENGTH.match(expression)
    if length:
        return _length_is(int(length[1]))
    single = _SINGLE_EMPTY.match(expression)
    if single:
        name = single[1]
        return lambda n, _r, _o: not _present(n, name)
    return None
