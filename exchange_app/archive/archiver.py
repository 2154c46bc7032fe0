"""The archiver: follows the public topics into an :class:`~.store.Archive`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from ..broker.offsets import true_end_offsets
from ..connection import client_options
from ..settings import Settings
from .schema import datasets, to_row
from .store import Archive, Resume

__all__ = ["ArchiveMismatch", "Archiver"]

log = logging.getLogger(__name__)


class ArchiveMismatch(Exception):
    """The archive was made from another log than the one the topics hold now."""


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    first: int
    last: int
    since: float


class Archiver:
    """Follows the public topics into an :class:`Archive`."""

    def __init__(self, settings: Settings, archive: Archive, names: Iterable[str] | None = None):
        self.settings = settings
        self.archive = archive
        self.datasets = {d.topic(settings): d for d in datasets(names)}
        self.flush_records = settings.archive_flush_records
        self.flush_seconds = settings.archive_flush_seconds
        self.pause = settings.archive_commit_pause_ms / 1000
        self.pending: dict[TopicPartition, _Pending] = {}
        self.archived = 0

    async def run(self, until_end: bool = False) -> int:
        """Archive until stopped (``until_end``: until the ends the topics had at the start);
        the records archived."""
        resume = self.archive.recover()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="none",  # a position off the log is an error, never a jump
            isolation_level="read_committed",  # never what an aborted transaction wrote
            fetch_max_wait_ms=self.settings.follow_wait_ms or 500,
            **client_options(self.settings),
        )
        await consumer.start()
        try:
            tps = await self._assign(consumer)
            ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
            await self._seek(consumer, tps, resume, ends)
            log.info("archive: following %s partitions into %s", len(tps), self.archive.root)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=self.flush_records)
                now = time.monotonic()
                for tp, messages in batch.items():
                    self._add(tp, messages, now)
                await self._flush(now)
                if until_end and await self._reached(consumer, tps, ends):
                    await self._flush(None)
                    return self.archived
        finally:
            await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        tps = []
        for topic in self.datasets:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:  # the worker creates the topics: wait for it
                log.info("archive: waiting for topic %s", topic)
                await asyncio.sleep(1.0)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        return tps

    async def _seek(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        resume: dict[tuple[str, int], Resume],
        ends: dict[TopicPartition, int],
    ) -> None:
        """Start each partition after its last commit; refuse an archive of another log."""
        beginnings = await consumer.beginning_offsets(tps)
        for tp in tps:
            found = resume.get((self.datasets[tp.topic].name, tp.partition))
            if found is None:
                consumer.seek(tp, beginnings[tp])
                continue
            if found.topic != tp.topic or found.offset > ends[tp]:
                raise ArchiveMismatch(
                    f"{self.archive.root} holds {found.topic}[{tp.partition}] up to offset "
                    f"{found.offset - 1}, but {tp.topic}[{tp.partition}] ends at {ends[tp]}: "
                    "the topics are another log (a new broker, or topics made again). Give "
                    "this log an archive of its own (EXCHANGE_ARCHIVE_URL)."
                )
            start = found.offset
            if start < beginnings[tp]:
                log.warning(
                    "archive: %s offsets %s..%s were removed by retention before they were "
                    "archived; going on from %s",
                    tp,
                    start,
                    beginnings[tp] - 1,
                    beginnings[tp],
                )
                start = beginnings[tp]
            consumer.seek(tp, start)

    def _add(self, tp: TopicPartition, messages: list[ConsumerRecord], now: float) -> None:
        if not messages:
            return
        dataset = self.datasets[tp.topic]
        pending = self.pending.get(tp)
        if pending is None:
            pending = self.pending[tp] = _Pending([], messages[0].offset, -1, now)
        for message in messages:
            pending.last = message.offset
            if message.value is None:
                continue
            try:
                record = dataset.decode(message.value)
            except (ValueError, UnicodeDecodeError) as exc:
                log.error("archive: %s@%s is not JSON, skipped: %s", tp, message.offset, exc)
                continue
            if record is not None:
                pending.rows.append(to_row(dataset, record, message))

    async def _flush(self, now: float | None) -> None:
        """Commit every partition's batch that is full or old enough (all if ``now`` is None)."""
        for tp, pending in list(self.pending.items()):
            due = now is None or len(pending.rows) >= self.flush_records
            if not due and now is not None and now - pending.since < self.flush_seconds:
                continue
            dataset = self.datasets[tp.topic]
            await asyncio.to_thread(
                self.archive.write_batch,
                dataset,
                tp.topic,
                tp.partition,
                pending.rows,
                pending.first,
                pending.last,
                self.pause,
            )
            self.archived += len(pending.rows)
            del self.pending[tp]

    async def _reached(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict[TopicPartition, int]
    ) -> bool:
        for tp in tps:
            if await consumer.position(tp) < ends[tp]:
                return False
        return True
