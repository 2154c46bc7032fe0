"""Matching: orders in, trades and execution reports out, a batch at a time.

::

    stock_exchange_orders[p] ──(intake.py)──► match_orders ──decode──┬─ bad ──► REJECTED / DLQ
                                                                     ├─ lives on p ──► match
                          └─ lives on q ──► orders-routed[q] ──► [match_routed] ──► match
                             (packed: one message per batch and q)
    match = MatchingState.handle into the batch's Transaction ──► checkpoint
    trades ──► successful_trade (one per message) and trades-batched (packed, for analytics)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from faust.types import TP, EventT, StreamT

from exchange_app.application import app
from exchange_app.engine import InvalidOrder, Order
from exchange_app.metrics import metrics
from exchange_app.packing import Packed, PackingError, pack, unpack
from exchange_app.routing import home_partition
from exchange_app.topics import routed
from exchange_app.wire import decode_order, dlq_record, dumps, rejection_report
from tables.declarations import inputs_table, matching_table
from tables.matching import Books, MatchingState, Source
from tables.transaction import Output, Transaction

from .batches import InputPositions, batches, complete, pipeline, where
from .reference import listings

__all__ = ["books_lock", "match_orders", "match_routed", "order_position", "state"]

log = logging.getLogger(__name__)
settings = app.settings

state = MatchingState(matching_table, settings.matching, read=matching_table.stored_items)

#: Commit a transaction early once it holds this many changed keys (a sweep of a
#: deep book), so that one partition's changes still fit one record batch.
MAX_WRITES = 4_000


#: The intake and ``match_routed`` change the same books. A batch holds this from
#: its first change until its outputs are handed to the producer and its tables are
#: queued on the shared :func:`pipeline`, so transactions reach the pipeline in the
#: order they were made: outputs go out in that order, and the changelog ends on
#: every key's latest value.
books_lock = asyncio.Lock()


#: Books read from the local store at start, per partition, with the changelog
#: offset each partition had then (``_preload``).
_preloaded: tuple[asyncio.Future[dict[int, Books]], dict[int, int | None]] | None = None


def _preload() -> None:
    """Read every local partition's books in a thread while the worker joins its group.

    Joining takes seconds on which the event loop mostly waits; a book of a
    million orders takes as long to read. If a partition is assigned and its
    store still holds the same changelog offset, its preloaded books are used.
    """
    global _preloaded
    partitions = range(settings.partitions)
    local = {p: matching_table.local_partition(p) for p in partitions}
    offsets = {p: offset for p, (offset, _) in local.items()}
    if all(offset is None for offset in offsets.values()):
        return  # nothing stored locally
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(
        None, lambda: {p: state.read_books(items) for p, (_, items) in local.items()}
    )
    _preloaded = future, offsets


app.on_local_state_ready.append(_preload)


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    state.invalidate()


@app.on_rebalance_complete.connect
async def _tables_recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Load the books once their table is restored, before the first order arrives.

    The reading runs in a thread so that the worker keeps its heartbeats while a
    large book loads; the agents wait, since recovery completes after this.
    """
    global _preloaded
    changelog = matching_table.changelog_topic.get_topic_name()
    assigned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
    preloaded, _preloaded = _preloaded, None
    generation = state.generation
    loaded: Books | None = None
    if preloaded is not None:
        future, offsets = preloaded
        per_partition = await future
        if all(matching_table.local_offset(p) == offsets[p] for p in assigned):
            loaded = ({}, {})
            for p in assigned:
                loaded[0].update(per_partition[p][0])
                loaded[1].update(per_partition[p][1])
    if loaded is None:
        items = state.read()
        loaded = await asyncio.get_running_loop().run_in_executor(
            None, lambda: state.read_books(items)
        )
    async with books_lock:  # not in the middle of a batch
        # Install only if nothing moved meanwhile: no newer assignment, and no batch
        # that found the books stale and loaded them itself (its changes would be lost).
        if state.generation == generation and state.stale:
            state.install(loaded)


async def match_orders(fetched: Mapping[int, Sequence[Packed]]) -> None:
    """Orders the intake read, per orders partition: matched here or forwarded to their
    instrument's partition. The caller holds :data:`books_lock` and owns the partitions."""
    started = time.perf_counter()
    forwards: dict[int, list[Packed]] = defaultdict(list)
    tx, replayed = await _match(fetched.items(), Transaction(), forwards)
    for home, packed in forwards.items():
        tx.send(Output("routed", None, pack(packed), home))
    for partition, records in fetched.items():
        tx.write(inputs_table, partition, order_position(partition), records[-1].offset + 1)
    await pipeline().commit(_finished(tx))
    for partition, records in fetched.items():
        last = records[-1]
        metrics.observe(settings.orders_topic, partition, last.offset, last.timestamp / 1000)
    metrics.batches.observe(time.perf_counter() - started)
    _replayed(replayed)


def order_position(partition: int) -> str:
    """The ``inputs`` table key of orders partition ``partition``: the next offset to match."""
    return InputPositions.key(TP(settings.orders_topic, partition))


