"""Who is calling, and what each FHIR interaction requires of their scopes.

Scopes are read by `app.auth.scopes` (SMART v2 `system/Claim.cud`, `system/*.rs`; v1
`system/Claim.read`, `system/*.write`, `system/*.*`; any case of the type name). A principal's
resource grants are parsed once, when it is built from a verified token; a scope that grants
nothing here (a granular `?query` scope, a `user/` scope) allows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth.scopes import Action, ResourceScope, parse_scope

INTERACTION_ACTIONS: dict[str, Action] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a registered client and the scopes its token grants."""

    client_id: str
    scopes: frozenset[str]
    anonymous: bool = False
    grants: tuple[ResourceScope, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = (parse_scope(scope) for scope in self.scopes)
        object.__setattr__(self, "grants", tuple(p for p in parsed if p is not None))

    def allows(self, resource_type: str, action: Action) -> bool:
        """Whether a resource scope covers `action` on `resource_type` (FHIR's spelling)."""
        if self.anonymous:
            return True
        return any(grant.covers(resource_type, action) for grant in self.grants)

    def holds(self, named_scope: str) -> bool:
        """Whether the token carries one of the server's named scopes (`REVIEWER_SCOPE`)."""
        return self.anonymous or named_scope in self.scopes


ANONYMOUS = Principal("anonymous", frozenset(), anonymous=True)
