"""Ids for new rows: UUIDv7 (RFC 9562 §5.7), time-ordered; and random UUIDs (v4) as text.

A random (v4) id puts each new row at a random place in its primary-key index, so every insert
dirties its own index pages and every COMMIT writes them all to the WAL. A v7 id starts with
the Unix time in milliseconds: rows created together land together at the right edge of the
index, and a group commit (`app.store.sqlite_writer`) writes those pages once. The other 74
bits are random, so ids stay unguessable; the time they reveal is the creation time that
`meta.lastUpdated` of version 1 shows anyway.

Both are formatted straight from their 128-bit value (`uuid.UUID` objects cost more to build
than the text they print, and CDS Hooks cards need several random UUIDs per call).
"""

from __future__ import annotations

import os
import random
import time
import uuid

_VERSION_4 = 0x4 << 76
_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_VERSION_AND_VARIANT = 0xF << 76 | 0x3 << 62
_ALL_BITS = 2**128 - 1


def _text(value: int) -> str:
    """The canonical text of a UUID (8-4-4-4-12 lowercase hex)."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_uuid() -> str:
    """A random (version 4) UUID as text, for ids that must be unique but need not be secret
    (CDS Hooks card and suggestion `uuid`s): drawn from `random`, which is seeded from the
    operating system and reseeded in every forked process, so no system call per id."""
    value = random.getrandbits(128) & (_ALL_BITS ^ _VERSION_AND_VARIANT)
    return _text(value | _VERSION_4 | _VARIANT_RFC)


def _uuid7_value() -> int:
    milliseconds = time.time_ns() // 1_000_000
    bits = int.from_bytes(os.urandom(10))  # 80 bits, one system call; 74 are used
    random_a = bits >> 68  # 12 bits
    random_b = bits & (2**62 - 1)
    value = (milliseconds & (2**48 - 1)) << 80 | _VERSION_7 | random_a << 64 | _VARIANT_RFC
    return value | random_b


def uuid7() -> uuid.UUID:
    """A version 7 UUID for now."""
    return uuid.UUID(int=_uuid7_value())


def new_row_id() -> str:
    """A new resource or record id: a v7 UUID in its canonical text form."""
    return _text(_uuid7_value())
