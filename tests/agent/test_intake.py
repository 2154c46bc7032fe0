"""The intake task over a stand-in consumer: a batch whose machinery fails is read again
from the committed position and matched once."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition

from exchange_app.routing import home_partition
from tests.factories import assert_one_cross

INSTRUMENT = next(f"I{i}" for i in range(100) if home_partition(f"I{i}", 4) == 0)


def order(id: int, side: str) -> bytes:
    return json.dumps(
        {
            "id": id,
            "instrument": INSTRUMENT,
            "trxn_type": side,
            "quantity": 5,
            "price": 15,
            "order_timestamp": "2023/03/12, 23:48:37",
        }
    ).encode()


class Consumer:
    """What the intake uses of an aiokafka consumer: partition 0 of the orders topic."""

    def __init__(self, topic: str, values: list[bytes]) -> None:
        self.tp = TopicPartition(topic, 0)
        self.values = values
        self.position = 0
        self.seeks: list[int] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assign(self, tps: list[TopicPartition]) -> None:
        assert tps == [self.tp]

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seek(tp, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.position = offset

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if self.position >= len(self.values):
            await asyncio.sleep(0.01)
            return {}
        batch = self.values[self.position : self.position + max_records]
        records = [
            SimpleNamespace(offset=self.position + i, timestamp=0, key=None, value=value)
            for i, value in enumerate(batch)
        ]
        self.position += len(batch)
        return {self.tp: records}

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.values)


async def test_a_batch_whose_commit_fails_is_read_again_and_matched_once(
    test_app, sent, monkeypatch
) -> None:
    """The books took both orders in memory before the commit failed: the intake reads the
    books and the position again from what was committed, and matches the batch once."""
    from exchange_app import intake
    from exchange_app.agents import matching

    consumer = Consumer(test_app.settings.orders_topic, [order(1, "BUY"), order(2, "SELL")])
    monkeypatch.setattr(intake, "_consumer", lambda: consumer)
    monkeypatch.setattr(intake, "RETRY_SECONDS", 0.0)
    finished, calls = matching._finished, []

    def fails_once(tx: Any) -> Any:
        calls.append(tx)
        if len(calls) == 1:
            raise RuntimeError("no producer")
        return finished(tx)

    monkeypatch.setattr(matching, "_finished", fails_once)
    intake._follow(frozenset({0}))
    task = asyncio.create_task(intake.intake.__wrapped__())  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(10):
            while len(sent["events"]) < 3:
                await asyncio.sleep(0.01)
            await matching.pipeline().drain()
    finally:
        task.cancel()
        intake._follow(frozenset())
    assert consumer.seeks == [0, 0]  # read from the start, then again after the failure
    assert_one_cross(sent)
