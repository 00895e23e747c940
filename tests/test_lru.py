"""`app.lru.Lru`: the bounded memory behind the hot paths' in-process caches."""

from __future__ import annotations

import pytest

from app.lru import Lru


def test_past_capacity_the_least_recently_used_entry_goes() -> None:
    lru = Lru[str, int](3)
    for number, key in enumerate("abc"):
        lru.put(key, number)
    assert lru.get("a") == 0  # now the most recently used: "b" is the oldest
    lru.put("d", 3)
    assert len(lru) == 3
    assert "b" not in lru
    assert [key for key in "abcd" if key in lru] == ["a", "c", "d"]


def test_put_again_replaces_and_refreshes() -> None:
    lru = Lru[str, int](2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 10)
    lru.put("c", 3)
    assert lru.get("a") == 10
    assert "b" not in lru


def test_a_held_none_is_told_apart_from_a_missing_key_by_default() -> None:
    unseen = object()
    lru = Lru[str, int | None](2)
    lru.put("nothing", None)
    assert lru.get("nothing", unseen) is None
    assert lru.get("missing", unseen) is unseen
    assert lru.get("missing") is None


def test_discard_forgets() -> None:
    lru = Lru[str, int](2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.discard("a")
    lru.discard("never held")
    assert "a" not in lru and len(lru) == 1


def test_capacity_must_hold_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Lru[str, int](0)
