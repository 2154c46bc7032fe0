"""Plain aiokafka reads and writes of whole topics, for the end-to-end benchmark.

Everything here works on explicit partitions and offsets, without consumer
groups: a group join on the embedded broker takes seconds (DESIGN section 6),
which would swamp what the benchmark measures. End offsets come from a fetch's
high watermark (``broker.offsets``), since Tansu under-reports them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from ..broker.offsets import true_end_offsets
from ..routing import home_partition
from ..wire import dumps

__all__ = ["Record", "TopicReader", "copy_topic", "keyed", "new_producer", "offer", "produce"]

#: one message to send: partition, key, value
Record = tuple[int, bytes, bytes]


def keyed(orders: Iterable[dict[str, Any]], partitions: int) -> Iterator[Record]:
    """Orders as JSON, keyed by instrument, on the instrument's home partition."""
    for order in orders:
        instrument = order["instrument"]
        yield home_partition(instrument, partitions), instrument.encode(), dumps(order)


def new_producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
    """A producer as the exchange's (acks from all replicas, no idempotence on Tansu)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", **options
    )


async def produce(
    bootstrap: str, topic: str, records: Iterable[Record], *, linger_ms: int = 20
) -> int:
    """Send ``records`` in large batches, without awaiting each; return how many."""
    producer = new_producer(bootstrap, linger_ms=linger_ms, max_batch_size=1 << 20)
    await producer.start()
    count = 0
    try:
        for partition, key, value in records:
            await producer.send(topic, value, key=key, partition=partition)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


class TopicReader:
    """A consumer of every partition of one topic, from its start or its current end."""

    def __init__(self, bootstrap: str, topic: str, *, fetch_wait_ms: int = 20) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms
        )
        self.positions: dict[TopicPartition, int] = {}

    async def start(self, *, from_end: bool = False, timeout: float = 30.0) -> TopicReader:
        await self.consumer.start()
        deadline = time.monotonic() + timeout
        partitions = self.consumer.partitions_for_topic(self.topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} does not exist after {timeout:.0f} s")
            await asyncio.sleep(0.2)
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        self.positions = dict.fromkeys(tps, 0)
        if from_end:
            self.positions = await self.end_offsets()
        for tp, offset in self.positions.items():
            self.consumer.seek(tp, offset)
        return self

    async def stop(self) -> None:
        await self.consumer.stop()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """Where every partition ends now (the true end, not Tansu's ListOffsets)."""
        tps = list(self.positions)
        reported = await self.consumer.end_offsets(tps)
        return dict(await true_end_offsets(self.consumer._client, reported))  # type: ignore[arg-type]

    async def written(self) -> int:
        """Records in the topic now, over all partitions (a cheap probe: nothing is read)."""
        return sum((await self.end_offsets()).values())

    async def caught_up(self) -> bool:
        """Whether everything written so far has been read."""
        ends = await self.end_offsets()
        return all(self.positions[tp] >= end for tp, end in ends.items())

    async def read(self, timeout_ms: int = 200) -> list[ConsumerRecord[bytes, bytes]]:
        """The next records of any partition (none when nothing arrives within the wait)."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        records = []
        for tp, messages in batch.items():
            if messages:
                self.positions[tp] = messages[-1].offset + 1
                records += messages
        return records


async def copy_topic(
    bootstrap: str, source: str, target: str, count: int, *, fetch_wait_ms: int, timeout: float
) -> float:
    """Copy ``count`` records from ``source`` to ``target``; the seconds from the first
    record received to the last delivered."""
    reader = TopicReader(bootstrap, source, fetch_wait_ms=fetch_wait_ms)
    producer = new_producer(bootstrap)
    await reader.start()
    await producer.start()
    try:
        deadline = time.monotonic() + timeout
        first: float | None = None
        pending: list[asyncio.Future[Any]] = []
        copied = 0
        while copied < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"copied {copied:,} of {count:,} within {timeout:.0f} s")
            for record in await reader.read():
                if first is None:
                    first = time.perf_counter()
                pending.append(
                    await producer.send(
                        target, record.value, key=record.key, partition=record.partition
                    )
                )
                copied += 1
        await asyncio.gather(*pending)
        return time.perf_counter() - (first or 0.0)
    finally:
        await producer.stop()
        await reader.stop()


async def offer(
    bootstrap: str,
    topic: str,
    orders: Iterator[dict[str, Any]],
    partitions: int,
    *,
    rate: float,
    seconds: float,
    tick: float = 0.01,
) -> tuple[dict[int, float], float]:
    """Send orders at ``rate`` a second for ``seconds``, a few every ``tick``.

    Returns each order's send time (``time.time()``) by id, and the seconds the
    sending took (longer than ``seconds`` if the rate could not be held).
    """
    producer = new_producer(bootstrap, linger_ms=1)
    await producer.start()
    sent_at: dict[int, float] = {}
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        ticks = 0
        while len(sent_at) < total:
            ticks += 1
            due = min(total, int(ticks * tick * rate))
            while len(sent_at) < due:
                order = next(orders)
                partition, key, value = next(keyed([order], partitions))
                sent_at[order["id"]] = time.time()
                await producer.send(topic, value, key=key, partition=partition)
            await asyncio.sleep(max(0.0, started + ticks * tick - loop.time()))
        took = loop.time() - started
        await producer.flush()
        return sent_at, took
    finally:
        await producer.stop()
