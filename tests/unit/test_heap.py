"""The worker's GC policy: no automatic full collections; survivors frozen on a clock."""

from __future__ import annotations

import gc


def test_full_collections_run_on_the_workers_clock_and_take_cycles_first() -> None:
    from exchange_app import heap

    assert gc.get_threshold()[2] == heap.FULL_COLLECTION_THRESHOLD

    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the cyclic collector frees it

    kept = [object() for _ in range(10)]
    gc.unfreeze()
    try:
        Node()
        assert heap.collect_and_freeze() >= 1  # the cycle was collected, not frozen
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
