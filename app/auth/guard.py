"""The authorization guard every `/fhir` route calls, whatever authenticates the caller.

`Authenticator` is what `app.state.authenticator` holds: with auth off it answers ANONYMOUS for
everyone; the SMART implementation (`app.auth.smart`) checks bearer tokens.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

from app.auth.principal import ANONYMOUS, Principal
from app.auth.scopes import Action
from app.fhir.outcomes import FhirError


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> Principal:
        """The caller of `request`, or raise FhirError(401)."""
        ...


class OpenAccess:
    """Auth turned off (demo mode only): every caller is anonymous and allowed everything."""

    async def authenticate(self, request: Request) -> Principal:
        return ANONYMOUS


async def authorize(request: Request, resource_type: str, action: Action) -> Principal:
    """Authenticate the caller and check that its scopes allow `action` on `resource_type`."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(request)
    if not principal.allows(resource_type, action):
        raise FhirError.single(
            403,
            "forbidden",
            f"The access token does not grant system/{resource_type}.{action}",
            resource_type,
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    return principal
