"""Checks of inbound PAS Bundles ($submit and $inquire) and navigation inside them.

`check_request_bundle` raises `FhirError(400)` with an OperationOutcome naming the element for
what makes a request impossible to process, whatever `GREENLIGHT_VALIDATION` says:

- not a `collection` Bundle, or no entries (PAS spec-12);
- an entry without `fullUrl` or `resource`, or carrying `request`/`response`; a `fullUrl` used
  twice (PAS spec-14, spec-16);
- for `$submit`, a `fullUrl` that is neither `urn:uuid:<GUID>` nor the http(s) URL of the
  resource (`[base]/[type]/[id]`, agreeing with the resource's type and id) (PAS spec-16);
- a first entry that is not a Claim (PAS spec-12), or a Claim whose `use` is not
  `preauthorization`; duplicate `item.sequence` or `supportingInfo.sequence` (PAS spec-22);
- a Claim that is not valid FHIR R4 (unknown elements, missing 1..1 elements, bad values; it is
  stored as a resource). The other entries are checked by the profile validator, per the
  validation setting (with `parse="all"`, they are parsed with the R4 models too);
- a `modifierExtension` in the Claim other than `infoCancelled`: a modifier this server does
  not understand changes what the Claim means, so it is refused rather than ignored (PAS spec-25
  allows that; unknown non-modifier elements are ignored);
- for `$submit`, any reference reachable from the Claim that does not resolve to an entry
  (PAS spec-13, spec-18, spec-67, transitively; a prior Claim's own `related` claim is exempt,
  PAS spec-66, and is not in the Bundle at all); an entry the Claim does not reach through
  references, e.g. supporting information that `Claim.supportingInfo` does not point to
  (PAS spec-20). For `$inquire`, the Claim's `patient`, `provider`, `insurer` and coverage must
  resolve.

Profile conformance is checked afterwards by the validator, per the validation setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError, Issue
from app.fhir.validation.bundles import BundleIndex
from app.pas.codes import EXT_INFO_CANCELLED

_GUID_URN = re.compile(
    r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


@dataclass(frozen=True)
class Entry:
    """One Bundle entry: its position, `fullUrl` and resource."""

    index: int
    full_url: str
    resource: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


def _bad(diagnostics: str, expression: str, code: str = "invalid") -> FhirError:
    return FhirError(400, Issue("error", code, diagnostics, (expression,)))


def references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(element path, reference string) of every literal reference inside `node`."""
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference and not reference.startswith("#"):
            yield f"{path}.reference", reference
        for key, value in node.items():
            if key in ("contained", "reference"):
                continue
            yield from references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from references(value, f"{path}[{position}]")


class RequestBundle:
    """A checked PAS request Bundle with reference resolution between its entries."""

    def __init__(self, bundle: dict[str, Any], entries: list[Entry]) -> None:
        self.bundle = bundle
        self.entries = entries
        self._index = BundleIndex(bundle)
        self._by_resource = {id(e.resource): e for e in entries}

    @classmethod
    def stored(cls, bundle: dict[str, Any]) -> RequestBundle:
        """A Bundle this server accepted earlier (already checked): no checks again."""
        entries = [
            Entry(index, entry["fullUrl"], entry["resource"])
            for index, entry in enumerate(bundle.get("entry") or [])
        ]
        return cls(bundle, entries)

    @property
    def claim(self) -> Entry:
        return self.entries[0]

    @property
    def identifier_key(self) -> str:
        identifier = self.bundle.get("identifier") or {}
        return f"{identifier.get('system') or ''}|{identifier.get('value') or ''}"

    def entry_of(self, resource: dict[str, Any]) -> Entry | None:
        return self._by_resource.get(id(resource))

    def resolve(self, reference: Any, source: Entry | None = None) -> Entry | None:
        """The entry a Reference (object or string) points to, from the entry `source`."""
        if isinstance(reference, dict):
            reference = reference.get("reference")
        if not isinstance(reference, str) or not reference:
            return None
        found = self._index.resolve(reference, (source or self.claim).full_url)
        return None if found is None else self._by_resource.get(id(found))

    def resource(self, reference: Any, source: Entry | None = None) -> dict[str, Any] | None:
        entry = self.resolve(reference, source)
        return None if entry is None else entry.resource

    def of_type(self, resource_type: str) -> list[Entry]:
        return [e for e in self.entries if e.type == resource_type]

    def reachable(self) -> list[Entry]:
        """The Claim and every entry reachable from it through references."""
        seen = {self.claim.index}
        queue = [self.claim]
        found = [self.claim]
        while queue:
            current = queue.pop()
            for _path, reference in _followed(current):
                target = self.resolve(reference, current)
                if target is not None and target.index not in seen:
                    seen.add(target.index)
                    found.append(target)
                    queue.append(target)
        return found


