"""The analytics agents: bars/SMA, window profit and per-account P&L from trades.

::

    successful_trade ──► [compute_bars]   ──► sma ──► [record_bars] ──► tape (bar history)
                     ├─► [compute_profit] ──► profit   (instrument)
                     ├─► [record_trades]  ──► tape (recent trades, last price, volume)
                     └─► [split_fills] ──► fills (account) ──► [compute_pnl] ──► pnl
"""

from __future__ import annotations

import logging
from typing import Any

from faust.types import StreamT

from exchange_app.application import app
from exchange_app.topics import by_stream, fills, sma, trades
from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, fills_of
from tables.declarations import bars_table, positions_table, profit_table, tape_table
from tables.outbox import Output
from tables.tape import TradeTape

__all__ = [
    "bars",
    "compute_bars",
    "compute_pnl",
    "compute_profit",
    "ledger",
    "profits",
    "record_bars",
    "record_trades",
    "split_fills",
    "tape",
]

log = logging.getLogger(__name__)
settings = app.settings

bars = BarsAnalytics(bars_table, settings.bar_seconds, settings.sma_bars)
profits = ProfitAnalytics(profit_table, settings.bar_seconds, settings.sma_bars)
ledger = PnlLedger(positions_table)
tape = TradeTape(tape_table, settings.bar_seconds)


async def _send(outputs: list[Output]) -> None:
    for output in outputs:
        await by_stream[output.stream].send(key=output.key, value=output.value)


def _guard(name: str, value: Any) -> bool:
    if isinstance(value, dict):
        return True
    log.error("%s: skipping a record that is not a JSON object: %r", name, value)
    return False


@app.agent(trades)
async def compute_bars(stream: StreamT[Any]) -> None:
    """Event-time bars of each instrument with every configured SMA."""
    async for trade in stream:
        if _guard("compute_bars", trade):
            await _send(bars.handle(trade))


@app.agent(trades)
async def compute_profit(stream: StreamT[Any]) -> None:
    """The original design's window profit of each instrument, per bar."""
    async for trade in stream:
        if _guard("compute_profit", trade):
            await _send(profits.handle(trade))


@app.agent(trades)
async def split_fills(stream: StreamT[Any]) -> None:
    """Each trade's buy and sell fill, keyed by account (sides without one are skipped)."""
    async for trade in stream:
        if _guard("split_fills", trade):
            for fill in fills_of(trade):
                await fills.send(key=fill["account"], value=fill)


@app.agent(fills)
async def compute_pnl(stream: StreamT[Any]) -> None:
    """FIFO positions and realized/unrealized P&L per account and instrument."""
    async for fill in stream:
        if _guard("compute_pnl", fill):
            await _send(ledger.handle(fill))


@app.agent(trades)
async def record_trades(stream: StreamT[Any]) -> None:
    """The trade tape of each instrument, for the web views."""
    async for trade in stream:
        if _guard("record_trades", trade):
            tape.record_trade(trade)


@app.agent(sma)
async def record_bars(stream: StreamT[Any]) -> None:
    """The recent final bars of each instrument, for the web views."""
    async for bar in stream:
        if _guard("record_bars", bar):
            tape.record_bar(bar)
