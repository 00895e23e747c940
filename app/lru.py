"""A bounded map that forgets its least recently used entries.

The hot paths keep small in-process memories that must not grow with traffic: the digests of
resources accepted lately (`app.fhir.models`), recent coverage assertions
(`app.store.assertions`), kept token lookups (`app.store.lookup_cache`) and Create or update
coverage comparisons (`cds_hooks.coverage_record`). Each one decides what it keeps; this holds
the entries, moves one to the back when it is used and drops the front one past `capacity`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar, overload

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")
Default = TypeVar("Default")


class Lru(Generic[Key, Value]):
    """At most `capacity` entries; `get` and `put` make an entry the most recently used."""

    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an Lru holds at least one entry")
        self.capacity = capacity
        self._entries: OrderedDict[Key, Value] = OrderedDict()

    @overload
    def get(self, key: Key) -> Value | None: ...

    @overload
    def get(self, key: Key, default: Default) -> Value | Default: ...

    def get(self, key: Key, default: object = None) -> object:
        """The value held for `key` (now the most recently used), else `default`."""
        entries = self._entries
        if key not in entries:
            return default
        entries.move_to_end(key)
        return entries[key]

    def put(self, key: Key, value: Value) -> None:
        """Hold `value` for `key` as the most recently used; drop the least recently used entry
        when there are more than `capacity`."""
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def discard(self, key: Key) -> None:
        """Forget `key` (nothing happens when it is not held)."""
        self._entries.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
