"""What every batched agent shares: the batch size, the checkpoint, input positions.

An agent takes up to ``EXCHANGE_BATCH_SIZE`` events (waiting at most
``EXCHANGE_BATCH_WAIT_MS`` for more), processes them into one
:class:`Transaction`, commits it through the checkpoint, and only then lets
Faust ack the events (``take_events`` acks a batch when the agent asks for the
next one). An agent may also rest between the batches it keeps up with
(:func:`rest`), so that one batch takes what arrived meanwhile.

**Input positions.** Faust's committed offsets are not enough to resume from:
around a rebalance its stream can skip a message it fetched before (it drops
events of an older generation, acks them, and its commit then steps over a
one-message gap), and the next owner of the partition starts after it. A
skipped packed batch is a hundred orders lost, and since the matching state
keeps the highest source offset applied, later orders would make them look
applied. So each agent keeps, per input partition, the next offset it must
process, in the ``inputs`` table, written in the same transaction as the
state the batch changed. :class:`InputPositions` admits exactly that offset:
an older one is a replay and is dropped, a newer one is a gap, and the
consumer is sent back to the stored position to read it again.

A position moves only once its batch is committed (:func:`complete`). An agent
that fails mid-batch is restarted by Faust with a new stream, which reads on
after the events the failed batch took: they arrive as a gap, and the consumer
is sent back to read the batch again. So no batch is ever stepped over, and
the in-memory state a failed batch left half-changed is dropped on the restart
(``on_restart`` of :func:`batches`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from faust.types import TP, EventT, StreamT

from exchange_app.application import app
from exchange_app.checkpoint import Checkpoint, KafkaSink, Pipeline, Sink
from exchange_app.metrics import metrics
from exchange_app.sharing import LoopShare
from exchange_app.topics import stream_topics
from tables.declarations import inputs_table
from tables.transaction import Transaction

__all__ = [
    "InputPositions",
    "batches",
    "checkpoint",
    "complete",
    "pipeline",
    "positions",
    "use_sink",
    "where",
]

log = logging.getLogger(__name__)
settings = app.settings
_checkpoint: Checkpoint | None = None

#: Seconds to wait for the message a seek asked for before seeking again.
RESEEK_SECONDS = 10.0
#: Seeks for one missing offset before it is taken as gone (deleted by retention).
SEEK_ATTEMPTS = 3


class InputPositions:
    """The next offset to process per input partition, kept in ``table`` with the state."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.next: dict[TP, int] = {}
        #: per partition being read again: the offset sought, when, how many times
        self.seeking: dict[TP, tuple[int, float, int]] = {}

    def invalidate(self) -> None:
        """Partitions moved: another worker may have advanced them; read them again."""
        self.next.clear()
        self.seeking.clear()

    def admit(self, events: Sequence[EventT]) -> tuple[list[EventT], int, list[TP]]:
        """The events to process; how many were replays; partitions to read again.

        The positions do not move here: :meth:`confirm` moves them once the batch is
        committed. Until then, a batch taken after this one would be a gap."""
        admitted: list[EventT] = []
        replayed = 0
        reread: list[TP] = []
        taken: dict[TP, int] = {}  # the next offset due within this batch
        for event in events:
            message = event.message
            tp, offset = message.tp, message.offset
            expected = taken[tp] if tp in taken else self._next(tp)
            if offset > expected:
                expected, seek = self._gap(tp, expected, offset)
                if seek:
                    reread.append(tp)
            if offset == expected:
                admitted.append(event)
                taken[tp] = offset + 1
                self.seeking.pop(tp, None)
            elif offset < expected:
                replayed += 1
        return admitted, replayed, reread

    def confirm(self, events: Sequence[EventT]) -> None:
        """``events`` are committed: the next batch starts after them. A partition
        forgotten meanwhile (:meth:`invalidate`) is read from the table again."""
        for message in (event.message for event in events):
            tp = TP(message.topic, message.partition)
            if tp in self.next:
                self.next[tp] = max(self.next[tp], message.offset + 1)

    def _gap(self, tp: TP, expected: int, offset: int) -> tuple[int, bool]:
        """Offset ``offset`` came where ``expected`` was due: the offset due now, and
        whether to seek back (not if a seek for it is pending). After
        :data:`SEEK_ATTEMPTS` the gap is given up: ``offset`` is due."""
        sought = self.seeking.get(tp)
        now = time.monotonic()
        if sought is not None and sought[0] == expected and now - sought[1] < RESEEK_SECONDS:
            return expected, False  # read before the seek took effect
        attempts = 1 if sought is None or sought[0] != expected else sought[2] + 1
        if attempts > SEEK_ATTEMPTS:
            log.error(
                "%s[%s]: offsets %s..%s cannot be read (deleted?); going on from %s",
                tp.topic, tp.partition, expected, offset - 1, offset,
            )  # fmt: skip
            self.seeking.pop(tp, None)
            return offset, False
        log.warning(
            "%s[%s]: offset %s arrived where %s was due; reading again from %s",
            tp.topic, tp.partition, offset, expected, expected,
        )  # fmt: skip
        self.seeking[tp] = (expected, now, attempts)
        return expected, True

    def _next(self, tp: TP) -> int:
        """The stored position; 0 for a partition never processed (the internal
        topics are the exchange's own, created empty)."""
        if tp not in self.next:
            self.next[tp] = self.table.stored_value(tp.partition, self.key(tp)) or 0
        return self.next[tp]

    def record(self, events: Sequence[EventT], tx: Transaction) -> None:
        """Write the positions ``events`` reached into ``tx``, with the batch's state."""
        reached = {(m.topic, m.partition): m.offset + 1 for m in (e.message for e in events)}
        for (topic, partition), offset in reached.items():
            tx.write(self.table, partition, self.key(TP(topic, partition)), offset)

    @staticmethod
    def key(tp: TP) -> str:
        return f"{tp.topic}:{tp.partition}"


