"""Input positions: each internal input offset is processed once, in order, with no gap."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.agents import batches
from exchange_app.agents.batches import InputPositions
from tables.transaction import Transaction

TOPIC = "ex-orders-intake"


class Table:
    """What the positions need of a table: values per partition."""

    def __init__(self, stored: dict[tuple[int, str], int] | None = None) -> None:
        self.stored = dict(stored or {})

    def stored_value(self, partition: int, key: str) -> Any:
        return self.stored.get((partition, key))


def event(offset: int, partition: int = 0) -> Any:
    message = SimpleNamespace(
        topic=TOPIC, partition=partition, offset=offset, tp=TP(TOPIC, partition)
    )
    return SimpleNamespace(message=message)


def offsets(events: list[Any]) -> list[int]:
    return [e.message.offset for e in events]


def test_a_partition_never_processed_starts_at_its_first_offset() -> None:
    positions = InputPositions(Table())
    admitted, replayed, reread = positions.admit([event(0), event(1), event(2, partition=3)])
    assert (offsets(admitted), replayed, reread) == ([0, 1], 0, [TP(TOPIC, 3)])


def test_replays_below_the_stored_position_are_dropped() -> None:
    positions = InputPositions(Table({(0, f"{TOPIC}:0"): 5}))
    admitted, replayed, reread = positions.admit([event(3), event(4), event(5), event(6)])
    assert (offsets(admitted), replayed, reread) == ([5, 6], 2, [])


def test_a_gap_sends_the_partition_back_and_nothing_after_it_is_taken() -> None:
    positions = InputPositions(Table({(0, f"{TOPIC}:0"): 5}))
    admitted, _, reread = positions.admit([event(6), event(7), event(0, partition=1)])
    # partition 1 was never processed; partition 0 misses offset 5
    assert offsets(admitted) == [0] and reread == [TP(TOPIC, 0)]
    assert positions.next[TP(TOPIC, 0)] == 5
    # Messages read before the seek took effect are dropped without a new seek ...
    assert positions.admit([event(8)]) == ([], 0, [])
    # ... and the message that was skipped, read again, goes on from there.
    admitted, _, reread = positions.admit([event(5), event(6)])
    assert (offsets(admitted), reread) == ([5, 6], [])


def test_a_seek_without_effect_is_repeated_then_the_gap_is_given_up(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(batches.time, "monotonic", lambda: now[0])
    positions = InputPositions(Table({(0, f"{TOPIC}:0"): 5}))
    for _ in range(batches.SEEK_ATTEMPTS):
        assert positions.admit([event(9)])[2] == [TP(TOPIC, 0)]
        now[0] += batches.RESEEK_SECONDS
    # offsets 5..8 are gone (retention): after the last attempt, 9 is taken
    admitted, _, reread = positions.admit([event(9), event(10)])
    assert (offsets(admitted), reread) == ([9, 10], [])


def test_positions_are_written_with_the_batch_and_read_after_a_move() -> None:
    table = Table()
    positions = InputPositions(table)
    admitted, _, _ = positions.admit([event(0), event(1), event(0, partition=2)])
    tx = Transaction()
    positions.record(admitted, tx)
    written = {(partition, key): value for _, partition, changes in tx.tables()
               for key, value in changes.items()}  # fmt: skip
    assert written == {(0, f"{TOPIC}:0"): 2, (2, f"{TOPIC}:2"): 1}
    table.stored = {**written, (0, f"{TOPIC}:0"): 40}  # another worker went on meanwhile
    positions.invalidate()
    assert positions.admit([event(2)]) == ([], 1, [])


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=60))
def test_whatever_order_messages_come_in_each_offset_is_taken_once_and_in_order(
    arrivals: list[int],
) -> None:
    """Redeliveries, reorderings and jumps, as a rebalance makes them: what is admitted
    is always 0, 1, 2, ... with no offset twice and none left out."""
    positions = InputPositions(Table())
    taken: list[int] = []
    for offset in arrivals:
        admitted, _, _ = positions.admit([event(offset)])
        positions.confirm(admitted)  # committed
        taken += offsets(admitted)
    assert taken == list(range(len(taken)))


def test_a_batch_that_was_never_committed_is_taken_again() -> None:
    """An agent that fails mid-batch never confirms it: after the restart, what its new
    stream reads past the batch is a gap, and the batch read again is admitted again."""
    positions = InputPositions(Table({(0, f"{TOPIC}:0"): 5}))
    assert offsets(positions.admit([event(5), event(6)])[0]) == [5, 6]
    # the agent failed before its checkpoint; the restarted stream reads on from 7
    assert positions.admit([event(7)]) == ([], 0, [TP(TOPIC, 0)])
    admitted, replayed, reread = positions.admit([event(5), event(6), event(7)])
    assert (offsets(admitted), replayed, reread) == ([5, 6, 7], 0, [])
    positions.confirm(admitted)
    admitted, replayed, _ = positions.admit([event(6), event(7), event(8)])
    assert (offsets(admitted), replayed) == ([8], 2)


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=30), st.booleans()), max_size=60))
def test_only_committed_batches_move_on_and_none_is_stepped_over(
    arrivals: list[tuple[int, bool]],
) -> None:
    """Batches of one message that fail (no commit) or commit, in any order: what is
    committed is 0, 1, 2, ... with no offset twice and none left out."""
    positions = InputPositions(Table())
    committed: list[int] = []
    for offset, commits in arrivals:
        admitted, _, _ = positions.admit([event(offset)])
        if commits:
            positions.confirm(admitted)
            committed += offsets(admitted)
    assert committed == list(range(len(committed)))


@pytest.mark.parametrize("stored", [0, 3])
def test_a_batch_of_only_replays_admits_nothing(stored: int) -> None:
    positions = InputPositions(Table({(0, f"{TOPIC}:0"): stored + 3}))
    replays = [event(stored), event(stored + 1), event(stored + 2)]
    assert positions.admit(replays) == ([], 3, [])
