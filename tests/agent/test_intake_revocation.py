"""The intake's hand-over when Faust revokes its partitions: it stops reading, waits for the
batch in flight to be durable, and drops a batch fetched meanwhile (the next owner reads it).

The consumer, the matching and the pipeline are stand-ins: what is tested is the intake's
own loop and its ``on_partitions_revoked`` handler, in the order a rebalance runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from exchange_app import intake
from exchange_app.packing import Packed

TOPIC = intake.settings.orders_topic


class Consumer:
    """Hands out the batches it is given, one per ``getmany``, and records assignments."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[dict[TopicPartition, list[Any]]] = asyncio.Queue()
        self.assigned: list[set[int]] = []
        self.fetches = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned.append({tp.partition for tp in tps})

    async def seek_to_beginning(self, tp: TopicPartition) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        return await self.batches.get()

    def highwater(self, tp: TopicPartition) -> int:
        return 0


class Message:
    def __init__(self, offset: int) -> None:
        self.offset, self.timestamp, self.key, self.value = offset, 0, b"TCS", b"{}"


def batch(partition: int, *offsets: int) -> dict[TopicPartition, list[Any]]:
    return {TopicPartition(TOPIC, partition): [Message(offset) for offset in offsets]}


class Pipeline:
    """Transactions committed are durable only when the test says so."""

    def __init__(self) -> None:
        self.durable = asyncio.Event()
        self.drained = 0

    async def drain(self) -> None:
        await self.durable.wait()
        self.drained += 1


@pytest.fixture()
def parts(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Consumer, Pipeline, list[Any]]]:
    consumer, pipeline, matched = Consumer(), Pipeline(), []

    async def match_orders(fetched: Mapping[int, Sequence[Packed]]) -> None:
        assert intake.books_lock.locked()  # the intake holds the books while it matches
        matched.append({p: [r.offset for r in records] for p, records in fetched.items()})

    monkeypatch.setattr(intake, "_consumer", lambda: consumer)
    monkeypatch.setattr(intake, "pipeline", lambda: pipeline)
    monkeypatch.setattr(intake, "match_orders", match_orders)
    monkeypatch.setattr(intake.inputs_table, "stored_value", lambda *_: None)
    monkeypatch.setattr(intake, "_wanted", frozenset())
    monkeypatch.setattr(intake, "_generation", 0)
    yield consumer, pipeline, matched


async def eventually(condition: Any) -> None:
    """Yield to the loop until ``condition()`` holds (the intake runs meanwhile)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the intake never got there")


async def test_a_revocation_waits_for_the_batch_in_flight_and_drops_one_fetched_meanwhile(
    test_app: Any, parts: tuple[Consumer, Pipeline, list[Any]]
) -> None:
    consumer, pipeline, matched = parts
    intake._follow(frozenset({0, 2}))  # a rebalance gave this worker two partitions
    task = asyncio.ensure_future(intake.intake.__wrapped__())  # type: ignore[attr-defined]
    try:
        await eventually(lambda: consumer.assigned == [{0, 2}])
        consumer.batches.put_nowait(batch(0, 0, 1, 2))
        await eventually(lambda: matched == [{0: [0, 1, 2]}])
        await eventually(lambda: consumer.fetches == 2)  # the next fetch is under way

        revoked = asyncio.ensure_future(intake._revoked(None, signal=None))
        await eventually(lambda: intake._wanted == frozenset())
        consumer.batches.put_nowait(batch(2, 7, 8))  # arrives while partitions move
        for _ in range(100):
            await asyncio.sleep(0)
        assert not revoked.done(), "the group moved on before the batch in flight was durable"
        assert matched == [{0: [0, 1, 2]}]

        pipeline.durable.set()  # the batch's outputs and tables are durable now
        await asyncio.wait_for(revoked, 5)
        assert pipeline.drained == 1
        # the batch fetched meanwhile is the next owner's; this intake reads nothing now
        await eventually(lambda: consumer.assigned == [{0, 2}, set()])
        for _ in range(100):
            await asyncio.sleep(0)
        assert matched == [{0: [0, 1, 2]}]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
