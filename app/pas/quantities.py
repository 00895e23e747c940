"""PAS 2.2 Quantities (`profile-quantity`): a value, a unit or a code, and X12 unit codes.

PAS 2.2.1 types `Claim.item.quantity` (and what the payer derives from it: the
`itemAuthorizedDetail` quantity and `ClaimResponse.addItem.quantity`) with its Quantity profile,
whose narrative constraints are PAS prof-2 (a value and either a unit or a code) and prof-3 (a
code is one of the X12 quantity units, system `https://codesystem.x12.org/005010/673`). The
payer copies the requested quantity into what it certifies, so on the 2.2.1 base a Claim item
quantity breaking either rule is refused with 400 naming the element (`check_item_quantities`);
reviewer quantities are held to the same rules by `app.um.contract`. PAS 2.0.1 has no such
profile and is not checked.
"""

from __future__ import annotations

from typing import Any

from app.fhir.outcomes import FhirError, Issue
from app.pas.bundle import Entry
from app.pas.codes import X12_673


def quantity_problem(quantity: Any) -> tuple[str, str] | None:
    """(element, why) when `quantity` breaks PAS prof-2 or prof-3; None when it keeps them."""
    if not isinstance(quantity, dict):
        return "", "a Quantity is an object"
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ".value", "a Quantity has a value (PAS prof-2)"
    if not quantity.get("unit") and not quantity.get("code"):
        return ".unit", "a Quantity has a unit or a code (PAS prof-2)"
    if quantity.get("code") and quantity.get("system") != X12_673:
        return ".system", f"a Quantity code is an X12 quantity unit, system {X12_673} (PAS prof-3)"
    return None


def check_item_quantities(claim: Entry) -> None:
    """Refuse (400) a Claim whose `item.quantity` breaks PAS prof-2 or prof-3."""
    for position, item in enumerate(claim.resource.get("item") or []):
        if not isinstance(item, dict) or "quantity" not in item:
            continue
        problem = quantity_problem(item["quantity"])
        if problem is not None:
            where = f"{claim.path}.item[{position}].quantity{problem[0]}"
            raise FhirError(400, Issue("error", "invalid", f"{where}: {problem[1]}", (where,)))
