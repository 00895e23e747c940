"""Request-scoped access to the application's services (store, settings, registry)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.config import Settings
from app.registry import Registry
from app.store.repository import ResourceStore


@dataclass(frozen=True)
class Services:
    """What a router needs, built once in `create_app` and kept on `app.state.services`."""

    settings: Settings
    registry: Registry
    store: ResourceStore


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
