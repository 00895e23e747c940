"""Reference resolution inside a Bundle, following the FHIR rules for `fullUrl`.

A reference resolves to an entry when it equals that entry's `fullUrl` (absolute URLs, `urn:uuid:`
and `urn:oid:`), or, for a relative `Type/id`, when the referring entry's `fullUrl` is a RESTful
URL `<base>/Type/id` and `<base>/<reference>` is an entry's `fullUrl`. A relative reference whose
`Type/id` matches exactly one entry is also accepted (the IG examples rely on it).
"""

from __future__ import annotations

import re
from typing import Any

_HISTORY = re.compile(r"/_history/[^/]+$")
_RESTFUL = re.compile(r"^(?P<base>.*/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")
_RELATIVE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")


def is_absolute(reference: str) -> bool:
    return reference.startswith("urn:") or "://" in reference


class BundleIndex:
    """The entries of one Bundle, by `fullUrl` and by `Type/id`."""

    def __init__(self, bundle: dict[str, Any], *, closed: str | None = None) -> None:
        #: When every reference must resolve inside this Bundle: the IG statement requiring it
        #: (e.g. "PAS spec-13" for PAS request Bundles).
        self.closed = closed
        self.type = bundle.get("type")
        self.by_full_url: dict[str, dict[str, Any]] = {}
        self.by_type_id: dict[tuple[str, str], list[dict[str, Any]]] = {}
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            return
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self.by_full_url.setdefault(_HISTORY.sub("", full_url), resource)
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                self.by_type_id.setdefault((rtype, rid), []).append(resource)

    def resolve(self, reference: str, from_full_url: str | None) -> dict[str, Any] | None:
        """The entry resource `reference` points to (from the entry at `from_full_url`)."""
        reference = _HISTORY.sub("", reference)
        found = self.by_full_url.get(reference)
        if found is not None:
            return found
        if is_absolute(reference):
            return None  # an absolute reference matches an entry only through its fullUrl
        relative = _RELATIVE.match(reference)
        if relative is None:
            return None
        if from_full_url:
            restful = _RESTFUL.match(from_full_url)
            if restful is not None:
                found = self.by_full_url.get(restful["base"] + reference)
                if found is not None:
                    return found
        candidates = self.by_type_id.get((relative["type"], relative["id"]), [])
        return candidates[0] if len(candidates) == 1 else None
