"""The change flags of a PAS Claim update, checked against the Claim it updates.

An update (`$submit` with a ClaimUpdate whose `related` prior Claim is one of this client's
stored requests) repeats every `item` and `supportingInfo` entry of the prior Claim with its
`sequence`, and flags the differences (PAS specification, "Updating Authorization Requests").
`check_update_flags` answers 400 naming the element when:

- an entry of the prior Claim is missing: a removed entry stays, flagged cancelled (PAS spec-69);
  a whole-request cancel (certificationType 3 on the Claim) needs no entries;
- a cancelled item lacks either flag: the `infoCancelled` modifier extension = true (spec-69)
  and `certificationType` 3 (spec-70) go together on an item;
- an entry added, modified or newly cancelled compared to the prior Claim has no `infoChanged`
  extension (spec-71), or a modified or cancelled entry's `infoChanged` is not `changed`
  (spec-72). For added entries the IG's examples and its ClaimUpdate profile use `added`,
  while spec-72's text reads `changed`; both are accepted.

Entries flagged although unchanged are accepted (the Inferno kit's update sequence does that).
"""

from __future__ import annotations

from typing import Any

from app.fhir.outcomes import FhirError, Issue
from app.pas.bundle import Entry
from app.pas.codes import (
    CERTIFICATION_CANCEL,
    EXT_CERTIFICATION_TYPE,
    EXT_INFO_CANCELLED,
    EXT_INFO_CHANGED,
)

ELEMENTS = ("item", "supportingInfo")


def _bad(diagnostics: str, expression: str) -> FhirError:
    return FhirError(400, Issue("error", "invalid", diagnostics, (expression,)))


def _certification_cancel(node: dict[str, Any]) -> bool:
    for extension in node.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == EXT_CERTIFICATION_TYPE:
            codings = (extension.get("valueCodeableConcept") or {}).get("coding") or []
            if any(isinstance(c, dict) and c.get("code") == CERTIFICATION_CANCEL for c in codings):
                return True
    return False


def _info_cancelled(node: dict[str, Any]) -> bool:
    return any(
        isinstance(m, dict) and m.get("url") == EXT_INFO_CANCELLED and m.get("valueBoolean")
        for m in node.get("modifierExtension") or []
    )


def _info_changed(node: dict[str, Any]) -> tuple[int, str | None] | None:
    """(position in `extension`, valueCode) of the infoChanged extension, if any."""
    for position, extension in enumerate(node.get("extension") or []):
        if isinstance(extension, dict) and extension.get("url") == EXT_INFO_CHANGED:
            code = extension.get("valueCode")
            return position, str(code) if code is not None else None
    return None


def _content(node: dict[str, Any]) -> dict[str, Any]:
    """An entry without its infoChanged flag, to compare with the prior version."""
    kept = {k: v for k, v in node.items() if k != "extension"}
    extensions = [
        e
        for e in node.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") == EXT_INFO_CHANGED)
    ]
    if extensions:
        kept["extension"] = extensions
    return kept


def _by_sequence(claim: dict[str, Any], element: str) -> dict[Any, tuple[int, dict[str, Any]]]:
    return {
        entry.get("sequence"): (position, entry)
        for position, entry in enumerate(claim.get(element) or [])
        if isinstance(entry, dict)
    }


def check_update_flags(update: Entry, prior: Entry) -> None:
    """Check an update's item and supportingInfo flags against its prior Claim (see above)."""
    cancel_all = _certification_cancel(update.resource)
    for element in ELEMENTS:
        before = _by_sequence(prior.resource, element)
        now = _by_sequence(update.resource, element)
        if not cancel_all:
            for sequence in before:
                if sequence not in now:
                    raise _bad(
                        f"{element} {sequence} of the updated Claim is missing: an update repeats "
                        "every entry, and a removed one stays with the infoCancelled modifier "
                        "extension (PAS spec-69)",
                        f"{update.path}.{element}",
                    )
        for sequence, (position, entry) in now.items():
            where = f"{update.path}.{element}[{position}]"
            cancelled = _info_cancelled(entry)
            if element == "item" and _certification_cancel(entry) and not cancelled:
                raise _bad(
                    f"item {sequence} is cancelled (certificationType 3) without the "
                    "infoCancelled modifier extension (PAS spec-69)",
                    f"{where}.modifierExtension",
                )
            if element == "item" and cancelled and not _certification_cancel(entry):
                raise _bad(
                    f"item {sequence} is cancelled (infoCancelled) without certificationType 3 "
                    "(PAS spec-70)",
                    f"{where}.extension",
                )
            previous = before.get(sequence)
            if previous is not None and _content(previous[1]) == _content(entry):
                continue  # unchanged: flags optional
            flag = _info_changed(entry)
            change = "added" if previous is None else "modified or cancelled"
            if flag is None:
                raise _bad(
                    f"{element} {sequence} is {change} compared to the Claim it updates and "
                    "carries no infoChanged extension (PAS spec-71)",
                    f"{where}.extension",
                )
            allowed = ("added", "changed") if previous is None else ("changed",)
            if flag[1] not in allowed:
                raise _bad(
                    f"{element} {sequence} is {change}: its infoChanged code is "
                    f"{' or '.join(allowed)}, not {flag[1]!r} (PAS spec-72)",
                    f"{where}.extension[{flag[0]}].valueCode",
                )
