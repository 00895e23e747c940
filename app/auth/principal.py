"""Who is calling, and what each FHIR interaction requires of their scopes.

Scopes follow SMART v2 (`system/Claim.cud`, `system/*.rs`) and accept the v1 spellings
(`system/Claim.read`, `system/*.write`, `system/*.*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["c", "r", "u", "d", "s"]

INTERACTION_ACTIONS: dict[str, Action] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}

_V1_ACTIONS: dict[str, str] = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a registered client and the scopes its token grants."""

    client_id: str
    scopes: frozenset[str]
    anonymous: bool = False

    def allows(self, resource_type: str, action: Action) -> bool:
        if self.anonymous:
            return True
        return any(scope_allows(scope, resource_type, action) for scope in self.scopes)


ANONYMOUS = Principal("anonymous", frozenset(), anonymous=True)


def scope_actions(permission: str) -> str:
    """`rs` -> `rs`; `read` -> `rs`; `write` -> `cud`; `*` -> `cruds`; query suffixes dropped."""
    permission = permission.split("?", 1)[0]
    return _V1_ACTIONS.get(permission, permission)


def scope_allows(scope: str, resource_type: str, action: Action) -> bool:
    """Whether one `system/<Type>.<perms>` scope covers `action` on `resource_type`."""
    context, _, rest = scope.partition("/")
    if context != "system" or "." not in rest:
        return False
    scope_type, _, permission = rest.partition(".")
    if scope_type not in ("*", resource_type):
        return False
    return action in scope_actions(permission)
