"""SMART scopes: the one place a scope string is read, normalised, compared and granted.

What this server grants (SMART App Launch 2.x, Backend Services, which DTR spec-120 requires of
every DTR client; CRD and PAS clients use the same token endpoint):

- `system/<Type>.<permissions>`: `<Type>` is a FHIR R4 resource type or `*`; the permissions are
  SMART v2 `c r u d s` (at least one, in that order) or SMART v1 `read` (= `rs`), `write`
  (= `cud`) and `*` (= `cruds`).
- The resource type is read **without regard to case** and granted in FHIR's spelling: the DTR IG
  lists the scopes a DTR client needs, right after DTR spec-120, as `system/questionnaire.rs`,
  `system/valueset.rs` and `system/library.rs`, while FHIR names those types `Questionnaire`,
  `ValueSet` and `Library`. So `system/questionnaire.rs` is granted (and answered) as
  `system/Questionnaire.rs`, `system/claim.c` as `system/Claim.c`; the permissions keep the
  client's v1 or v2 spelling. A name that is no R4 resource type in any case (`system/Foo.rs`,
  `system/humanname.rs`) is not granted. The context and the permissions are case-sensitive as
  SMART defines them (`System/Claim.c`, `system/Claim.RS` are not scopes).
- `user/` and `patient/` scopes are not granted, in any case: a client_credentials token has no
  user and no patient in context, so they cannot be honoured as written (`user/questionnaire.read`
  is dropped; the client may ask for `system/Questionnaire.read`).
- Granular scopes with a query (`system/Observation.rs?category=laboratory`, SMART v2
  finer-grained constraints) are **refused, never enforced**: the token endpoint answers
  `invalid_scope` naming them (`ScopeGrant.granular`), a client registration that lists one is a
  startup error, and a token carrying one allows nothing through it (`parse_scope` gives None).
  Enforcing them does not fit this server: most of what clients call are operations (`$submit`,
  `$inquire`, `$questionnaire-package`, `$next-question`, `$expand`, Subscriptions) whose
  resources no search selects, and a search is an AND of parameters that cannot express the
  union of two such scopes. A restricted scope must never be granted and then act unrestricted.
- Scopes this server names itself, granted by exact name to clients registered with them:
  `greenlight/um.reviewer`, the utilization-review role of the `/um` API (`app.api.um`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from app.fhir.resource_types import fhir_resource_type

Action = Literal["c", "r", "u", "d", "s"]

REVIEWER_SCOPE: Final = "greenlight/um.reviewer"
NAMED_SCOPES: Final = frozenset({REVIEWER_SCOPE})

SMART_CONTEXTS: Final = ("system", "user", "patient")
_V1_PERMISSIONS: Final = {"read": "rs", "write": "cud", "*": "cruds"}
_V2_PERMISSIONS: Final = re.compile(r"c?r?u?d?s?")


class ResourceScope(NamedTuple):
    """A granted `system/` resource scope: the type (FHIR's spelling, or `*`) and its actions."""

    resource_type: str
    actions: str

    def covers(self, resource_type: str, action: str) -> bool:
        return self.resource_type in ("*", resource_type) and action in self.actions


class UnsupportedScopeError(ValueError):
    """A scope this server does not grant; `reason` says why, `granular` if it has a ?query."""

    def __init__(self, scope: str, reason: str, *, granular: bool = False) -> None:
        self.scope = scope
        self.reason = reason
        self.granular = granular
        super().__init__(f"{scope}: {reason}")


def read_scope(scope: str) -> tuple[str, ResourceScope | None]:
    """The scope as granted (FHIR's type spelling) and its resource grant (None for a named
    scope); raises UnsupportedScopeError saying why the server does not grant it."""
    if scope in NAMED_SCOPES:
        return scope, None
    base, has_query, _ = scope.partition("?")
    context, slash, rest = base.partition("/")
    type_name, dot, permissions = rest.rpartition(".")
    if not slash or not dot or not type_name or context not in SMART_CONTEXTS:
        raise UnsupportedScopeError(scope, "not a scope this server grants")
    if has_query:
        raise UnsupportedScopeError(
            scope, "granular scopes (with a ?query) are not supported", granular=True
        )
    if context != "system":
        raise UnsupportedScopeError(
            scope,
            f"only system/ scopes are granted (SMART Backend Services has no {context} in context)",
        )
    actions = _V1_PERMISSIONS.get(permissions, permissions)
    if not actions or not _V2_PERMISSIONS.fullmatch(actions):
        raise UnsupportedScopeError(
            scope, "permissions are SMART v2 c, r, u, d, s (in that order) or v1 read, write, *"
        )
    resource_type = "*" if type_name == "*" else fhir_resource_type(type_name)
    if resource_type is None:
        raise UnsupportedScopeError(scope, f"{type_name} is not a FHIR R4 resource type")
    return f"system/{resource_type}.{permissions}", ResourceScope(resource_type, actions)


def parse_scope(scope: str) -> ResourceScope | None:
    """`system/Claim.cud` -> (`Claim`, `cud`); None for a named scope or one not granted."""
    try:
        return read_scope(scope)[1]
    except UnsupportedScopeError:
        return None


def scope_within(requested: str, allowed: Sequence[str]) -> bool:
    """Whether `requested` asks for nothing beyond what the `allowed` scopes grant."""
    try:
        _, wanted = read_scope(requested)
    except UnsupportedScopeError:
        return False
    if wanted is None:
        return requested in allowed
    held = [parsed for parsed in map(parse_scope, allowed) if parsed is not None]
    return all(
        any(grant.covers(wanted.resource_type, action) for grant in held)
        for action in wanted.actions
    )


@dataclass
class ScopeGrant:
    """What the token endpoint makes of a requested `scope` for one client."""

    granted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # requested scope -> why not
    granular: list[str] = field(default_factory=list)  # requested scopes with a ?query

    def refusals(self) -> str:
        return "; ".join(f"{scope} ({why})" for scope, why in self.refused.items())


def grant_scopes(requested: str, allowed: Sequence[str]) -> ScopeGrant:
    """The requested scopes (space-separated) the client may have, as granted: FHIR's type
    spelling, request order, repeats dropped; the others with the reason they are not granted."""
    grant = ScopeGrant()
    for scope in requested.split():
        try:
            granted, _ = read_scope(scope)
        except UnsupportedScopeError as exc:
            grant.refused[scope] = exc.reason
            if exc.granular:
                grant.granular.append(scope)
            continue
        if not scope_within(granted, allowed):
            grant.refused[scope] = "not registered for this client"
        elif granted not in grant.granted:
            grant.granted.append(granted)
    return grant


def check_registered_scopes(client_id: str, scopes: Iterable[str]) -> None:
    """Refuse (RuntimeError) a client registration listing a scope this server never grants,
    granular ones included: the registration must not look narrower than it is."""
    for scope in scopes:
        try:
            read_scope(scope)
        except UnsupportedScopeError as exc:
            raise RuntimeError(f"clients[{client_id}]: scope {exc}") from exc
