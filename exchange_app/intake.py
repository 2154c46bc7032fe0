"""The intake: orders as producers sent them, packed into one message per fetched batch.

::

    stock_exchange_orders[p] ──(plain aiokafka consumer, offsets of group <app>-intake)──►
        <app>-orders-intake[p]   one message per fetch and partition (``packing.py``)
        ──► [match_orders]       a Faust event per batch, not per order

A Faust agent pays a fixed cost per event (measured ~90 µs on the project's
machine, ten times a bare consumer), which capped matching below what the
engine and the broker carry. The intake reads with a plain consumer, packs
each partition's records with their source partition and offset, delivers
the packed message, and only then commits its offsets. After a crash it may
pack some orders again; the matching state drops them by their source offset,
so the effect is once (``tables/matching.py``).

The intake of orders partition *p* runs on the worker Faust gave intake
partition *p*: it follows the worker's assignment instead of joining a group
of its own, so it starts as soon as the worker has partitions (a second group
would wait for its own rebalance after every restart). It commits its offsets
under the group ``<app>-intake`` without membership; during a rebalance two
workers may pack the same orders for a moment, which the source offsets undo.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import TopicPartition

from .application import app
from .checkpoint import KafkaSink, Record, deliver
from .metrics import metrics
from .packing import Packed, pack

__all__ = ["intake", "packed_messages"]

log = logging.getLogger(__name__)
settings = app.settings

#: Bytes of orders packed into one intake message at most (a record larger than
#: this travels alone).
PACK_BYTES = 256 * 1024


def packed_messages(topic: str, partition: int, messages: list[Any]) -> list[Record]:
    """Intake records for ``messages`` of one orders partition, in order."""
    records, chunk, size = [], list[Packed](), 0
    for message in messages:
        if chunk and size + len(message.value or b"") > PACK_BYTES:
            records.append(Record(topic, partition, None, pack(chunk)))
            chunk, size = [], 0
        chunk.append(
            Packed(partition, message.offset, message.timestamp, message.key, message.value)
        )
        size += len(message.value or b"")
    if chunk:
        records.append(Record(topic, partition, None, pack(chunk)))
    return records


#: orders partitions this worker's intake reads: those of its intake partitions
_wanted: frozenset[int] = frozenset()


@app.on_partitions_assigned.connect
def _follow_assignment(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    global _wanted
    assigned = args[0] if args else kwargs.get("assigned", ())
    _wanted = frozenset(tp.partition for tp in assigned if tp.topic == settings.intake_topic)


def _consumer() -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": f"{settings.app_id}-intake",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_wait_ms or 500,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }
    return AIOKafkaConsumer(**options)


@app.task
async def intake() -> None:
    """Pack the orders topic into the intake topic until the worker stops."""
    consumer = _consumer()
    while True:
        try:
            await consumer.start()
            break
        except KafkaError as exc:
            log.info("intake: waiting for the broker (%r)", exc)
            await asyncio.sleep(1.0)
    sink = KafkaSink(app.producer._ensure_producer())  # type: ignore[attr-defined]
    reading: frozenset[int] = frozenset()
    try:
        while True:
            if reading != _wanted:
                reading = _wanted
                consumer.assign([TopicPartition(settings.orders_topic, p) for p in sorted(reading)])
                log.info("intake: reading %s partitions %s", settings.orders_topic, sorted(reading))
            if not reading:
                await asyncio.sleep(0.1)
                continue
            fetched = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
            if not fetched:
                continue
            records = []
            for tp, messages in fetched.items():
                records += packed_messages(settings.intake_topic, tp.partition, messages)
            await deliver(sink, records)
            try:
                await consumer.commit(
                    {tp: messages[-1].offset + 1 for tp, messages in fetched.items()}
                )
            except CommitFailedError as exc:  # a rebalance: the next owner packs them again
                log.info("intake: offsets not committed (%r); duplicates will be dropped", exc)
            for tp in fetched:
                metrics.orders_highwater[tp.partition] = consumer.highwater(tp)
    finally:
        await consumer.stop()
