"""Index rows for a resource: one (param, system, value) per searchable value.

Token values come from strings, Identifiers, Codings and CodeableConcepts; references are stored
as (target type, id) so `patient=123`, `patient=Patient/123` and an absolute URL on this server
all match. The same normalization serves the search side (`app.store.search`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.registry import ResourceSpec, SearchParam

MAX_VALUE_LENGTH = 1024


@dataclass(frozen=True)
class IndexEntry:
    param: str
    system: str | None
    value: str


def token_values(value: Any) -> Iterator[tuple[str | None, str]]:
    """(system, code) pairs of a token-typed element value."""
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str | int):
        yield None, str(value)
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                yield from token_values(coding)
        elif "code" in value and value.get("code") is not None:
            yield value.get("system"), str(value["code"])
        elif "value" in value and value.get("value") is not None:
            yield value.get("system"), str(value["value"])


def normalize_string(text: str) -> str:
    """String search values are matched case-insensitively, ignoring surrounding blanks."""
    return " ".join(text.split()).casefold()


def split_reference(reference: str, fhir_base: str | None = None) -> tuple[str | None, str]:
    """(type, id) of a reference: `Patient/1`, `<base>/Patient/1`, `Patient/1/_history/2` all give
    ("Patient", "1"); a bare `1` gives (None, "1")."""
    ref = reference.strip()
    if fhir_base and ref.startswith(fhir_base + "/"):
        ref = ref[len(fhir_base) + 1 :]
    if "/_history/" in ref:
        ref = ref.split("/_history/", 1)[0]
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        return None, ref
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, ref


def _pairs(param: SearchParam, resource: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(system, value) of each value `param` indexes in `resource` (for a reference: its type
    and id)."""
    pairs: list[tuple[str | None, str]] = []
    for raw in param.values(resource):
        if param.type == "reference":
            if not isinstance(raw, str):
                continue
            target, ident = split_reference(raw)
            if param.target and target != param.target:
                continue
            pairs.append((target, ident))
        elif param.type == "token":
            pairs.extend(token_values(raw))
        elif param.type == "string" and isinstance(raw, str):
            pairs.append((None, normalize_string(raw)))
        elif isinstance(raw, str):
            pairs.append((None, raw))
    return pairs


def index_entries(spec: ResourceSpec, resource: dict[str, Any]) -> list[IndexEntry]:
    """All index rows of `resource`, deduplicated, values cut to the column size."""
    seen: dict[tuple[str, str | None, str], IndexEntry] = {}
    for param in spec.search_params:
        for system, value in _pairs(param, resource):
            key = (param.name, system, value[:MAX_VALUE_LENGTH])
            if key not in seen:
                seen[key] = IndexEntry(*key)
    return list(seen.values())
