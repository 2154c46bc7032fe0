"""The recent order ids of a book: a bounded horizon, persisted chunk by chunk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine.recent import RecentIds


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 300))
def test_the_last_horizon_ids_are_known_and_memory_is_bounded(
    horizon: int, chunk: int, count: int
) -> None:
    recent = RecentIds(horizon, chunk)
    for order_id in range(count):
        recent.add(order_id)
    assert all(i in recent for i in range(max(0, count - horizon), count))
    assert len(recent) <= min(count, horizon + 2 * chunk - 1)
    assert (count - 1 in recent) == (count > 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.lists(st.integers(1, 50), max_size=8))
def test_the_persisted_changes_restore_the_same_ids(
    horizon: int, chunk: int, batches: list[int]
) -> None:
    """What a sequence of batches persisted (chunk -> ids, empty: deleted) restores the ids."""
    recent, table = RecentIds(horizon, chunk), {}
    next_id = 0
    for size in batches:
        for _ in range(size):
            recent.add(next_id)
            next_id += 1
        for number, ids in recent.take_changes():
            if ids:
                table[number] = ids
            else:
                table.pop(number, None)
    restored = RecentIds(horizon, chunk)
    restored.restore(table.items())
    assert {i for i in range(next_id) if i in restored} == {
        i for i in range(next_id) if i in recent
    }
    assert len(table) <= recent.limit
    restored.add(next_id)  # goes on in the chunk the original would have used
    recent.add(next_id)
    assert restored.take_changes() == recent.take_changes()


def test_a_chunk_is_forgotten_whole() -> None:
    recent = RecentIds(horizon=4, chunk=2)
    dropped = [recent.add(i) for i in range(8)]
    assert dropped == [None] * 6 + [1, None]  # chunk 4 began: chunks 2 and 3 cover 4 ids
    assert [i in recent for i in range(8)] == [False, False] + [True] * 6
    assert recent.take_changes() == [(n, recent.chunk_ids(n)) for n in (1, 2, 3, 4)]
    assert recent.chunk_ids(1) == []


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        RecentIds(0)
    with pytest.raises(ValueError):
        RecentIds(10, 0)


def test_a_shorter_horizon_forgets_the_older_chunks_at_the_next_seal() -> None:
    long = RecentIds(horizon=8, chunk=2)
    for i in range(8):
        long.add(i)
    short = RecentIds(horizon=2, chunk=2)
    short.restore((n, long.chunk_ids(n)) for n in range(1, 5))
    assert [i in short for i in range(8)] == [False] * 4 + [True] * 4
    assert short.take_changes() == [(1, []), (2, [])]  # tombstones for what it no longer keeps
