"""The checkpoint: how one batch's effects become durable, always in the same order.

::

    Transaction ──1──► outputs to their topics           (awaited: every record delivered)
                └─2──► changed keys to the changelogs    (one record batch per table partition)
                └─3──► the same records into local RocksDB, with the changelog offset reached
    then the agent acks the batch's events and Faust commits their offsets (4).

Why this order (DESIGN section 5, as quix-streams' checkpoint):

* Outputs before state: whatever says "applied" (changelog, local store,
  committed offset) implies the outputs were delivered, so none is lost. An
  input whose state did not survive is processed again from the same state and
  yields identical outputs, which consumers drop by ``(instrument, seq)``.
* Changelog before local store: the local store is never ahead of the
  changelog another worker restores from. Step 3 goes through the store's own
  changelog-apply path, which also records the changelog offset reached, so a
  restart on the same data directory replays nothing it already has.
* Records the producer could not take are handed over again (they are
  idempotent); if that keeps failing the process stops at once, before Faust
  could commit the batch's offsets, and the batch is processed again after the
  restart. Records the producer took but could not deliver stop the process at
  once: the producer already retried them, in order, for as long as its
  delivery timeout allows.

Records are handed to the producer as whole record batches per partition
(aiokafka ``create_batch``/``send_batch``): one future per partition and
batch instead of one per message, which is where Faust's per-message cost was.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiokafka.partitioner import murmur2
from faust.types import TP

from tables.transaction import Output, Transaction

from .broker.watch import exit_now
from .sharing import LoopShare
from .wire import dumps

__all__ = [
    "ChangelogEvent",
    "ChangelogMessage",
    "Checkpoint",
    "KafkaSink",
    "MemorySink",
    "Pipeline",
    "Record",
    "Sink",
    "deliver",
    "hand_over",
    "same",
]

log = logging.getLogger(__name__)

#: Delivery attempts of one step before the worker stops (about 30 s of backoff).
ATTEMPTS = 6
#: The first retry's wait; each next one doubles it.
BACKOFF_SECONDS = 1.0


class Record(NamedTuple):
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None


class Sink(Protocol):
    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        """Queue ``records`` for delivery, each partition's after everything handed over
        before; a future of their offsets, in order.

        Raising means some records may not have been queued: hand them over again.
        The future failing means queued records were lost: the caller stops the
        process, and the sink must let nothing handed over later be delivered
        before that failure is seen (:class:`KafkaSink` stops the process itself).
        """
        ...


class KafkaSink:
    """Delivers through a started aiokafka producer, one record batch per partition.

    The producer sends one request at a time to a broker and keeps a partition's
    batches in order, retrying a failed one before any later one goes. A batch
    it gives up on stops the process from that batch's own future (the first
    callback to run after the failure, before the producer sends again), so no
    later batch of the partition reaches the topic ahead of the lost one.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
        for index, record in enumerate(records):
            by_partition[(record.topic, record.partition)].append(index)
        pending = []
        for (topic, partition), indices in by_partition.items():
            for chunk in self._chunks(records, indices):
                batch, members = chunk
                future = await self.producer.send_batch(batch, topic, partition=partition)
                future.add_done_callback(_stop_if_lost)
                pending.append((future, members))
        return asyncio.ensure_future(_offsets(pending, len(records)))

    def _chunks(self, records: Sequence[Record], indices: list[int]) -> list[tuple[Any, list[int]]]:
        """Fill record batches up to the producer's batch size, in order."""
        chunks: list[tuple[Any, list[int]]] = []
        batch, members = self.producer.create_batch(), list[int]()
        for index in indices:
            record = records[index]
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                if not members:
                    raise ValueError(f"a record of {len(record.value or b'')} bytes fits no batch")
                chunks.append((batch, members))
                batch, members = self.producer.create_batch(), []
                if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                    raise ValueError(f"a record of {len(record.value or b'')} bytes fits no batch")
            members.append(index)
        if members:
            chunks.append((batch, members))
        if len(chunks) > 1:
            log.warning(
                "%s records for one partition took %s record batches: raise "
                "EXCHANGE_PRODUCER_BATCH_BYTES to keep a batch's changelog atomic",
                len(indices),
                len(chunks),
            )
        return chunks


