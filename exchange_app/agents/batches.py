"""What every batched agent shares: the batch size, the checkpoint, input bookkeeping.

An agent takes up to ``EXCHANGE_BATCH_SIZE`` events (waiting at most
``EXCHANGE_BATCH_WAIT_MS`` for more), processes them into one
:class:`Transaction`, commits it through the checkpoint, and only then lets
Faust ack the events (``take_events`` acks a batch when the agent asks for the
next one), so their offsets are committed after their effects are durable.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from faust.types import EventT, StreamT

from exchange_app.application import app
from exchange_app.checkpoint import Checkpoint, KafkaSink, Sink
from exchange_app.metrics import metrics
from exchange_app.topics import stream_topics
from tables.transaction import Transaction

__all__ = ["batches", "checkpoint", "complete", "use_sink", "where"]

settings = app.settings
_checkpoint: Checkpoint | None = None


def use_sink(sink: Sink | None) -> None:
    """Deliver through ``sink`` (agent tests); ``None``: the worker's producer."""
    global _checkpoint
    _checkpoint = None if sink is None else _new(sink)


def _new(sink: Sink) -> Checkpoint:
    return Checkpoint(sink, stream_topics(), settings.partitions)


def checkpoint() -> Checkpoint:
    global _checkpoint
    if _checkpoint is None:
        _checkpoint = _new(KafkaSink(app.producer._ensure_producer()))  # type: ignore[attr-defined]
    return _checkpoint


async def batches(stream: StreamT[Any]) -> AsyncIterator[Sequence[EventT]]:
    """The stream's events, a batch at a time."""
    within = settings.batch_wait_ms / 1000
    taken = stream.take_events(settings.batch_size, within=within)  # type: ignore[attr-defined]
    async for events in taken:
        yield events


async def complete(events: Sequence[EventT], tx: Transaction, started: float) -> None:
    """Make the batch's ``tx`` durable, then record its metrics (latency, position reached)."""
    await checkpoint().commit(tx)
    for event in events:
        message = event.message
        metrics.observe(message.topic, message.partition, message.offset, message.timestamp)
    metrics.batches.observe(time.perf_counter() - started)


def where(event: EventT) -> str:
    message = event.message
    return f"{message.topic}[{message.partition}]@{message.offset}"
