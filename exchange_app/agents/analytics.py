"""The analytics agents: bars/SMA, window profit, the tape and per-account P&L, per batch.

::

    trades-batched[p] ──► [analyse_trades] ──► sma, profit    (instrument, partition p)
    (a matching batch's       │        └─► tape table     (recent trades, final bars)
     trades, packed)          └─► fills[q] ──► [compute_pnl] ──► pnl   (account)
                                  (one message per batch and partition q)

Within a batch, an ``sma``/``profit`` record that a later one of the same
instrument supersedes is dropped unless it is ``final``, and so is a ``pnl``
record superseded for the same account and instrument (:func:`coalesce`).

While they keep up, both agents take their input at most once per
``EXCHANGE_ANALYTICS_INTERVAL_MS`` (250; :func:`~.batches.rest`): a batch per
matching batch would cost the broker a fetch and the worker a transaction each,
for a handful of trades. So under a steady flow the ``sma``, ``profit`` and
``pnl`` records of a quarter of a second come out together, and a ``pnl``
record up to about two intervals after its trade. Such a batch is tens of
milliseconds of work: it hands the worker's loop back every millisecond
(:class:`~exchange_app.sharing.LoopShare`), so that matching is not held up.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from faust.types import EventT, StreamT

from exchange_app.application import app
from exchange_app.packing import PackingError, unpack
from exchange_app.routing import key_partition
from exchange_app.sharing import LoopShare
from exchange_app.topics import fills, trade_batches
from exchange_app.wire import dumps, loads
from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, coalesce, fills_of
from tables.declarations import bars_table, positions_table, profit_table, tape_table
from tables.tape import TradeTape
from tables.transaction import Output, Transaction

from .batches import batches, complete, where

__all__ = ["analyse_trades", "bars", "compute_pnl", "ledger", "profits", "tape"]

log = logging.getLogger(__name__)
settings = app.settings

bars = BarsAnalytics(bars_table, settings.bar_seconds, settings.sma_bars)
profits = ProfitAnalytics(profit_table, settings.bar_seconds, settings.sma_bars)
ledger = PnlLedger(positions_table)
tape = TradeTape(tape_table, settings.bar_seconds)


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    # Faust assigns only after every event taken was acked (``stream_wait_empty``),
    # so this never runs while a batch is computed, even as it hands the loop back.
    for adapter in (bars, profits, ledger, tape):
        adapter.invalidate()


def _trades(event: EventT) -> list[dict[str, Any]]:
    """The trades packed in ``event``; a message that is not a packed batch is skipped."""
    try:
        return [loads(record.value or b"") for record in unpack(event.message.value or b"")]
    except (PackingError, ValueError) as exc:
        log.error("analyse_trades: skipping %s, not packed trades: %s", where(event), exc)
        return []


@app.agent(trade_batches)
async def analyse_trades(stream: StreamT[Any]) -> None:
    """Bars with every SMA, the window profit, the tape, and each trade's fills by account."""
    async for events in batches(stream, every_ms=settings.analytics_interval_ms):
        await _analyse(events)


async def _analyse(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    share = LoopShare()
    tx = Transaction()
    by_account: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        partition = event.message.partition
        for trade in _trades(event):
            bars.handle(trade, partition, tx)
            profits.handle(trade, partition, tx)
            tape.record_trade(trade, partition, tx)
            for fill in fills_of(trade):
                by_account[key_partition(fill["account"], settings.partitions)].append(fill)
        await share.turn()
    for adapter in (bars, profits, tape):
        adapter.flush(tx)
    tx.outputs = coalesce(tx.outputs)
    for output in tx.outputs:
        if output.stream == "sma" and output.partition is not None:
            tape.record_bar(output.value, output.partition, tx)
    for partition, batch in by_account.items():
        tx.send(Output("fills", None, dumps({"fills": batch}), partition))
    await complete(events, tx, started, share=share)


@app.agent(fills)
async def compute_pnl(stream: StreamT[bytes]) -> None:
    """FIFO positions and realized/unrealized P&L per account and instrument."""
    async for events in batches(stream, every_ms=settings.analytics_interval_ms):
        await _compute_pnl(events)


async def _compute_pnl(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    share = LoopShare()
    tx = Transaction()
    for event in events:
        partition = event.message.partition
        for fill in loads(event.message.value or b"")["fills"]:
            ledger.handle(fill, partition, tx)
        await share.turn()
    ledger.flush(tx)
    tx.outputs = coalesce(tx.outputs)
    await complete(events, tx, started, share=share)
