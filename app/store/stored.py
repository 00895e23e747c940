"""What the store hands out: one stored version of a resource, a page of search results, and
the instants they carry (epoch microseconds, shown as FHIR `instant`s)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored: its JSON bytes (None when deleted) and metadata."""

    resource_type: str
    id: str
    version_id: int
    last_updated_us: int
    deleted: bool
    body: bytes | None

    @property
    def last_updated(self) -> str:
        return format_instant(self.last_updated_us)

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    def json(self) -> dict[str, Any]:
        if self.body is None:
            raise ValueError(f"{self.resource_type}/{self.id} has no body (deleted)")
        loaded: dict[str, Any] = orjson.loads(self.body)
        return loaded


@dataclass(frozen=True)
class SearchPage:
    total: int
    items: Sequence[StoredResource]


def now_us() -> int:
    """The current time in epoch microseconds, at millisecond precision (as `meta.lastUpdated`):
    the clock `datetime.now` reads, without building a datetime."""
    return time.time_ns() // 1_000_000 * 1_000


def format_instant(epoch_us: int) -> str:
    moment = datetime.fromtimestamp(epoch_us / 1_000_000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored_from_row(resource_type: str, resource_id: str, row: Any) -> StoredResource:
    """A `StoredResource` from a row with `version_id`, `last_updated_us`, `deleted` and `body`
    (text, None when deleted)."""
    body = row.body.encode("utf-8") if row.body is not None else None
    return StoredResource(
        resource_type, resource_id, row.version_id, row.last_updated_us, bool(row.deleted), body
    )
