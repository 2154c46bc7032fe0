"""The intake: the orders topic read with a plain consumer and matched right behind it.

::

    stock_exchange_orders[p] ──(aiokafka consumer, no group)──► match_orders ──► checkpoint
        a fetch per batch: no Faust event per order, no hop through another topic

A Faust agent pays a fixed cost per event (measured ~90 µs on the project's
machine, ten times a bare consumer), and every hop through a topic costs a
broker round trip and a fetch wait. So the orders of a fetch are matched at
once, in one batch per fetch, and their positions are kept with the state.

**Who reads what.** The intake of orders partition *p* runs on the worker
Faust gave matching partition *p* (its books), and starts only once that
table partition is restored (``on_rebalance_complete``). It resumes at the
position the matching state stored with its last checkpoint (the ``inputs``
table, ``agents/batches.py``), so what was matched is never matched twice
and nothing is skipped, whatever any consumer group committed.

**Fencing.** When Faust revokes partitions (``on_partitions_revoked``, which
it awaits before the group moves on) the intake stops reading and waits for
the batch in flight to finish its checkpoint; a batch fetched meanwhile is
dropped. The next owner restores the changelog and starts at the stored
position. A worker that stops answering without being told (killed, frozen)
is the one case Kafka's transactions would fence; the embedded broker has
none (DESIGN section 6), and re-sent outputs are identical and dropped by
consumers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from tables.declarations import inputs_table, matching_table

from .agents.batches import pipeline
from .agents.matching import books_lock, match_orders, order_position, state
from .application import app
from .connection import client_options
from .metrics import metrics
from .packing import Packed

__all__ = ["intake"]

log = logging.getLogger(__name__)
settings = app.settings

#: orders partitions this worker's intake reads, and a count of their changes
_wanted: frozenset[int] = frozenset()
_generation = 0
#: Seconds between a failed batch and reading it again.
RETRY_SECONDS = 1.0


def _follow(partitions: frozenset[int]) -> None:
    global _wanted, _generation
    _wanted, _generation = partitions, _generation + 1


@app.on_partitions_revoked.connect
async def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Stop reading; return once the batches matched are durable (the group waits)."""
    _follow(frozenset())
    async with books_lock:
        await pipeline().drain()


@app.on_rebalance_complete.connect
async def _recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Read the orders partitions of the books this worker now owns, restored."""
    changelog = matching_table.changelog_topic.get_topic_name()
    actives = app.assignor.assigned_actives()
    _follow(frozenset(tp.partition for tp in actives if tp.topic == changelog))


def _consumer() -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_wait_ms or 500,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_options(settings),
    )


async def _start_reading(consumer: AIOKafkaConsumer, partitions: frozenset[int]) -> None:
    """Assign ``partitions`` and seek each to the position stored with the books."""
    tps = [TopicPartition(settings.orders_topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    starts = {}
    for tp in tps:
        stored = inputs_table.stored_value(tp.partition, order_position(tp.partition))
        if stored is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, stored)
        starts[tp.partition] = stored or 0
    log.info("intake: reading %s from %s", settings.orders_topic, starts)


@app.task
async def intake() -> None:
    """Match the orders topic, a fetch at a time, until the worker stops."""
    consumer = _consumer()
    while True:
        try:
            await consumer.start()
            break
        except KafkaError as exc:
            log.info("intake: waiting for the broker (%r)", exc)
            await asyncio.sleep(1.0)
    generation = -1
    try:
        while True:
            if generation != _generation:
                generation, reading = _generation, _wanted
                await _start_reading(consumer, reading)
            if not reading:
                await asyncio.sleep(0.05)
                continue
            fetched = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
            if not fetched:
                continue
            orders = {
                tp.partition: [
                    Packed(tp.partition, m.offset, m.timestamp, m.key, m.value) for m in messages
                ]
                for tp, messages in fetched.items()
            }
            async with books_lock:
                if generation != _generation:
                    continue  # revoked while fetching: the next owner reads them
                try:
                    await match_orders(orders)
                except Exception:
                    # Orders that fail alone go to the DLQ inside ``match_orders``: this
                    # is the batch's own machinery. Keep what was committed, read the
                    # books and the positions again from it, and take the batch again.
                    log.exception("intake: a batch failed; reading it again")
                    await pipeline().drain()
                    state.invalidate()
                    generation = -1
            if generation == -1:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for tp in fetched:
                metrics.orders_highwater[tp.partition] = consumer.highwater(tp)
    finally:
        await consumer.stop()
