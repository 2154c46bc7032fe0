"""Analytics state adapters: bars/SMA and window profit per instrument, P&L per account.

Each adapter turns one input (a trade, or one side's fill of a trade) into
outputs through a pure core, with the state of its key kept exactly once by
:class:`SequencedState`. Adapters take any mutable mapping as their table.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchange_app.engine import Side
from exchange_app.engine.bars import Bar, BarWindow
from exchange_app.engine.ledger import Lot, Position
from exchange_app.engine.profit import window_profit
from exchange_app.wire import parse_time

from .outbox import Output, SequencedState

__all__ = ["BarsAnalytics", "PnlLedger", "ProfitAnalytics", "fills_of"]

SMA, PROFIT, PNL = "sma", "profit", "pnl"


# -- codecs of the pure state ---------------------------------------------------------

_BAR_DECIMALS = ("open", "high", "low", "close", "volume", "notional", "price_sum")


def _encode_bar(bar: Bar) -> dict[str, Any]:
    return {
        "start": bar.start.isoformat(),
        "end": bar.end.isoformat(),
        **{name: getattr(bar, name) for name in _BAR_DECIMALS},
        "count": bar.count,
        "first_seq": bar.first_seq,
        "last_seq": bar.last_seq,
    }


def _decode_bar(value: dict[str, Any]) -> Bar:
    return Bar(
        start=parse_time(value["start"]),
        end=parse_time(value["end"]),
        **{name: Decimal(value[name]) for name in _BAR_DECIMALS},
        count=int(value["count"]),
        first_seq=int(value["first_seq"]),
        last_seq=int(value["last_seq"]),
    )


def _encode_window(window: BarWindow) -> dict[str, Any]:
    return {
        "open": None if window.open_bar is None else _encode_bar(window.open_bar),
        "closed": [_encode_bar(bar) for bar in window.closed],
    }


def _decode_window(
    value: dict[str, Any] | None, bar_seconds: int, windows: tuple[int, ...]
) -> BarWindow:
    if value is None:
        return BarWindow(bar_seconds, windows)
    open_bar = None if value["open"] is None else _decode_bar(value["open"])
    closed = tuple(_decode_bar(bar) for bar in value["closed"])
    return BarWindow(bar_seconds, windows, open_bar, closed)


def _trade_mark(trade: dict[str, Any]) -> tuple[datetime, Decimal, Decimal, int]:
    return (
        parse_time(trade["timestamp"]),
        Decimal(trade["price"]),
        Decimal(trade["quantity"]),
        int(trade["seq"]),
    )


# -- bars and SMA, window profit ------------------------------------------------------


class _BarAnalytics:
    """Shared by the per-instrument bar computations: a :class:`BarWindow` per
    instrument under ``<prefix>:<instrument>``, advanced once per trade ``seq``."""

    prefix = ""

    def __init__(
        self, table: MutableMapping[str, Any], bar_seconds: int, windows: tuple[int, ...]
    ) -> None:
        self.state = SequencedState(table)
        self.bar_seconds = bar_seconds
        self.windows = windows

    def handle(self, trade: dict[str, Any]) -> list[Output]:
        instrument = trade["instrument"]
        moment, price, quantity, seq = _trade_mark(trade)

        def step(stored: Any) -> tuple[Any, list[Output]]:
            window = _decode_window(stored, self.bar_seconds, self.windows)
            window, updates = window.apply(moment, price, quantity, seq)
            outputs = [self.output(instrument, window, bar, final) for bar, final in updates]
            return _encode_window(window), outputs

        return self.state.apply(f"{self.prefix}:{instrument}", [seq, 0], step)

    def output(self, instrument: str, window: BarWindow, bar: Bar, final: bool) -> Output:
        raise NotImplementedError

    def window(self, instrument: str) -> BarWindow:
        stored = self.state.state(f"{self.prefix}:{instrument}")
        return _decode_window(stored, self.bar_seconds, self.windows)


class BarsAnalytics(_BarAnalytics):
    """Trades of an instrument → bar updates with one SMA per window (``sma`` records)."""

    prefix = "b"

    def output(self, instrument: str, window: BarWindow, bar: Bar, final: bool) -> Output:
        return Output(SMA, instrument, self.record(instrument, window, bar, final))

    def record(self, instrument: str, window: BarWindow, bar: Bar, final: bool) -> dict[str, Any]:
        return {
            "instrument": instrument,
            "bar_start": bar.start.isoformat(),
            "bar_end": bar.end.isoformat(),
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
            "vwap": bar.vwap,
            "notional": bar.notional,
            "price_sum": bar.price_sum,
            "trade_count": bar.count,
            "sma": {str(n): window.sma(bar, n) for n in self.windows},
            "final": final,
            "last_seq": bar.last_seq,
        }


class ProfitAnalytics(_BarAnalytics):
    """Trades of an instrument → the original window profit per bar (``profit`` records).

    Uses the first configured SMA window.
    """

    prefix = "w"

    def output(self, instrument: str, window: BarWindow, bar: Bar, final: bool) -> Output:
        n = self.windows[0]
        figures = window_profit(window, bar, n)
        record = {
            "instrument": instrument,
            "bar_start": bar.start.isoformat(),
            "window": n,
            "opening_price": figures.opening_price,
            "closing_price": figures.closing_price,
            "profit": figures.profit,
            "final": final,
            "last_seq": bar.last_seq,
        }
        return Output(PROFIT, instrument, record)


# -- P&L -------------------------------------------------------------------------------


def fills_of(trade: dict[str, Any]) -> list[dict[str, Any]]:
    """The buyer's and the seller's fill of a trade; sides without an account are skipped."""
    fills = []
    for leg, (side, account) in enumerate(
        (("BUY", trade.get("buyer")), ("SELL", trade.get("seller")))
    ):
        if account:
            fills.append(
                {
                    "account": account,
                    "instrument": trade["instrument"],
                    "side": side,
                    "quantity": trade["quantity"],
                    "price": trade["price"],
                    "seq": trade["seq"],
                    "leg": leg,
                    "trade_id": trade["trade_id"],
                    "timestamp": trade["timestamp"],
                }
            )
    return fills


def _encode_position(position: Position) -> dict[str, Any]:
    return {
        "lots": [[lot.quantity, lot.price] for lot in position.lots],
        "realized": position.realized,
    }


def _decode_position(value: dict[str, Any] | None) -> Position:
    if value is None:
        return Position()
    lots = tuple(Lot(Decimal(q), Decimal(p)) for q, p in value["lots"])
    return Position(lots, Decimal(value["realized"]))


class PnlLedger:
    """Fills of an account → FIFO positions and P&L per instrument (``pnl`` records).

    Unrealized P&L is marked to the fill's trade price, the instrument's last.
    """

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.state = SequencedState(table)

    def handle(self, fill: dict[str, Any]) -> list[Output]:
        account, instrument = fill["account"], fill["instrument"]
        price, quantity = Decimal(fill["price"]), Decimal(fill["quantity"])

        def step(stored: Any) -> tuple[Any, list[Output]]:
            position = _decode_position(stored).fill(Side(fill["side"]), quantity, price)
            return _encode_position(position), [
                Output(PNL, account, pnl_record(account, instrument, position, price, fill))
            ]

        outputs = self.state.apply(
            f"p:{account}:{instrument}", [int(fill["seq"]), int(fill["leg"])], step
        )
        instruments = self.instruments(account)
        if instrument not in instruments:
            self.state.table[f"a:{account}"] = sorted([*instruments, instrument])
        return outputs

    def position(self, account: str, instrument: str) -> Position:
        return _decode_position(self.state.state(f"p:{account}:{instrument}"))

    def instruments(self, account: str) -> list[str]:
        """The instruments ``account`` has traded, from a per-account index."""
        return list(self.state.table.get(f"a:{account}") or [])


def pnl_record(
    account: str,
    instrument: str,
    position: Position,
    mark: Decimal,
    fill: dict[str, Any] | None = None,
) -> dict[str, Any]:
    unrealized = position.unrealized(mark)
    return {
        "account": account,
        "instrument": instrument,
        "position": position.quantity,
        "average_cost": position.average_cost,
        "cost_basis": position.cost_basis,
        "realized": position.realized,
        "unrealized": unrealized,
        "total": position.realized + unrealized,
        "mark_price": mark,
        "trade_id": None if fill is None else fill["trade_id"],
        "seq": None if fill is None else fill["seq"],
    }