@app.agent(routed)
async def match_routed(stream: StreamT[bytes]) -> None:
    """Orders forwarded by :func:`match_orders`: matched on their instrument's partition."""
    async for events in batches(stream, on_restart=_reload_books):
        async with books_lock:
            await _match_routed(events)


async def _reload_books() -> None:
    """After a failed batch: keep what was committed, read the books again from it."""
    async with books_lock:
        await pipeline().drain()
        state.invalidate()


async def _match_routed(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    tx = Transaction()
    inputs = []
    for event in events:
        try:
            inputs.append((event.message.partition, list(unpack(event.message.value or b""))))
        except PackingError as exc:
            log.error("skipping %s, not a packed batch: %s", where(event), exc)
            reasons = [f"not a packed batch: {exc}"]
            tx.send(_dlq(_unpacked(event), reasons, topic=event.message.topic))
    tx, replayed = await _match(inputs, tx, None)
    await complete(events, _finished(tx), started, via=pipeline())
    _replayed(replayed)


async def _match(
    inputs: Iterable[tuple[int, Sequence[Packed]]],
    tx: Transaction,
    forwards: dict[int, list[Packed]] | None,
) -> tuple[Transaction, int]:
    """Match ``inputs`` (records per partition) into ``tx``; the last transaction and how
    many orders were replays. ``forwards`` given: orders of other partitions go there."""
    await listings.wait_ready()  # no order is refused as unlisted before the listings are read
    replayed = 0
    for partition, records in inputs:
        for record in records:
            try:
                replayed += not _take(record, partition, tx, forwards)
            except Exception as exc:  # a bug must not stop the exchange: report, reload, go on
                log.exception("failed to process order %s@%s", record.partition, record.offset)
                # What came before stays; the books reload from the table after this commit.
                await pipeline().commit(_finished(tx))
                await pipeline().drain()
                state.invalidate()
                tx = Transaction()
                metrics.orders.labels("error").inc()
                tx.send(_dlq(record, [f"internal error: {exc!r}"]))
            if tx.writes > MAX_WRITES:
                await pipeline().commit(_finished(tx))
                tx = Transaction()
    return tx, replayed


def _replayed(count: int) -> None:
    if count:
        metrics.orders.labels("replayed").inc(count)
        log.info("%s orders were already applied (read again after a restart): skipped", count)


def _take(
    record: Packed, partition: int, tx: Transaction, forwards: dict[int, list[Packed]] | None
) -> bool:
    """Match one order on ``partition``, or (``forwards`` given) forward it to its home.

    False: the order was applied before (a replay), nothing happened.
    """
    try:
        command = decode_order(record.value or b"", max_bytes=settings.max_message_bytes)
    except InvalidOrder as exc:
        tx.send(_invalid(record, exc))
        return True
    if forwards is not None:
        home = home_partition(command.instrument, settings.partitions, settings.spread_instruments)
        if home != partition:
            metrics.orders.labels("forwarded").inc()
            forwards[home].append(record)
            return True
    source = Source(record.partition, record.offset)
    if isinstance(command, Order) and (reasons := listings.reasons(command)):
        metrics.orders.labels("invalid").inc()
        return state.refuse(command, reasons, source, tx)
    if not state.handle(command, source, partition, tx):
        return False
    metrics.orders.labels("matched").inc()
    return True


def _finished(tx: Transaction) -> Transaction:
    """Seal the books' changes into ``tx``; encode each trade once, for its topic and for
    the analytics' packed copy; count."""
    state.seal(tx)
    packed: dict[int, list[Packed]] = defaultdict(list)
    for index, output in enumerate(tx.outputs):
        if output.stream == "trades" and output.partition is not None:
            raw = dumps(output.value)
            tx.outputs[index] = output._replace(value=raw)
            packed[output.partition].append(
                Packed(output.partition, output.value["seq"], 0, None, raw)
            )
            metrics.trades.inc()
        elif output.stream == "events" and output.value.get("status") == "REJECTED":
            metrics.rejections.inc()
    for partition, trades in packed.items():
        tx.send(Output("trade_batches", None, pack(trades), partition))
    return tx


def _invalid(record: Packed, exc: InvalidOrder) -> Output:
    if exc.order_id is None:
        metrics.orders.labels("dlq").inc()
        metrics.dlq.inc()
        return _dlq(record, exc.reasons)
    metrics.orders.labels("invalid").inc()
    report = rejection_report(
        exc.reasons, order_id=exc.order_id, instrument=exc.instrument, account=exc.account
    )
    report["source"] = _source(record)
    return Output("events", exc.account or exc.instrument or "", report)


def _source(record: Packed, topic: str | None = None) -> dict[str, Any]:
    topic = topic or settings.orders_topic
    return {"topic": topic, "partition": record.partition, "offset": record.offset}


def _unpacked(event: EventT) -> Packed:
    message = event.message
    return Packed(message.partition, message.offset, 0, message.key, message.value)


def _dlq(record: Packed, reasons: list[str], topic: str | None = None) -> Output:
    """A DLQ record for ``record`` of the orders topic (or of ``topic``)."""
    value = dlq_record(
        reasons,
        _source(record, topic),
        record.value or b"",
        key=record.key,
        limit=settings.max_message_bytes,
    )
    return Output("dlq", None, value)
