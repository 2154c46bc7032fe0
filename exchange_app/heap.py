"""Short full collections of the cyclic GC: survivors are frozen out of them.

CPython's full (generation 2) collection walks every tracked object. A worker
holds hundreds of thousands of them that live for good (modules, Faust and
pydantic internals, books, analytics caches), so each full collection stopped
the event loop for 10 to 50 ms, every few seconds under load, collecting next
to nothing: the tail of the order-to-trade latency. Every
:data:`FREEZE_SECONDS` the worker collects once in full and freezes what
survived (``gc.freeze``): later collections walk only what was made since.
Frozen objects are still freed by reference counting when they are dropped;
only a reference cycle among them would outlive its use, and the collection
just before each freeze has already taken every cycle that was garbage then.
The books' load freezes what it read as well (``tables/matching.py``).
"""

from __future__ import annotations

import gc
import logging
import time

from .application import app

__all__ = ["FREEZE_SECONDS", "FULL_COLLECTION_THRESHOLD", "collect_and_freeze", "freeze_survivors"]

log = logging.getLogger(__name__)

#: Seconds between two full collections followed by a freeze.
FREEZE_SECONDS = 30.0
#: Generation 1 collections before CPython would start a full one by itself:
#: never, in practice; :func:`freeze_survivors` makes them on its own clock.
FULL_COLLECTION_THRESHOLD = 1_000_000

_young, _middle, _ = gc.get_threshold()
gc.set_threshold(_young, _middle, FULL_COLLECTION_THRESHOLD)


def collect_and_freeze() -> int:
    """One full collection, then freeze the survivors; how many objects were collected."""
    started = time.perf_counter()
    collected = gc.collect()
    gc.freeze()
    log.debug(
        "heap: %s unreachable objects collected, %s frozen in %.1f ms",
        collected,
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
    return collected


@app.timer(interval=FREEZE_SECONDS)
async def freeze_survivors() -> None:
    collect_and_freeze()
