"""The garbage collector's settings for a long-running server process.

CPython frees almost everything by reference counting; its cyclic collector only
finds cycles, yet by default it runs a young collection every 700 allocations and,
every so often, a full one that walks every live object. A process holding thousands
of open streams has millions of live objects (each connection's protocol, parser,
task, scope and buffers), so a full collection stops the event loop for hundreds of
milliseconds and finds nothing: measured on the gateway with 5,000 `/v1/events`
streams (bench/events_fanout.py), full collections of 200-900 ms, each collecting 0
objects, were the whole tail of the fan-out latency, and the young collections
triggered by each burst of deliveries cost a third of its CPU.

`settle()`, called once the process has built everything it keeps for its lifetime
(the app, the stubs, the imported modules), moves those objects out of the
collector's sight (`gc.freeze`) and makes collections rarer. Cycles are still
collected, just in larger, rarer batches."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)
MIDDLE_THRESHOLD = 20  # young collections per middle one (default 10)
OLD_THRESHOLD = 100  # middle collections per full one (default 10)


def settle() -> None:
    """Freeze what exists now and space the collections out (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