def _followed(entry: Entry) -> Iterator[tuple[str, str]]:
    """The references of `entry` that must resolve (a prior Claim's `related`: PAS spec-66)."""
    for path, reference in references(entry.resource, entry.path):
        if entry.index > 0 and entry.type == "Claim" and ".related[" in path:
            continue
        yield path, reference


def full_url_problem(full_url: str, resource: dict[str, Any]) -> str | None:
    """Why `full_url` is not a fullUrl PAS spec-16 allows (None when it is): the URL at which the
    client exposes the resource (`http(s)://.../[type]/[id]`, version-independent, agreeing with
    the resource) or `urn:uuid:[GUID]`."""
    if full_url.startswith("urn:uuid:"):
        return None if _GUID_URN.match(full_url) else "urn:uuid: is followed by a GUID"
    parts = urlsplit(full_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return "it is either urn:uuid:[GUID] or the http(s) URL of the resource"
    segments = parts.path.rstrip("/").split("/")
    resource_type = resource.get("resourceType")
    if len(segments) < 3 or segments[-2] != resource_type:
        return f"the URL of a {resource_type} ends with /{resource_type}/[id]"
    if "id" in resource and segments[-1] != resource["id"]:
        return f"the URL ends with the resource's id {resource['id']!r}"
    return None


def _entries(bundle: dict[str, Any], parse: str, submit: bool) -> list[Entry]:
    raw = bundle.get("entry")
    if raw is None or raw == []:
        raise _bad(
            "The Bundle holds no entries: a PAS request Bundle starts with the Claim (PAS spec-12)",
            "Bundle.entry",
            "required",
        )
    if not isinstance(raw, list):
        raise _bad("Bundle.entry must be a list", "Bundle.entry", "structure")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"Bundle.entry[{index}]"
        if not isinstance(item, dict):
            raise _bad("An entry must be an object", where, "structure")
        for forbidden in ("request", "response", "search"):
            if forbidden in item:
                raise _bad(
                    f"A PAS request Bundle entry has no `{forbidden}`", f"{where}.{forbidden}"
                )
        full_url = item.get("fullUrl")
        if not isinstance(full_url, str) or not full_url:
            raise _bad("Every entry needs a fullUrl (PAS spec-16)", f"{where}.fullUrl", "required")
        if full_url in seen:
            raise _bad(
                f"fullUrl {full_url} is also used by entry {seen[full_url]}: each resource "
                "appears once (PAS spec-14)",
                f"{where}.fullUrl",
            )
        seen[full_url] = index
        resource = item.get("resource")
        if not isinstance(resource, dict):
            raise _bad("Every entry needs a resource", f"{where}.resource", "required")
        problem = full_url_problem(full_url, resource) if submit else None
        if problem is not None:
            raise _bad(
                f"fullUrl {full_url} is not allowed: {problem} (PAS spec-16)", f"{where}.fullUrl"
            )
        if parse == "all" or (parse == "claim" and index == 0):
            check_resource(resource, path_prefix=f"{where}.resource")
        entries.append(Entry(index, full_url, resource))
    return entries


def _unique_sequences(claim: Entry, element: str) -> None:
    seen: set[Any] = set()
    for position, item in enumerate(claim.resource.get(element) or []):
        sequence = item.get("sequence") if isinstance(item, dict) else None
        if sequence in seen:
            raise _bad(
                f"{element}.sequence {sequence} is used twice; sequences identify entries "
                "across requests and responses (PAS spec-22, spec-34)",
                f"{claim.path}.{element}[{position}].sequence",
            )
        seen.add(sequence)


def _understood_modifiers(claim: Entry) -> None:
    """Refuse a Claim carrying a modifier extension other than infoCancelled (PAS spec-25)."""
    for path, node in _modifier_nodes(claim.resource, claim.path):
        for position, modifier in enumerate(node):
            url = modifier.get("url") if isinstance(modifier, dict) else None
            if url != EXT_INFO_CANCELLED:
                raise FhirError(
                    400,
                    Issue(
                        "error",
                        "not-supported",
                        f"Modifier extension {url} is not understood by this server; a modifier "
                        "changes the meaning of what it is on and cannot be ignored (PAS spec-25)",
                        (f"{path}.modifierExtension[{position}]",),
                    ),
                )


def _modifier_nodes(node: Any, path: str) -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        modifiers = node.get("modifierExtension")
        if isinstance(modifiers, list):
            yield path, modifiers
        for key, value in node.items():
            if key not in ("modifierExtension", "contained"):
                yield from _modifier_nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from _modifier_nodes(value, f"{path}[{position}]")


def _prior_of_prior(request: RequestBundle) -> None:
    """A ClaimUpdate's prior Claim that is itself an update: its own prior is not in the Bundle
    (PAS spec-66)."""
    claim = request.claim
    for related in claim.resource.get("related") or []:
        prior = request.resolve((related or {}).get("claim"), claim)
        if prior is None or prior.type != "Claim" or prior.index == claim.index:
            continue
        for earlier in prior.resource.get("related") or []:
            included = request.resolve((earlier or {}).get("claim"), prior)
            if included is not None and included.type == "Claim":
                raise _bad(
                    f"Entry {included.index} is the Claim that the updated Claim (entry "
                    f"{prior.index}) itself updated; only the Claim being updated is included, "
                    "not its predecessors (PAS spec-66)",
                    f"Bundle.entry[{included.index}]",
                )


def _must_resolve(request: RequestBundle, entry: Entry, path: str, reference: str) -> None:
    if request.resolve(reference, entry) is None:
        raise FhirError(
            400,
            Issue(
                "error",
                "not-found",
                f"Reference {reference} does not resolve to an entry of the Bundle: the Bundle "
                "SHALL hold every resource the Claim references, transitively (PAS spec-13)",
                (path,),
            ),
        )


def check_request_bundle(
    payload: Any, *, inquiry: bool = False, parse: str = "all"
) -> RequestBundle:
    """Check a $submit (or, with `inquiry`, a $inquire) Bundle; raise 400 naming the element.

    `parse` says which entries are parsed with the R4 models: `all`, `claim` (it is stored as a
    resource; the profile validator checks the others) or `none` (the caller parses the Claim
    itself, see `check_claim`)."""
    if not isinstance(payload, dict) or payload.get("resourceType") != "Bundle":
        found = payload.get("resourceType") if isinstance(payload, dict) else None
        raise _bad(
            f"The operation takes a PAS request Bundle, not {found or 'this body'}",
            "Bundle.resourceType" if found else "$",
        )
    if payload.get("type") != "collection":
        raise _bad(
            f"A PAS request Bundle has type collection, not {payload.get('type')!r}",
            "Bundle.type",
        )
    entries = _entries(payload, parse, submit=not inquiry)
    first = entries[0]
    if first.type != "Claim":
        raise _bad(
            f"The first entry must be the Claim, not a {first.type} (PAS spec-12)",
            f"{first.path}.resourceType",
        )
    use = first.resource.get("use")
    if use != "preauthorization":
        raise _bad(
            f"Claim.use is {use!r}: a prior authorization request has use = preauthorization",
            f"{first.path}.use",
        )
    _unique_sequences(first, "item")
    _unique_sequences(first, "supportingInfo")
    _understood_modifiers(first)
    request = RequestBundle(payload, entries)
    claim = first.resource
    for element in ("patient", "provider", "insurer"):
        if not isinstance(claim.get(element), dict):
            raise _bad(f"The Claim needs `{element}`", f"{first.path}.{element}", code="required")
    if inquiry:
        wanted = [
            (f"{first.path}.{name}.reference", (claim.get(name) or {}).get("reference"))
            for name in ("patient", "provider", "insurer")
        ]
        for position, insurance in enumerate(claim.get("insurance") or []):
            wanted.append(
                (
                    f"{first.path}.insurance[{position}].coverage.reference",
                    ((insurance or {}).get("coverage") or {}).get("reference"),
                )
            )
        for path, reference in wanted:
            if isinstance(reference, str):
                _must_resolve(request, first, path, reference)
        return request
    queue = [first]
    seen = {first.index}
    while queue:
        current = queue.pop()
        for path, reference in _followed(current):
            _must_resolve(request, current, path, reference)
            target = request.resolve(reference, current)
            if target is not None and target.index not in seen:
                seen.add(target.index)
                queue.append(target)
    _prior_of_prior(request)
    for entry in entries:
        if entry.index not in seen:
            raise _bad(
                f"Entry {entry.index} ({entry.type}) is not referenced from the Claim, directly or "
                "through the resources it references: supporting information is pointed to by "
                "Claim.supportingInfo.valueReference (PAS spec-20), and the Bundle holds what the "
                "Claim references (PAS spec-13)",
                f"Bundle.entry[{entry.index}]",
            )
    return request


def check_claim(request: RequestBundle) -> None:
    """Parse the Claim with the R4 models (400 naming the element when it is not valid FHIR)."""
    check_resource(request.claim.resource, path_prefix=f"{request.claim.path}")
