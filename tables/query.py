"""What the agents' state answers to readers: plain values, never the live objects.

The web views get a :class:`StateQuery`, not the books, windows, ledger and
tape themselves: every method builds new dicts and lists, so nothing a reader
holds can change the agents' state, and no reader can rebuild or replace the
books. While the books are being restored every books question raises
:class:`NotReady` (a view answers 503).

Market answers carry no account and no order id: the orders at the top of a
book are quantities and times, trades are :func:`~exchange_app.wire.public_trade`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from exchange_app.engine import OrderBook
from exchange_app.engine.order_book import BookSide
from exchange_app.engine.profit import window_profit
from exchange_app.wire import public_trade

from .analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, pnl_record
from .matching import MatchingState
from .tape import TradeTape

__all__ = ["NotReady", "StateQuery"]

#: Resting orders listed at the best level of each side.
TOP_ORDERS = 10


class NotReady(Exception):
    """The books are being restored: ask again shortly."""


class StateQuery:
    """Read-only questions to one worker's matching and analytics state.

    The state objects are held in slots behind names a view has no business with; every
    answer is built anew from them.
    """

    __slots__ = ("_bar_windows", "_ledger", "_matching", "_profit_windows", "_tape")

    def __init__(
        self,
        matching: MatchingState,
        bar_windows: BarsAnalytics,
        profit_windows: ProfitAnalytics,
        ledger: PnlLedger,
        tape: TradeTape,
    ) -> None:
        self._matching = matching
        self._bar_windows = bar_windows
        self._profit_windows = profit_windows
        self._ledger = ledger
        self._tape = tape

    def _books(self) -> dict[str, OrderBook]:
        if self._matching.stale:
            raise NotReady("the order books are being restored")
        return self._matching.books

    def knows(self, instrument: str) -> bool:
        """Whether this worker has a book or trades of ``instrument``."""
        return instrument in self._books() or self._tape.head(instrument) is not None

    # -- market data ------------------------------------------------------------------------

    def instrument_names(self) -> list[str]:
        """The instruments with a book on this worker, by name."""
        return sorted(self._books())

    def instruments(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Each local instrument (of ``names``, default all), by name: last price, volume,
        trades, best bid and ask, depth."""
        books = self._books()
        chosen = sorted(books) if names is None else [name for name in names if name in books]
        return [self._instrument(name) for name in chosen]

    def last_prices(self, instruments: Iterable[str]) -> dict[str, Decimal | None]:
        """The last trade price of each of ``instruments`` whose book is on this worker."""
        books = self._books()
        return {
            name: (self._tape.head(name) or {}).get("last_price")
            for name in instruments
            if name in books
        }

    def _instrument(self, instrument: str) -> dict[str, Any]:
        book = self._books()[instrument]
        head = self._tape.head(instrument) or {}
        return {
            "instrument": instrument,
            "last_price": head.get("last_price"),
            "volume": head.get("volume", Decimal(0)),
            "trades": head.get("trades", 0),
            "best_bid": book.best_bid(),
            "best_ask": book.best_ask(),
            "resting_orders": len(book),
        }

    def orderbook(self, instrument: str, depth: int) -> dict[str, Any] | None:
        """``depth`` levels a side and the orders at the top; None for an unknown book."""
        book = self._books().get(instrument)
        if book is None:
            return None
        return {
            "instrument": instrument,
            "best_bid": book.best_bid(),
            "best_ask": book.best_ask(),
            "bids": _levels(book.bids, depth),
            "asks": _levels(book.asks, depth),
            "top": {"bids": _top(book.bids), "asks": _top(book.asks)},
            "resting_orders": len(book),
            "next_seq": book.next_seq,
        }

    def trades(self, instrument: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` trades, newest first, without who traded."""
        return [public_trade(trade) for trade in self._tape.recent(instrument, limit)]

    def bars(self, instrument: str) -> dict[str, Any]:
        """Recent final bars, the open bar and every SMA."""
        window = self._bar_windows.window(instrument)
        current = window.open_bar
        return {
            "bar_seconds": self._bar_windows.bar_seconds,
            "windows": list(self._bar_windows.windows),
            "bars": copy.deepcopy(
                self._tape.history(instrument, current.start.isoformat() if current else None)
            ),
            "open": None
            if current is None
            else self._bar_windows.record(instrument, window, current, False),
        }

    def profit(self, instrument: str) -> dict[str, Any]:
        """Window profit of the open and of the last closed bar."""
        window = self._profit_windows.window(instrument)
        n = self._profit_windows.windows[0]

        def record(bar: Any) -> dict[str, Any] | None:
            if bar is None:
                return None
            figures = window_profit(window, bar, n)
            return {
                "bar_start": bar.start.isoformat(),
                "opening_price": figures.opening_price,
                "closing_price": figures.closing_price,
                "profit": figures.profit,
            }

        return {
            "window": n,
            "current": record(window.open_bar),
            "previous": record(window.closed[-1] if window.closed else None),
        }

    # -- accounts ---------------------------------------------------------------------------

    def positions(self, account: str) -> list[str] | None:
        """The instruments ``account`` has traded, by name; None for an unknown account."""
        return sorted(self._ledger.instruments(account)) or None

    def account(
        self,
        account: str,
        marks: Mapping[str, Decimal | None],
        instruments: Iterable[str] | None = None,
    ) -> dict[str, Any] | None:
        """Positions and P&L of ``account`` in ``instruments`` (default: all it traded) at
        ``marks`` (last prices by instrument; an instrument without one is marked at the
        account's last fill), the totals over those; None if the account is unknown (asked
        for all its positions)."""
        if instruments is None:
            instruments = self.positions(account)
            if instruments is None:
                return None
        zero = Decimal(0)
        totals = {"realized": zero, "unrealized": zero, "total": zero}
        positions = []
        for instrument in instruments:
            position = self._ledger.position(account, instrument)
            mark = marks.get(instrument)
            if mark is None:
                mark = position.lots[-1].price if position.lots else zero
            record = pnl_record(account, instrument, position, Decimal(mark))
            positions.append(record)
            for key in totals:
                totals[key] += record[key]
        return {"account": account, "positions": positions, **totals}


def _levels(side: BookSide, depth: int) -> list[dict[str, Any]]:
    return [
        {"price": level.price, "quantity": level.quantity, "orders": level.count}
        for level in side.depth(depth)
    ]


def _top(side: BookSide) -> list[dict[str, Any]]:
    level = side.best()
    if level is None:
        return []
    return [
        {"quantity": r.remaining, "timestamp": r.order.timestamp.isoformat()}
        for r in list(level.live_orders())[:TOP_ORDERS]
    ]
