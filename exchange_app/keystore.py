"""The key store: a compacted topic of API key records, read by every worker.

::

    <app id>-api-keys (1 partition, compacted)   key: key id   value: {"account", "admin", "sha256"}
        ▲ exchange keys add / revoke                ▼ every worker follows it into its KeyRing

Every worker reads the whole topic from the start and then follows it, so a
key added or revoked on any machine takes effect on every worker within a
fetch. Until a worker has read the topic to its end, requests that need a key
answer 503 rather than 401. A revoked key is a tombstone, which compaction
keeps until it has removed the record it revokes. A record a worker cannot
read is skipped with a log line: one bad record must not stop the revocations
behind it.

Why not a Faust ``GlobalTable``: keys are written by ``exchange keys``, a
process outside the worker, straight to the topic, and a global table fed that
way does not reach every worker (faust-streaming/faust#283, robinhood/faust#541:
only some instances apply the records). A global table would also hold each
worker's recovery (and ``/health``) until the keys are read, where this reader
holds only the requests that need a key.
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from .auth import KeyRing, key_record, new_key
from .broker.admin import ensure_topics
from .broker.offsets import true_end_offsets
from .connection import client_options
from .wire import dumps, loads

__all__ = [
    "add_key",
    "apply_record",
    "ensure_key_topic",
    "follow_keys",
    "read_keys",
    "revoke_keys",
]

log = logging.getLogger(__name__)
#: A record's key: the key's public id.
KEY_ID = re.compile(r"[0-9a-f]{12}")


async def ensure_key_topic(bootstrap: list[str], topic: str) -> None:
    await ensure_topics(bootstrap, [topic], partitions=1, configs={"cleanup.policy": "compact"})


def apply_record(ring: KeyRing, key: bytes | None, value: bytes | None, offset: int) -> bool:
    """Apply one record of the key store to ``ring``; whether it was applied.

    A record that cannot be read (not UTF-8, not JSON, a number ``Decimal`` refuses, not
    a key record) is skipped with a log line: the follower goes on, so a revocation after
    it still reaches every worker."""
    try:
        key_id = (key or b"").decode()
        if not KEY_ID.fullmatch(key_id):
            raise ValueError(f"key: expected 12 hex digits, got {key_id[:40]!r}")
        ring.apply(key_id, None if value is None else key_record(loads(value)))
    except Exception as exc:  # any record: the follower must outlive it
        log.error(
            "key store: skipping the record at offset %s: %s: %s",
            offset,
            type(exc).__name__,
            exc,
        )
        return False
    return True


async def _apply(ring: KeyRing, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """Apply the next records; the position reached."""
    batch = await consumer.getmany(tp, timeout_ms=1000)
    for messages in batch.values():
        for message in messages:
            apply_record(ring, message.key, message.value, message.offset)
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


async def read_keys(bootstrap: list[str], topic: str, fetch_wait_ms: int = 100) -> KeyRing:
    """The keys in force now: the topic read to its end."""
    await ensure_key_topic(bootstrap, topic)
    ring, tp = KeyRing(), TopicPartition(topic, 0)
    consumer, end = await _start(bootstrap, tp, fetch_wait_ms)
    try:
        while await consumer.position(tp) < end:
            await _apply(ring, consumer, tp)
    finally:
        await consumer.stop()
    ring.ready = True
    return ring


async def follow_keys(ring: KeyRing, bootstrap: list[str], topic: str, fetch_wait_ms: int) -> None:
    """Keep ``ring`` equal to the topic until cancelled; ready once read to its end."""
    await ensure_key_topic(bootstrap, topic)
    tp = TopicPartition(topic, 0)
    consumer, end = await _start(bootstrap, tp, fetch_wait_ms)
    try:
        while True:
            position = await _apply(ring, consumer, tp)
            if not ring.ready and position >= end:
                ring.ready = True
                log.info("key store: %d keys in force", len(ring.records))
    finally:
        await consumer.stop()


async def _send(bootstrap: list[str], topic: str, records: list[tuple[str, bytes | None]]) -> None:
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


async def add_key(bootstrap: list[str], topic: str, account: str, *, admin: bool = False) -> str:
    """Store a new key of ``account``; the key, which nothing keeps."""
    await ensure_key_topic(bootstrap, topic)
    key, key_id, record = new_key(account, admin=admin)
    await _send(bootstrap, topic, [(key_id, dumps(record))])
    return key


async def revoke_keys(bootstrap: list[str], topic: str, account: str) -> int:
    """Revoke every key of ``account``; how many there were."""
    ids = (await read_keys(bootstrap, topic)).ids_of(account)
    if ids:
        await _send(bootstrap, topic, [(key_id, None) for key_id in ids])
    return len(ids)
