"""The single import surface for FHIR models, and parsing of inbound resources.

fhir.resources has no R4 (4.0.1) package; its R4B models are used (see DECISIONS.md). Parsing is
used for what it checks (unknown elements, missing 1..1 elements, primitive formats); the JSON a
client sent is what gets stored, so the wire form is never re-serialized from a model.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import ValidationError

from app.fhir.model_classes import model_class
from app.fhir.outcomes import FhirError, Issue
from app.fhir.quick_check import conforms
from app.lru import Lru

FHIR_VERSION = "4.0.1"
#: how many accepted resources `check_resource` remembers (by digest, least recently used out)
REMEMBERED_RESOURCES = 1024

# Digests of the JSON of resources accepted lately. Clients send the same resources again: CDS
# Hooks draft orders on every order-select of an ordering session and once more on order-sign,
# DTR's contained adaptive Questionnaire (Greenlight's own output) on every $next-question step.
# Digesting a resource costs a fraction of checking it.
_accepted: Lru[bytes, bool] = Lru(REMEMBERED_RESOURCES)


def _digest(resource: dict[str, Any]) -> bytes | None:
    try:
        return hashlib.sha256(orjson.dumps(resource)).digest()
    except TypeError:  # not JSON (built in code with other values): checked, not remembered
        return None


def _remember(digest: bytes) -> None:
    _accepted.put(digest, True)


def element_path(root: str, loc: tuple[int | str, ...]) -> str:
    """`('name', 0, 'family')` under `Patient` -> `Patient.name[0].family`."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() or part.replace("-", "_").isidentifier():
            path += f".{part}"
        # pydantic validator labels (e.g. "function-after[...]") are not elements
    return path


_ERROR_TEXT = {
    "extra_forbidden": "is not an element of",
    "missing": "is required (minimum cardinality 1) in",
}


def _issue_from_error(root: str, error: Any, path_prefix: str) -> Issue:
    path = element_path(path_prefix or root, tuple(error["loc"]))
    kind = error["type"]
    if kind in _ERROR_TEXT:
        element = str(error["loc"][-1]) if error["loc"] else root
        message = f"{element} {_ERROR_TEXT[kind]} {root} (FHIR R4)"
        code = "structure" if kind == "extra_forbidden" else "required"
    else:
        message = f"Invalid value at {path}: {error['msg']}"
        code = "value"
    return Issue("error", code, message, (path,))


def parse_json_body(body: bytes, *, expression: str = "") -> Any:
    """Decode a JSON request body or raise 400 naming the problem."""
    if not body.strip():
        raise FhirError.single(400, "invalid", "The request body is empty", expression or "$")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError.single(
            400, "structure", f"The request body is not valid JSON: {exc}", expression or "$"
        ) from None


def check_resource(
    resource: Any, *, expected_type: str | None = None, path_prefix: str = ""
) -> dict[str, Any]:
    """Check that `resource` is a FHIR R4 resource (of `expected_type`), else raise 400."""
    where = path_prefix or "$"
    if not isinstance(resource, dict):
        raise FhirError.single(400, "structure", "A FHIR resource must be a JSON object", where)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirError.single(
            400,
            "required",
            "resourceType is missing",
            f"{path_prefix}.resourceType" if path_prefix else "resourceType",
        )
    if expected_type is not None and resource_type != expected_type:
        raise FhirError.single(
            400,
            "invalid",
            f"resourceType {resource_type} does not match the {expected_type} endpoint",
            f"{path_prefix}.resourceType" if path_prefix else f"{expected_type}.resourceType",
        )
    cls = model_class(resource_type)
    if cls is None:
        raise FhirError.single(
            400, "not-supported", f"{resource_type} is not a FHIR R4 resource type", where
        )
    digest = _digest(resource)
    if digest is not None and _accepted.get(digest):
        return resource  # accepted before, exactly as it is now
    if not conforms(resource, resource_type):  # else: the common, valid case, checked quickly
        try:
            cls.model_validate(resource)
        except ValidationError as exc:
            issues = [_issue_from_error(resource_type, err, path_prefix) for err in exc.errors()]
            raise FhirError(400, issues[:50]) from None
    if digest is not None:
        _remember(digest)
    return resource
