"""Long-lived data out of the way of the cyclic garbage collector.

What start-up loads (coverage topics, DTR content, routes, and later the IG packages the
validator reads) lives as long as the process, about 150,000 objects before any package is
loaded. CPython's full (generation 2) collections walk every tracked object each time: about
90 ms here, once every few hundred requests under load, and every request waiting on the event
loop meanwhile (the p99 tail of the CRD bench). `gc.freeze()` moves everything alive now into a
permanent generation that collections skip; objects created later are collected as usual.

A request allocates a few thousand container objects (parsed JSON, cards, the AuditEvent), so
with CPython's default young-generation threshold (700) every CRD call ran several young
collections: about 60 us of its CPU. `YOUNG_GENERATION_THRESHOLD` lets the young generation
grow to 20,000 objects first (a few megabytes at most): about a third as many passes.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def freeze_long_lived() -> None:
    """Collect what start-up left behind, then exempt the survivors from future collections
    (and collect the young generation less often)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