@dataclass
class MemorySink:
    """Keeps what it is given, per topic: the sink of agent tests."""

    records: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))

    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        offsets = []
        for record in records:
            offsets.append(len(self.records[record.topic]))
            self.records[record.topic].append(record)
        delivered: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        delivered.set_result(offsets)
        return delivered


class ChangelogMessage(NamedTuple):
    tp: TP
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class ChangelogEvent(NamedTuple):
    """The shape a Faust store's ``apply_changelog_batch`` reads: raw bytes in ``message``
    (RocksDB), decoded ``key``/``value`` (the memory store)."""

    key: Any
    value: Any
    message: ChangelogMessage


def same(value: Any) -> Any:
    return value


class Checkpoint:
    """Commits transactions through ``sink`` in the order this module's docstring gives."""

    def __init__(self, sink: Sink, topics: Mapping[str, str], partitions: int) -> None:
        self.sink = sink
        self.topics = topics
        self.partitions = partitions
        self._spread = itertools.count()

    async def commit(self, tx: Transaction, share: LoopShare | None = None) -> None:
        """Steps 1 to 3 for ``tx``; with ``share``, handing the loop back between records."""
        delivered = await self.hand_over_outputs(tx, share)
        if delivered is not None:
            await _delivered(delivered, len(tx.outputs))
        if tx.changes:
            await self.write_tables(tx, share)

    async def hand_over_outputs(
        self, tx: Transaction, share: LoopShare | None = None
    ) -> asyncio.Future[list[int]] | None:
        """Step 1 begun: hand ``tx``'s outputs over; the future of their delivery, if any."""
        if not tx.outputs:
            return None
        records = []
        for output in tx.outputs:
            records.append(self.record(output))
            if share is not None:
                await share.turn()
        return await hand_over(self.sink, records)

    def record(self, output: Output) -> Record:
        key = None if output.key is None else output.key.encode()
        partition = output.partition
        if partition is None:
            partition = (
                next(self._spread) % self.partitions
                if key is None
                else (murmur2(key) & 0x7FFFFFFF) % self.partitions
            )
        value = output.value if isinstance(output.value, bytes) else dumps(output.value)
        return Record(self.topics[output.stream], partition, key, value)

    async def write_tables(self, tx: Transaction, share: LoopShare | None = None) -> None:
        """Steps 2 and 3: ``tx``'s changed keys to the changelogs, then to the local store."""
        changed = list(tx.tables())
        records, keys = [], []
        for table, partition, changes in changed:
            topic = table.changelog_topic.get_topic_name()  # type: ignore[attr-defined]
            for key, value in changes.items():
                records.append(Record(topic, partition, *_encoded(table, key, value)))
                keys.append((key, value))
                if share is not None:
                    await share.turn()
        offsets = await deliver(self.sink, records)
        # From here on nothing awaits, even with ``share``: another agent's batch that
        # shares a changelog partition (``inputs``) and was delivered after this one
        # must not record a changelog offset past records not yet in the local store.
        position = 0
        for table, partition, changes in changed:
            events = []
            for _ in changes:
                record = records[position]
                key, value = keys[position]
                message = ChangelogMessage(
                    TP(record.topic, partition),
                    partition,
                    offsets[position],
                    record.key,
                    record.value,
                )
                events.append(ChangelogEvent(key, value, message))
                position += 1
            table.data.apply_changelog_batch(  # type: ignore[attr-defined]
                events, to_key=same, to_value=same
            )


