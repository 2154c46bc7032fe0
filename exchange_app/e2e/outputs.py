"""Reading the exchange's output topics for the end-to-end benchmark.

All times are the Kafka timestamps (ms) of the output records: the moment the
worker produced them, whatever the pace of the reader.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
from collections.abc import Callable
from typing import Any

from .topic_io import TopicReader
from .watch import Watch

__all__ = ["analytics_caught_up", "copy_delays", "first_reports", "trade_delays"]


async def first_reports(
    events: TopicReader, first_id: int, count: int, watch: Watch, *, probe: bool = False
) -> tuple[int, int]:
    """Read ``order_events`` until each of ``count`` orders from ``first_id`` on has a
    report; the timestamps of the first report and of the last order's first report.

    ``probe``: wait until the topic holds ``count`` records before reading any, so
    that the reader takes no CPU from the worker while it drains.
    """
    seen = bytearray(count)
    missing, first, last = count, sys.maxsize, 0
    if probe:
        while (written := await events.written()) < count:
            watch.check(written)
            await asyncio.sleep(0.5)
    while missing:
        records = await events.read(500)
        for record in records:
            first = min(first, record.timestamp)
            order_id = json.loads(record.value or b"{}").get("order_id")
            i = order_id - first_id if isinstance(order_id, int) else -1
            if 0 <= i < count and not seen[i]:
                seen[i] = 1
                missing -= 1
                last = max(last, record.timestamp)
        if not records:
            watch.check(count - missing)
    return first, last


async def analytics_caught_up(trades: TopicReader, sma: TopicReader, watch: Watch) -> int | None:
    """When the last instrument's ``sma`` reached the ``seq`` of its last trade (the
    timestamp of that sma record); ``None`` without trades."""
    last_seq: dict[str, int] = {}
    # per instrument: each new highest sma last_seq, and when it arrived
    reached: dict[str, list[tuple[int, int]]] = {}
    while True:
        while not await trades.caught_up():
            for record in await trades.read():
                trade = json.loads(record.value)
                instrument, seq = trade["instrument"], int(trade["seq"])
                last_seq[instrument] = max(last_seq.get(instrument, 0), seq)
        behind = [i for i, seq in last_seq.items() if reached.get(i, [(0, 0)])[-1][0] < seq]
        if not behind:
            return max(
                (
                    steps[bisect.bisect_left(steps, (last_seq[i], 0))][1]
                    for i, steps in reached.items()
                    if i in last_seq
                ),
                default=None,
            )
        records = await sma.read(500)
        for record in records:
            bar = json.loads(record.value)
            steps = reached.setdefault(str(bar.get("instrument")), [(0, 0)])
            if int(bar.get("last_seq", 0)) > steps[-1][0]:
                steps.append((int(bar["last_seq"]), record.timestamp))
        watch.check(sum(len(steps) for steps in reached.values()))


async def _delays(
    reader: TopicReader, sent_at: dict[int, float], origin: Callable[[dict[str, Any]], Any]
) -> list[float]:
    """Read ``reader`` to its end; per record ``origin`` names (once per name, the first
    copy counts) as ``(name, order id)``, its timestamp minus ``sent_at[order id]`` (s), in
    ms, in ascending order."""
    delays: dict[Any, float] = {}
    while not await reader.caught_up():
        for record in await reader.read():
            name, order_id = origin(json.loads(record.value))
            sent = sent_at.get(order_id)
            if sent is not None:
                delays.setdefault(name, record.timestamp - sent * 1000)
    return sorted(delays.values())


async def trade_delays(trades: TopicReader, sent_at: dict[int, float]) -> list[float]:
    """Each trade of ``successful_trade`` (once per instrument and seq): its timestamp minus
    the send time of its aggressing order."""

    def origin(trade: dict[str, Any]) -> tuple[Any, Any]:
        side = "buy_order_id" if trade.get("aggressor") == "BUY" else "sell_order_id"
        return (trade["instrument"], int(trade["seq"])), trade.get(side)

    return await _delays(trades, sent_at, origin)


async def copy_delays(copies: TopicReader, sent_at: dict[int, float]) -> list[float]:
    """Each order's copy made by the pass-through: its timestamp minus the order's send time."""
    return await _delays(copies, sent_at, lambda order: (order.get("id"), order.get("id")))
