"""Following a compacted topic: a failure of the broker does not end the following."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import TopicPartition

from exchange_app.broker import compacted

TP = TopicPartition("exchange-listings", 0)


@dataclass
class Message:
    key: bytes
    value: bytes | None
    offset: int


class Consumer:
    """The topic's records in one batch, then nothing; ``fail`` raises on the first fetch."""

    def __init__(self, records: list[tuple[bytes, bytes | None]], fail: bool) -> None:
        self.messages = [Message(k, v, n) for n, (k, v) in enumerate(records)]
        self.fail = fail
        self.read = False

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0) -> dict[Any, Any]:
        if self.fail:
            raise ConnectionError("the broker went away")
        if self.read:
            await asyncio.sleep(0.01)
            return {}
        self.read = True
        return {TP: self.messages}

    async def position(self, tp: TopicPartition) -> int:
        return len(self.messages) if self.read else 0

    async def stop(self) -> None:
        pass


async def test_a_follower_whose_broker_fails_reads_the_topic_again(monkeypatch) -> None:
    records = [(b"TCS", b"1"), (b"INFY", b"2"), (b"TCS", None)]
    consumers = [Consumer(records, fail=True), Consumer(records, fail=False)]

    async def start(bootstrap: list[str], tp: TopicPartition, wait: int) -> tuple[Any, int]:
        return consumers.pop(0), len(records)

    async def ensure(bootstrap: list[str], topic: str) -> None:
        pass

    monkeypatch.setattr(compacted, "_start", start)
    monkeypatch.setattr(compacted, "ensure_compacted", ensure)
    monkeypatch.setattr(compacted, "RETRY_SECONDS", 0.0)
    state: dict[str, bytes] = {}
    ready = asyncio.Event()

    def apply(key: str, value: bytes | None) -> None:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value

    follower = asyncio.create_task(
        compacted.follow_compacted(["broker"], TP.topic, apply, ready.set, 10)
    )
    try:
        async with asyncio.timeout(5):
            await ready.wait()
            while state != {"INFY": b"2"}:
                await asyncio.sleep(0.01)
    finally:
        follower.cancel()
    assert not consumers  # started again after the failure
