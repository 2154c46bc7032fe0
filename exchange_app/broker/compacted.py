"""A compacted topic of small records that every worker reads whole and then follows.

::

    key ─► latest value (a tombstone removes the key)     1 partition, compacted
        ▲ written by a command line tool                  ▼ read to its end, then followed

The API keys (``keystore.py``) and the listings (``listings.py``) are kept so: a
change made on any machine reaches every worker within a fetch. A record the
reader cannot apply is skipped with a log line: one bad record must not stop a
worker from following the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from ..connection import client_options
from .admin import ensure_topics
from .offsets import true_end_offsets

__all__ = ["Apply", "ensure_compacted", "follow_compacted", "read_compacted", "write_compacted"]

log = logging.getLogger(__name__)

#: Seconds before a follower that failed reads its topic again.
RETRY_SECONDS = 1.0

#: Takes one record (key, value; None: a tombstone); may raise on a bad one.
Apply = Callable[[str, bytes | None], None]


async def ensure_compacted(bootstrap: list[str], topic: str) -> None:
    await ensure_topics(bootstrap, [topic], partitions=1, configs={"cleanup.policy": "compact"})


async def _apply(consumer: AIOKafkaConsumer, tp: TopicPartition, apply: Apply) -> int:
    """Apply the next records; the position reached."""
    batch = await consumer.getmany(tp, timeout_ms=1000)
    for messages in batch.values():
        for message in messages:
            try:
                apply((message.key or b"").decode(), message.value)
            except Exception as exc:  # a bad record is skipped, the next ones still apply
                log.error(
                    "%s: skipping the record at offset %s: %s: %s",
                    tp.topic,
                    message.offset,
                    type(exc).__name__,
                    exc,
                )
    return await consumer.position(tp)


async def _start(
    bootstrap: list[str], tp: TopicPartition, fetch_wait_ms: int
) -> tuple[AIOKafkaConsumer, int]:
    """A consumer of ``tp`` from its start, and where ``tp`` ends now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_wait_ms,
        **client_options(),
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        ends = await true_end_offsets(consumer._client, await consumer.end_offsets([tp]))
    except BaseException:
        await consumer.stop()
        raise
    return consumer, ends[tp]


async def read_compacted(
    bootstrap: list[str], topic: str, apply: Apply, fetch_wait_ms: int = 100
) -> None:
    """Apply every record of ``topic`` up to its end now."""
    await ensure_compacted(bootstrap, topic)
    tp = TopicPartition(topic, 0)
    consumer, end = await _start(bootstrap, tp, fetch_wait_ms)
    try:
        while await consumer.position(tp) < end:
            await _apply(consumer, tp, apply)
    finally:
        await consumer.stop()


async def follow_compacted(
    bootstrap: list[str],
    topic: str,
    apply: Apply,
    caught_up: Callable[[], None],
    fetch_wait_ms: int,
) -> None:
    """Apply ``topic``'s records until cancelled; call ``caught_up`` once read to its end.

    A failure of the broker or of the connection does not end the following: it
    starts again from the topic's start after :data:`RETRY_SECONDS` (applying a
    record again changes nothing), so what waits for ``caught_up`` is not held for
    good, and changes made later still arrive.
    """
    told = False
    while True:
        try:
            await ensure_compacted(bootstrap, topic)
            tp = TopicPartition(topic, 0)
            consumer, end = await _start(bootstrap, tp, fetch_wait_ms)
            try:
                while True:
                    if not told and await consumer.position(tp) >= end:
                        caught_up()
                        told = True
                    await _apply(consumer, tp, apply)
            finally:
                await consumer.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: following failed (%r); reading it again", topic, exc)
            await asyncio.sleep(RETRY_SECONDS)


async def write_compacted(
    bootstrap: list[str], topic: str, records: Sequence[tuple[str, bytes | None]]
) -> None:
    """Write ``records`` (key, value; None: a tombstone), in order, and wait for each."""
    await ensure_compacted(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_options())
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key.encode(), partition=0)
            for key, value in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
