"""Results of hot indexed lookups kept between calls, for as long as nothing they read changed.

Every CRD call looks up the member's Coverage by identifier (`ResourceStore.find_by_token`). On
SQLite that read costs ~40 us more than the query itself: each COMMIT of the write connection
(every call's audit record) resets the page cache of the reading connection, which then reads
page 1 and each b-tree page of the lookup again (8 `pread64` and 4 `fcntl` per lookup, measured
with strace). Payer data changes seldom; the lookup's answer is kept with the stamp its
resource type had when it was read (`SqliteWriteEngine.freshness`: this process's committed
writes of that type and the database's `data_version` for every other connection's), and served
again while the stamp is unchanged. The stamp is taken before the read, so a write that lands
between the stamp and the read only makes the kept answer look older than it is.

At most `capacity` answers are kept, the least recently used dropped first. Kept answers are
immutable (`StoredResource` holds the JSON bytes), so callers can share them.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from app.lru import Lru

Answer = TypeVar("Answer")
Stamp = tuple[int, int]

DEFAULT_CAPACITY = 4096


class LookupCache(Generic[Answer]):
    """Answers by key, each valid for the stamp it was read under."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._answers: Lru[Hashable, tuple[Stamp, Answer]] = Lru(capacity)

    def get(self, key: Hashable, stamp: Stamp) -> Answer | None:
        """The answer kept for `key` if it was read under `stamp`, else None."""
        kept = self._answers.get(key)
        if kept is None:
            return None
        if kept[0] != stamp:
            self._answers.discard(key)
            return None
        return kept[1]

    def put(self, key: Hashable, stamp: Stamp, answer: Answer) -> None:
        """Keep `answer`, read under `stamp` (taken before the read)."""
        self._answers.put(key, (stamp, answer))

    def __len__(self) -> int:
        return len(self._answers)
