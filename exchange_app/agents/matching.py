"""The matching agent: orders in, trades and execution reports out.

::

    stock_exchange_orders[p] ──decode──┬─ bad ──► REJECTED report / DLQ record
                                       ├─ instrument lives on p ──► match
                                       └─ lives on q ──► orders-routed[q] ──► match
    match = MatchingState.handle (exactly-once effect on the table) ──► send outputs
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import EventT, StreamT

from exchange_app.application import app
from exchange_app.engine import Cancel, InvalidOrder, Order
from exchange_app.metrics import metrics
from exchange_app.routing import home_partition
from exchange_app.topics import by_stream, dlq, events, orders, routed
from exchange_app.wire import decode_order, dumps, encode_order, loads, rejection_report
from tables.declarations import matching_table
from tables.matching import MatchingState, Position, Source

__all__ = ["match_orders", "match_routed", "state"]

log = logging.getLogger(__name__)
settings = app.settings

state = MatchingState(matching_table, settings.matching)


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    state.invalidate()


@app.agent(orders)
async def match_orders(stream: StreamT[bytes]) -> None:
    """Orders as producers sent them: matched here or forwarded to their instrument's partition."""
    async for event in stream.events():
        await _guarded(event, forwarded=False)


@app.agent(routed)
async def match_routed(stream: StreamT[bytes]) -> None:
    """Orders forwarded by ``match_orders``: matched on their instrument's partition."""
    async for event in stream.events():
        await _guarded(event, forwarded=True)


async def _guarded(event: EventT, *, forwarded: bool) -> None:
    started = time.perf_counter()
    message = event.message
    try:
        await handle_message(event, forwarded=forwarded)
    except Exception as exc:  # a bug must not stop the exchange: report, rebuild, go on
        log.exception("failed to process %s", _where(event))
        state.invalidate()
        metrics.orders.labels("error").inc()
        await dlq.send(value=_dlq_record(event, [f"internal error: {exc!r}"]))
    metrics.observe(message.topic, message.partition, message.offset, message.timestamp, started)


async def handle_message(event: EventT, *, forwarded: bool) -> None:
    message = event.message
    position = Position(message.topic, message.partition, message.offset)
    if forwarded:
        envelope = loads(message.value or b"")
        source = Source(*envelope["source"])
        command = decode_order(envelope["order"])
    else:
        source = Source(message.partition, message.offset)
        try:
            command = decode_order(message.value or b"", max_bytes=settings.max_message_bytes)
        except InvalidOrder as exc:
            await _send_invalid(event, exc)
            return
        home = home_partition(command.instrument, settings.partitions)
        if home != message.partition:
            metrics.orders.labels("forwarded").inc()
            await _forward(command, source, home)
            return
    outputs = state.handle(command, source, position)
    metrics.orders.labels("matched").inc()
    metrics.outputs(outputs)
    for output in outputs:
        await by_stream[output.stream].send(key=output.key, value=output.value)


async def _forward(command: Order | Cancel, source: Source, partition: int) -> None:
    envelope = {"source": list(source), "order": encode_order(command)}
    await routed.send(key=command.instrument.encode(), value=dumps(envelope), partition=partition)


async def _send_invalid(event: EventT, exc: InvalidOrder) -> None:
    if exc.order_id is None:
        metrics.orders.labels("dlq").inc()
        metrics.dlq.inc()
        await dlq.send(value=_dlq_record(event, exc.reasons))
        return
    metrics.orders.labels("invalid").inc()
    metrics.rejections.inc()
    report = rejection_report(
        exc.reasons, order_id=exc.order_id, instrument=exc.instrument, account=exc.account
    )
    report["source"] = _source_of(event)
    await events.send(key=exc.account or exc.instrument or "", value=report)


def _source_of(event: EventT) -> dict[str, Any]:
    message = event.message
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


def _where(event: EventT) -> str:
    message = event.message
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _dlq_record(event: EventT, reasons: list[str]) -> dict[str, Any]:
    raw = event.message.value or b""
    limit = settings.max_message_bytes
    return {
        "reason": "; ".join(reasons),
        "reasons": reasons,
        "source": _source_of(event),
        "key": (event.message.key or b"").decode("utf-8", "replace")[:256],
        "value": raw[:limit].decode("utf-8", "replace"),
        "truncated": len(raw) > limit,
        "size": len(raw),
    }
