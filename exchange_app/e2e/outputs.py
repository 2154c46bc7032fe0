"""Reading the exchange's output topics for the end-to-end benchmark.

All times are the Kafka timestamps (ms) of the output records: the moment the
worker produced them, whatever the pace of the reader.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys

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


async def trade_delays(trades: TopicReader, sent_at: dict[int, float]) -> list[float]:
    """Read ``successful_trade`` to its end; for each trade (once per instrument and seq)
    whose aggressor was sent at ``sent_at[id]`` (s), its timestamp minus that, in ms,
    in ascending order."""
    delays: dict[tuple[str, int], float] = {}
    while not await trades.caught_up():
        for record in await trades.read():
            trade = json.loads(record.value)
            side = "buy_order_id" if trade.get("aggressor") == "BUY" else "sell_order_id"
            sent = sent_at.get(trade.get(side))  # type: ignore[arg-type]
            if sent is not None:
                key = (trade["instrument"], int(trade["seq"]))
                delays.setdefault(key, record.timestamp - sent * 1000)
    return sorted(delays.values())


async def copy_delays(copies: TopicReader, sent_at: dict[int, float]) -> list[float]:
    """Read the pass-through's copies to their end; for each order sent at ``sent_at[id]``
    (s), its copy's timestamp minus that, in ms, in ascending order."""
    delays: dict[int, float] = {}
    while not await copies.caught_up():
        for record in await copies.read():
            order_id = json.loads(record.value).get("id")
            sent = sent_at.get(order_id)  # type: ignore[arg-type]
            if sent is not None:
                delays.setdefault(order_id, record.timestamp - sent * 1000)
    return sorted(delays.values())
