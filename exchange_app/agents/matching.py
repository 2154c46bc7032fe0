"""The matching agents: orders in, trades and execution reports out, a batch at a time.

::

    stock_exchange_orders[p] ──decode──┬─ bad ──► REJECTED report / DLQ record
                                       ├─ instrument lives on p ──► match
                                       └─ lives on q ──► orders-routed[q] ──► match
                                          (one message per batch and partition q)
    match = MatchingState.handle into the batch's Transaction ──► checkpoint
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from faust.types import EventT, StreamT

from exchange_app.application import app
from exchange_app.engine import Cancel, InvalidOrder, Order
from exchange_app.metrics import metrics
from exchange_app.routing import home_partition
from exchange_app.topics import orders, routed
from exchange_app.wire import decode_order, dumps, encode_order, loads, rejection_report
from tables.declarations import matching_table
from tables.matching import MatchingState, Source
from tables.transaction import Output, Transaction

from .batches import batches, checkpoint, observe, source_of, where

__all__ = ["match_orders", "match_routed", "state"]

log = logging.getLogger(__name__)
settings = app.settings

state = MatchingState(matching_table, settings.matching)

#: Commit a transaction early once it holds this many changed keys (a sweep of a
#: deep book), so that one partition's changes still fit one record batch.
MAX_WRITES = 4_000


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    state.invalidate()


@app.on_rebalance_complete.connect
def _tables_recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Load the books as soon as their table is restored, before the first order arrives."""
    state.load()


@app.agent(orders)
async def match_orders(stream: StreamT[bytes]) -> None:
    """Orders as producers sent them: matched here or forwarded to their instrument's partition."""
    async for events in batches(stream):
        await _process(events, forwarded=False)


@app.agent(routed)
async def match_routed(stream: StreamT[bytes]) -> None:
    """Batches of orders forwarded by ``match_orders``: matched on their instrument's partition."""
    async for events in batches(stream):
        await _process(events, forwarded=True)


async def _process(events: Sequence[EventT], *, forwarded: bool) -> None:
    started = time.perf_counter()
    tx = Transaction()
    forwards: dict[int, list[list[Any]]] = defaultdict(list)
    for event in events:
        try:
            if forwarded:
                _match_forwarded(event, tx)
            else:
                _take(event, tx, forwards)
        except Exception as exc:  # a bug must not stop the exchange: report, reload, go on
            log.exception("failed to process %s", where(event))
            # What came before stays; the books reload from the table after this commit.
            await checkpoint().commit(tx)
            state.invalidate()
            tx = Transaction()
            metrics.orders.labels("error").inc()
            tx.send(Output("dlq", None, _dlq_record(event, [f"internal error: {exc!r}"])))
        if tx.writes > MAX_WRITES:
            await checkpoint().commit(tx)
            tx = Transaction()
    for partition, entries in forwards.items():
        tx.send(Output("routed", None, dumps({"orders": entries}), partition))
    _count(tx)
    await checkpoint().commit(tx)
    observe(events, started)


def _take(event: EventT, tx: Transaction, forwards: dict[int, list[list[Any]]]) -> None:
    message = event.message
    try:
        command = decode_order(message.value or b"", max_bytes=settings.max_message_bytes)
    except InvalidOrder as exc:
        tx.send(_invalid(event, exc))
        return
    home = home_partition(command.instrument, settings.partitions, settings.spread_instruments)
    if home != message.partition:
        metrics.orders.labels("forwarded").inc()
        forwards[home].append([message.partition, message.offset, encode_order(command)])
        return
    state.handle(command, Source(message.partition, message.offset), message.partition, tx)
    metrics.orders.labels("matched").inc()


def _match_forwarded(event: EventT, tx: Transaction) -> None:
    partition = event.message.partition
    for source_partition, source_offset, order in loads(event.message.value or b"")["orders"]:
        command: Order | Cancel = decode_order(order)
        state.handle(command, Source(source_partition, source_offset), partition, tx)
        metrics.orders.labels("matched").inc()


def _count(tx: Transaction) -> None:
    for output in tx.outputs:
        if output.stream == "trades":
            metrics.trades.inc()
        elif output.stream == "events" and output.value.get("status") == "REJECTED":
            metrics.rejections.inc()


def _invalid(event: EventT, exc: InvalidOrder) -> Output:
    if exc.order_id is None:
        metrics.orders.labels("dlq").inc()
        metrics.dlq.inc()
        return Output("dlq", None, _dlq_record(event, exc.reasons))
    metrics.orders.labels("invalid").inc()
    report = rejection_report(
        exc.reasons, order_id=exc.order_id, instrument=exc.instrument, account=exc.account
    )
    report["source"] = source_of(event)
    return Output("events", exc.account or exc.instrument or "", report)


def _dlq_record(event: EventT, reasons: list[str]) -> dict[str, Any]:
    raw = event.message.value or b""
    limit = settings.max_message_bytes
    return {
        "reason": "; ".join(reasons),
        "reasons": reasons,
        "source": source_of(event),
        "key": (event.message.key or b"").decode("utf-8", "replace")[:256],
        "value": raw[:limit].decode("utf-8", "replace"),
        "truncated": len(raw) > limit,
        "size": len(raw),
    }