positions = InputPositions(inputs_table)


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    positions.invalidate()


def use_sink(sink: Sink | None) -> None:
    """Deliver through ``sink`` (agent tests); ``None``: the worker's producer."""
    global _checkpoint, _pipeline
    _checkpoint = None if sink is None else _new(sink)
    _pipeline = None


def _new(sink: Sink) -> Checkpoint:
    return Checkpoint(sink, stream_topics(), settings.partitions)


def checkpoint() -> Checkpoint:
    global _checkpoint
    if _checkpoint is None:
        _checkpoint = _new(KafkaSink(app.producer._ensure_producer()))  # type: ignore[attr-defined]
    return _checkpoint


_pipeline: Pipeline | None = None


def pipeline() -> Pipeline:
    """The checkpoint of the agents that share the books (``matching.py``), pipelined."""
    global _pipeline
    if _pipeline is None:
        _pipeline = Pipeline(checkpoint(), window=settings.pipeline_window)
    return _pipeline


#: The input topics of every agent that has taken a batch since the worker started.
_started: set[frozenset[str]] = set()


async def batches(
    stream: StreamT[Any],
    *,
    every_ms: int = 0,
    on_restart: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Sequence[EventT]]:
    """The stream's events a batch at a time: those at their partition's stored position.

    With ``every_ms``, a batch smaller than the batch size (the agent keeps up) is
    followed by a rest: its partitions stay paused until ``every_ms`` after it was
    taken (:func:`rest`), while the agent goes on to ask for the next batch, so the
    events just processed are acked at once (a rebalance waits for that).

    ``on_restart`` runs before the first batch of an agent that Faust restarted
    after it failed: it drops what the failed batch left in memory, uncommitted.
    """
    topics = _topics(stream)
    if topics in _started and on_restart is not None:
        log.warning("%s: restarted after a failure; the batch is read again", sorted(topics))
        await on_restart()
    _started.add(topics)
    within = settings.batch_wait_ms / 1000
    taken = stream.take_events(settings.batch_size, within=within)  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    async for events in taken:
        taken_at = loop.time()
        admitted, replayed, reread = positions.admit(events)
        if replayed:
            metrics.replayed_inputs.inc(replayed)
            log.info(
                "%s messages were already processed (read again after a restart): skipped",
                replayed,
            )
        for tp in reread:
            await _seek(tp)
        if admitted:
            yield admitted
        if every_ms and len(events) < settings.batch_size:
            rest(app.consumer, topics, taken_at + every_ms / 1000)


def rest(consumer: Any, topics: frozenset[str], until: float) -> None:
    """Stop Faust's ``consumer`` fetching ``topics`` until ``until`` (the loop's time).

    Their partitions are paused in the consumer: it takes no more of their
    records, and the fetcher asks the broker for none while it holds some not
    yet taken. So the next batch gathers what arrived meanwhile in one or two
    fetches, instead of one fetch and one small batch per matching batch.
    Nothing is paused during a rebalance, and a rebalance before ``until``
    leaves the partitions to Faust, whose recovery resumes every stream
    partition it assigns once the tables are ready.
    """
    if app.rebalancing:
        return
    paused = {tp for tp in consumer.assignment() if tp.topic in topics}
    pause(consumer, paused)
    asyncio.get_running_loop().call_at(until, _resume, consumer, paused, app.rebalancing_count)


def _resume(consumer: Any, paused: set[TP], rebalances: int) -> None:
    if app.rebalancing or app.rebalancing_count != rebalances:
        return
    consumer.resume_partitions(paused & consumer.assignment())


def pause(consumer: Any, tps: set[TP]) -> None:
    """Faust's ``pause_partitions`` without its gap.

    Faust's ``getmany`` hands over the records of a fetch one by one, keeping
    only those of the partitions in its set of active partitions, and
    ``pause_partitions`` takes partitions out of that very set. Records of a
    fetch under way would be dropped after the fetcher counted them as read: the
    next batch would start past them. So the consumer gets a new set without
    ``tps``, and a ``getmany`` under way keeps filtering by the old one.
    """
    consumer._active_partitions = consumer._get_active_partitions() - tps
    consumer._paused_partitions.update(tps)


def _topics(stream: StreamT[Any]) -> frozenset[str]:
    return frozenset(getattr(stream.channel, "topics", ()))


async def _seek(tp: TP) -> None:
    sought = positions.seeking.get(tp)
    if sought is None:
        return  # partitions moved meanwhile: the next owner reads from the stored position
    offset = sought[0]
    try:
        await app.consumer.seek(tp, offset)
    except Exception as exc:  # revoked meanwhile, or the consumer is restarting
        log.info("%s[%s]: could not seek to %s (%r)", tp.topic, tp.partition, offset, exc)
        positions.seeking.pop(tp, None)


async def complete(
    events: Sequence[EventT],
    tx: Transaction,
    started: float,
    *,
    via: Pipeline | None = None,
    share: LoopShare | None = None,
) -> None:
    """Make the batch's ``tx`` and positions durable (through the checkpoint, sharing the
    loop with ``share``, or ``via`` the pipeline, which stops the process if it cannot),
    move the positions past ``events``, then record its metrics."""
    positions.record(events, tx)
    if via is None:
        await checkpoint().commit(tx, share)
    else:
        await via.commit(tx)
    positions.confirm(events)
    for event in events:
        message = event.message
        metrics.observe(message.topic, message.partition, message.offset, message.timestamp)
    metrics.batches.observe(time.perf_counter() - started)


def where(event: EventT) -> str:
    message = event.message
    return f"{message.topic}[{message.partition}]@{message.offset}"