class Pipeline:
    """Commits transactions in the order given, without waiting for their delivery.

    :meth:`commit` returns once the transaction's outputs are handed to the sink,
    after every earlier transaction's; their delivery, then the transaction's
    changelog and local-store writes, follow in the background. The order of
    :class:`Checkpoint` holds for each transaction (outputs delivered, then
    changelog, then local store), and across them:

    * outputs are handed over strictly one transaction after another (the caller
      commits the next only when this returns), and the sink delivers each
      partition's records in that order, none after a lost one (:class:`Sink`):
      a topic never holds a later batch's outputs without an earlier one's;
    * tables are written strictly in order, each after its own outputs are
      delivered: a key's last value in the changelog is the value of the last
      transaction that changed it, and no state says "applied" before the
      outputs it implies are delivered.

    What overlaps is the broker round trips: the next batch is fetched, matched
    and handed over while earlier outputs and changelogs are in flight. At most
    ``window`` transactions are incomplete at once (:meth:`commit` waits for the
    oldest first), which bounds the memory they hold. Whoever reads the local
    store or hands partitions over first waits for :meth:`drain`. A delivery or
    a write that fails stops the process.
    """

    def __init__(self, checkpoint: Checkpoint, window: int = 4) -> None:
        if window < 1:
            raise ValueError("the window must hold at least one transaction")
        self.checkpoint = checkpoint
        self.window = window
        #: completions of the transactions committed and not yet known complete, in order
        self._pending: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        """Transactions committed whose outputs or tables are not yet durable."""
        self._settle()
        return len(self._pending)

    async def commit(self, tx: Transaction) -> None:
        while self.in_flight >= self.window:
            await asyncio.shield(self._pending[0])
        delivered = await self.checkpoint.hand_over_outputs(tx)
        previous = self._pending[-1] if self._pending else None
        done = asyncio.ensure_future(self._complete(previous, delivered, tx))
        done.add_done_callback(_stop_on_failure)
        self._pending.append(done)

    async def _complete(
        self,
        previous: asyncio.Future[None] | None,
        delivered: asyncio.Future[list[int]] | None,
        tx: Transaction,
    ) -> None:
        if delivered is not None:
            await delivered
        if previous is not None:
            await asyncio.shield(previous)
        if tx.changes:
            await self.checkpoint.write_tables(tx)

    def _settle(self) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft()

    async def drain(self) -> None:
        """Return once every committed transaction's outputs and tables are durable."""
        while self.in_flight:
            await asyncio.shield(self._pending[-1])  # complete only after all before it


def _stop_on_failure(future: asyncio.Future[None]) -> None:
    if future.cancelled():
        return  # the worker is stopping: the batch is processed again after the restart
    exc = future.exception()
    if exc is not None:
        log.critical(
            "A batch's outputs or tables could not be made durable (%r); stopping now",
            exc,
            exc_info=exc,
        )
        exit_now()


def _stop_if_lost(future: asyncio.Future[Any]) -> None:
    """A record batch's future is done: stop the process at once if it was lost."""
    if future.cancelled():
        return  # the producer is stopping with the worker
    exc = future.exception()
    if exc is not None:
        log.critical(
            "The producer gave up delivering a record batch (%r). Stopping now, before "
            "any later batch goes out; the batch is processed again after the restart.",
            exc,
        )
        exit_now()


async def _offsets(pending: list[tuple[asyncio.Future[Any], list[int]]], count: int) -> list[int]:
    """The offsets of ``count`` records handed over as ``pending`` record batches."""
    offsets = [0] * count
    for (_, members), metadata in zip(
        pending, await asyncio.gather(*(future for future, _ in pending)), strict=True
    ):
        for position, index in enumerate(members):
            offsets[index] = metadata.offset + position
    return offsets


async def hand_over(sink: Sink, records: list[Record]) -> asyncio.Future[list[int]]:
    """Hand ``records`` to ``sink``, again if it fails; stop the process at once if that
    keeps failing. The future of their offsets."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await sink.hand_over(records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt == ATTEMPTS:
                log.critical(
                    "Could not deliver %s records after %s attempts (%r). Stopping now, "
                    "before the batch's input offsets are committed; it is processed "
                    "again after the restart.",
                    len(records),
                    attempt,
                    exc,
                )
                exit_now()
            log.warning("delivery failed (%r); attempt %s of %s", exc, attempt, ATTEMPTS)
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def deliver(sink: Sink, records: list[Record]) -> list[int]:
    """Deliver ``records`` (:func:`hand_over`, then wait for them); their offsets.

    Records that were handed over and then lost stop the process at once."""
    return await _delivered(await hand_over(sink, records), len(records))


async def _delivered(delivered: asyncio.Future[list[int]], count: int) -> list[int]:
    """The offsets of ``count`` records handed over; stop the process if they were lost."""
    try:
        return await delivered
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.critical("%s records were lost after they were handed over (%r)", count, exc)
        exit_now()
        raise


def _encoded(table: Any, key: str, value: Any) -> tuple[bytes, bytes | None]:
    serializers = table.app.serializers
    key_bytes = serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
    if value is None:
        return key_bytes, None
    return key_bytes, serializers.dumps_value(
        table.value_type, value, serializer=table.value_serializer
    )
