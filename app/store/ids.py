"""Ids for new rows: UUIDv7 (RFC 9562 §5.7), time-ordered.

A random (v4) id puts each new row at a random place in its primary-key index, so every insert
dirties its own index pages and every COMMIT writes them all to the WAL. A v7 id starts with
the Unix time in milliseconds: rows created together land together at the right edge of the
index, and a group commit (`app.store.sqlite_writer`) writes those pages once. The other 74
bits are random, so ids stay unguessable; the time they reveal is the creation time that
`meta.lastUpdated` of version 1 shows anyway.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62


def uuid7() -> uuid.UUID:
    """A version 7 UUID for now."""
    milliseconds = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10))  # 80 bits, one system call; 74 are used
    random_a = random >> 68  # 12 bits
    random_b = random & (2**62 - 1)
    value = (milliseconds & (2**48 - 1)) << 80 | _VERSION_7 | random_a << 64 | _VARIANT_RFC
    return uuid.UUID(int=value | random_b)


def new_row_id() -> str:
    """A new resource or record id: a v7 UUID in its canonical text form."""
    return str(uuid7())
