"""The intake: orders as producers sent them, packed into one message per fetched batch.

::

    stock_exchange_orders[p] ──(plain aiokafka consumer, group <app>-intake)──►
        <app>-orders-intake[p]   one message per fetch and partition (``packing.py``)
        ──► [match_orders]       a Faust event per batch, not per order

A Faust agent pays a fixed cost per event (measured ~90 µs on the project's
machine, ten times a bare consumer), which capped matching below what the
engine and the broker carry. The intake reads with a plain consumer, packs
each partition's records with their source partition and offset, delivers
the packed message, and only then commits its offsets. After a crash it may
pack some orders again; the matching state drops them by their source offset,
so the effect is once (``tables/matching.py``). Every worker runs an intake;
its group spreads the orders partitions over the workers.
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


def _consumer() -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": f"{settings.app_id}-intake",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_wait_ms or 500,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }
    if settings.embedded_broker:  # as in application.faust_options
        options |= {
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            "rebalance_timeout_ms": 6000,
        }
    return AIOKafkaConsumer(settings.orders_topic, **options)


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
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=settings.batch_size)
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
            for tp, messages in fetched.items():
                metrics.intake[tp.partition] = (
                    consumer.highwater(TopicPartition(tp.topic, tp.partition)),
                    messages[-1].offset,
                )
    finally:
        await consumer.stop()
