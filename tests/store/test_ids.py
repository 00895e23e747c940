"""New row ids (`app.store.ids`): RFC 9562 version 7 UUIDs, time-ordered, unique."""

from __future__ import annotations

import os
import time
import uuid

from app.store.ids import new_row_id, random_uuid, uuid7


def test_uuid7_has_version_7_the_rfc_variant_and_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones_and_never_repeat() -> None:
    first = new_row_id()
    time.sleep(0.002)
    second = new_row_id()
    assert first < second  # the canonical text sorts as the time prefix does
    many = {new_row_id() for _ in range(20_000)}
    assert len(many) == 20_000
    assert all(str(uuid.UUID(value)) == value for value in list(many)[:100])


def test_random_uuids_are_version_4_in_canonical_text_and_never_repeat() -> None:
    many = {random_uuid() for _ in range(20_000)}
    assert len(many) == 20_000
    for value in list(many)[:200]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)


def test_row_ids_are_version_7_in_canonical_text() -> None:
    parsed = uuid.UUID(new_row_id())
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)


def test_a_forked_worker_draws_other_random_uuids_than_its_parent() -> None:
    """Workers forked from one process must not repeat each other's card UUIDs: `random` is
    reseeded in the child."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next UUID and leave at once
        os.write(write_end, random_uuid().encode())
        os._exit(0)
    os.close(write_end)
    parents = random_uuid()
    childs = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    assert uuid.UUID(childs).version == 4 and childs != parents
