"""Analytics state adapters: bars/SMA and window profit per instrument, P&L per account.

Each adapter turns one input (a trade, or one side's fill of a trade) into
outputs through a pure core. The state of a key (an instrument's bars, an
account's position) is kept in memory between batches and stored in the
table, once per batch, as ``{"mark": [seq, leg], "state": ...}``: the mark
of the last input applied (``leg`` tells apart the buy and the sell fill of
one trade). An input at or below the mark is a replay and changes nothing:
its outputs were delivered before the state was written (see
``exchange_app/checkpoint.py``). Adapters take any mapping as their table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchange_app.engine import Side
from exchange_app.engine.bars import Bar, BarWindow
from exchange_app.engine.ledger import Lot, Position
from exchange_app.engine.profit import window_profit
from exchange_app.wire import parse_time

from .transaction import Output, Transaction

__all__ = ["BarsAnalytics", "KeyedState", "PnlLedger", "ProfitAnalytics", "coalesce", "fills_of"]

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


# -- state per key, written once per batch --------------------------------------------


class KeyedState:
    """Decoded states by key, loaded from the table on first use, written back by :meth:`flush`."""

    def __init__(self, table: Mapping[str, Any], decode: Any, encode: Any) -> None:
        self.table = table
        self.decode = decode
        self.encode = encode
        self._cache: dict[str, tuple[list[int] | None, Any]] = {}
        self._dirty: dict[str, int] = {}

    def get(self, key: str) -> tuple[list[int] | None, Any]:
        """``(mark, state)`` of ``key``; the mark is ``None`` for a new key."""
        found = self._cache.get(key)
        if found is None:
            stored = self.table.get(key)
            found = (
                (None, self.decode(None))
                if stored is None
                else (list(stored["mark"]), self.decode(stored["state"]))
            )
            self._cache[key] = found
        return found

    def put(self, key: str, mark: list[int], state: Any, partition: int) -> None:
        self._cache[key] = (mark, state)
        self._dirty[key] = partition

    def flush(self, tx: Transaction) -> None:
        """Write every key changed since the last flush, once, into ``tx``."""
        for key, partition in self._dirty.items():
            mark, state = self._cache[key]
            tx.write(self.table, partition, key, {"mark": mark, "state": self.encode(state)})
        self._dirty.clear()

    def stored(self, key: str) -> Any:
        """The durable state of ``key`` (what the table holds), for read-only views."""
        stored = self.table.get(key)
        return self.decode(None if stored is None else stored["state"])

    def invalidate(self) -> None:
        self._cache.clear()
        self._dirty.clear()


# -- bars and SMA, window profit ------------------------------------------------------


class _BarAnalytics:
    """Shared by the per-instrument bar computations: a :class:`BarWindow` per
    instrument under ``<prefix>:<instrument>``, advanced once per trade ``seq``."""

    prefix = ""

    def __init__(
        self, table: Mapping[str, Any], bar_seconds: int, windows: tuple[int, ...]
    ) -> None:
        self.bar_seconds = bar_seconds
        self.windows = windows
        self.state = KeyedState(
            table, lambda stored: _decode_window(stored, bar_seconds, windows), _encode_window
        )

    def handle(self, trade: dict[str, Any], partition: int, tx: Transaction) -> None:
        instrument = trade["instrument"]
        moment, price, quantity, seq = _trade_mark(trade)
        key = f"{self.prefix}:{instrument}"
        mark, window = self.state.get(key)
        if mark is not None and mark >= [seq, 0]:
            return  # a re-sent trade
        window, updates = window.apply(moment, price, quantity, seq)
        self.state.put(key, [seq, 0], window, partition)
        for bar, final in updates:
            tx.send(self.output(instrument, window, bar, final, partition))

    def flush(self, tx: Transaction) -> None:
        self.state.flush(tx)

    def invalidate(self) -> None:
        self.state.invalidate()

    def output(
        self, instrument: str, window: BarWindow, bar: Bar, final: bool, partition: int | None
    ) -> Output:
        raise NotImplementedError

    def window(self, instrument: str) -> BarWindow:
        """The instrument's durable bar window."""
        return self.state.stored(f"{self.prefix}:{instrument}")  # type: ignore[no-any-return]


class BarsAnalytics(_BarAnalytics):
    """Trades of an instrument → bar updates with one SMA per window (``sma`` records)."""

    prefix = "b"

    def output(
        self, instrument: str, window: BarWindow, bar: Bar, final: bool, partition: int | None
    ) -> Output:
        return Output(SMA, instrument, self.record(instrument, window, bar, final), partition)

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

    def output(
        self, instrument: str, window: BarWindow, bar: Bar, final: bool, partition: int | None
    ) -> Output:
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
        return Output(PROFIT, instrument, record, partition)


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
    Keys: ``p:<account>:<instrument>`` a position, ``a:<account>`` the instruments
    the account has traded.
    """

    def __init__(self, table: Mapping[str, Any]) -> None:
        self.table = table
        self.state = KeyedState(table, _decode_position, _encode_position)
        self._indexes: dict[str, list[str]] = {}

    def handle(self, fill: dict[str, Any], partition: int, tx: Transaction) -> None:
        account, instrument = fill["account"], fill["instrument"]
        price, quantity = Decimal(fill["price"]), Decimal(fill["quantity"])
        key, mark = f"p:{account}:{instrument}", [int(fill["seq"]), int(fill["leg"])]
        current, position = self.state.get(key)
        if current is not None and current >= mark:
            return  # a re-sent fill
        position = position.fill(Side(fill["side"]), quantity, price)
        self.state.put(key, mark, position, partition)
        tx.send(Output(PNL, account, pnl_record(account, instrument, position, price, fill)))
        instruments = self._indexes.get(account)
        if instruments is None:
            instruments = self._indexes[account] = self.instruments(account)
        if instrument not in instruments:
            instruments.append(instrument)
            instruments.sort()
            tx.write(self.table, partition, f"a:{account}", list(instruments))

    def flush(self, tx: Transaction) -> None:
        self.state.flush(tx)

    def invalidate(self) -> None:
        self.state.invalidate()
        self._indexes.clear()

    def position(self, account: str, instrument: str) -> Position:
        """The durable position (read-only views)."""
        return self.state.stored(f"p:{account}:{instrument}")  # type: ignore[no-any-return]

    def instruments(self, account: str) -> list[str]:
        """The instruments ``account`` has traded, from a per-account index."""
        return list(self.table.get(f"a:{account}") or [])


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


def coalesce(outputs: list[Output]) -> list[Output]:
    """Drop the non-final records a later record of the same key supersedes within a batch.

    ``sma``/``profit`` keep every ``final`` record and the last record per
    instrument; ``pnl`` keeps the last record per account and instrument.
    Other streams pass unchanged. The order of what is kept does not change.
    """
    last: dict[tuple[str, str, str], int] = {}
    for index, output in enumerate(outputs):
        key = _coalescing_key(output)
        if key is not None:
            last[key] = index
    kept = []
    for index, output in enumerate(outputs):
        key = _coalescing_key(output)
        if key is None or last[key] == index or output.value.get("final"):
            kept.append(output)
    return kept


def _coalescing_key(output: Output) -> tuple[str, str, str] | None:
    if output.stream in (SMA, PROFIT):
        return (output.stream, output.value["instrument"], "")
    if output.stream == PNL:
        return (output.stream, output.value["account"], output.value["instrument"])
    return None
