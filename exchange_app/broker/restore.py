"""Restoring the tables' changelogs in bulk, before Faust's own recovery starts.

Faust's recovery feeds every changelog record through its consumer as an
event: on this project's machine about 10,000 records a second, so a book of
a million resting orders took over 100 s to restore onto an empty data
directory. At start, before the worker joins its group, each table's
changelog partitions are read with a plain consumer from the offset the
local store already has to the end, each fetch written as one RocksDB write
batch through the store's own changelog-apply path (which records the offset
reached). Faust's recovery then finds nothing left to read, or only what was
written meanwhile, and goes on as usual: it is still what keeps standbys and
later rebalances right.

The worker does not know yet which partitions it will be given, so it
restores all of them; on a cluster with many workers and partitions, turn it
off with ``EXCHANGE_BULK_RESTORE=false``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from ..checkpoint import ChangelogEvent, ChangelogMessage, same
from ..connection import client_options
from .offsets import true_end_offsets

__all__ = ["restore_changelogs"]

log = logging.getLogger(__name__)

#: Seconds without a record before the bulk restore leaves the rest to Faust.
STALL_SECONDS = 30.0


async def restore_changelogs(
    tables: Iterable[Any], bootstrap: list[str], *, fetch_wait_ms: int, partitions: int
) -> int:
    """Bring every RocksDB table's local partitions up to its changelog; records applied."""
    stores = {
        table.changelog_topic.get_topic_name(): table.data
        for table in tables
        if isinstance(table.data, RocksDBStore)
    }
    if not stores:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        **client_options(),
    )
    await consumer.start()
    started, applied = time.monotonic(), 0
    try:
        existing = await consumer.topics()  # a fresh app's changelogs are created by Faust
        tps = [
            TopicPartition(topic, p)
            for topic in stores
            if topic in existing
            for p in sorted(consumer.partitions_for_topic(topic) or range(partitions))
        ]
        if not tps:
            return 0
        consumer.assign(tps)
        ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
        remaining = {}
        for tp in tps:
            persisted = stores[tp.topic].persisted_offset(TP(tp.topic, tp.partition))
            start = 0 if persisted is None else persisted + 1
            consumer.seek(tp, start)
            if start < ends[tp]:
                remaining[tp] = ends[tp]
            else:
                consumer.pause(tp)
        progress = time.monotonic()
        while remaining:
            if time.monotonic() - progress > STALL_SECONDS:
                log.warning(
                    "Bulk restore stalled on %s; Faust's recovery restores the rest",
                    sorted(f"{tp.topic}[{tp.partition}]" for tp in remaining),
                )
                break
            fetched = await consumer.getmany(timeout_ms=1000)
            if fetched:
                progress = time.monotonic()
            for tp, messages in fetched.items():
                events = [
                    ChangelogEvent(
                        None,
                        None,
                        ChangelogMessage(
                            TP(tp.topic, tp.partition), tp.partition, m.offset, m.key, m.value
                        ),
                    )
                    for m in messages
                    if m.offset < remaining.get(tp, 0)
                ]
                if events:
                    store = stores[tp.topic]
                    store.apply_changelog_batch(events, to_key=same, to_value=same)  # type: ignore[arg-type]
                    applied += len(events)
                if messages and messages[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
    finally:
        await consumer.stop()
    if applied:
        log.info(
            "Restored %s changelog records of %s tables in %.1f s, before Faust's recovery",
            applied,
            len(stores),
            time.monotonic() - started,
        )
    return applied
