"""Long-lived data out of the way of the cyclic garbage collector.

What start-up loads (coverage topics, DTR content, routes, and later the IG packages the
validator reads) lives as long as the process, about 150,000 objects before any package is
loaded. CPython's full (generation 2) collections walk every tracked object each time: about
90 ms here, once every few hundred requests under load, and every request waiting on the event
loop meanwhile (the p99 tail of the CRD bench). `gc.freeze()` moves everything alive now into a
permanent generation that collections skip; objects created later are collected as usual.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what start-up left behind, then exempt the survivors from future collections."""
    gc.collect()
    gc.freeze()
