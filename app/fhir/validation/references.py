"""References in an instance: resolving them, and checking their targets.

A `#id` reference resolves in the `contained` of the root resource; any other resolves to an
entry of the innermost Bundle being walked (see `bundles.py`). A resolved target must be one of
the resource types the element allows and agree with `Reference.type`. An unresolved reference
is an error where the Bundle must be complete (`CLOSED_BUNDLES`, document and message Bundles,
`urn:` references) and a warning elsewhere. In a PAS request Bundle, a Claim after the first
entry (the one a ClaimUpdate updates) may point at its own prior version, which is left out of
the Bundle (PAS spec-66): that reference is not checked.
"""

from __future__ import annotations

import re
from typing import Any

from app.fhir.validation.definitions import Definitions
from app.fhir.validation.run import Item, Run
from app.fhir.validation.structure import TypeRef

_LITERAL_REF = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$"
)
#: A Claim after the first entry (the Claim a PAS ClaimUpdate updates) pointing at its own
#: prior version, which PAS spec-66 keeps out of the Bundle.
_PRIOR_OF_PRIOR = re.compile(
    r"^Bundle\.entry\[[1-9]\d*\]\.resource\.related\[\d+\]\.claim\.reference$"
)
_PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
#: Bundles whose every reference must resolve to an entry, with the IG statement that says so.
CLOSED_BUNDLES = {
    _PAS + "profile-pas-request-bundle": "PAS spec-13",
    _PAS + "profile-pas-inquiry-request-bundle": "PAS spec-13",
}


def resolve(run: Run, reference: str) -> dict[str, Any] | None:
    """The resource `reference` points to from where the walk is, if it can be found."""
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


def check_reference(run: Run, item: Item, type_ref: TypeRef, definitions: Definitions) -> None:
    """A Reference value: it resolves (inside a Bundle) to a target of an allowed type."""
    reference = item.value.get("reference")
    if not isinstance(reference, str):
        return
    allowed = (
        definitions.target_types(type_ref.target_profiles) if type_ref.target_profiles else None
    )
    actual: str | None = None
    if reference.startswith("#") or run.bundles:
        target = resolve(run, reference)
        if target is None:
            _dangling(run, reference, f"{item.path}.reference")
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


def _dangling(run: Run, reference: str, path: str) -> None:
    """An unresolved reference: an error where it must resolve, else a warning."""
    if reference.startswith("#"):
        return  # the core invariant ref-1 (on every Reference) reports it
    bundle = run.bundles[-1]
    message = f"Reference {reference} cannot be resolved in the Bundle"
    if bundle.closed and _PRIOR_OF_PRIOR.match(path):
        ctx = run.resources[-1] if run.resources else None
        if ctx is not None and ctx.root.get("resourceType") == "Claim":
            return  # PAS spec-66: the updated Claim's own predecessor is not included
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
