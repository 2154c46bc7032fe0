"""Event-time bars and the simple moving average over them.

A bar is one bucket of ``bar_seconds`` of an instrument's trades, buckets
aligned to UTC midnight. The state of an instrument is a :class:`BarWindow`:
the open bar plus the closed non-empty bars the SMA windows still need.
Trades are applied in trade sequence; a trade stamped earlier than the open
bar (its aggressor's clock was behind) counts in the open bar. The arithmetic
holds at the calendar's ends (years 1 and 9999) instead of overflowing, although
the wire format accepts a far narrower range (``wire.EARLIEST``..``wire.LATEST``).

SMA over ``n`` bars at bar *b*: the mean VWAP of the non-empty bars among the
``n`` buckets ending at *b*; an empty bucket contributes nothing (pandas
``resample(...).rolling(n, min_periods=1).mean()``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

__all__ = ["Bar", "BarWindow", "bucket_start"]


def _shifted(moment: datetime, seconds: int) -> datetime:
    """``moment`` plus ``seconds``, held at the calendar's ends instead of overflowing."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return (datetime.max if seconds > 0 else datetime.min).replace(tzinfo=moment.tzinfo)


def bucket_start(moment: datetime, bar_seconds: int) -> datetime:
    """The start of the bucket holding ``moment``: buckets restart at each UTC midnight."""
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    into_day = int((moment - midnight).total_seconds())
    return midnight + timedelta(seconds=into_day - into_day % bar_seconds)


@dataclass(frozen=True, slots=True)
class Bar:
    """Open/high/low/close, volume, VWAP parts and counts of one bucket."""

    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    notional: Decimal  # sum(price * quantity)
    price_sum: Decimal  # sum(price), a column of the original sma_calc.csv
    count: int
    first_seq: int
    last_seq: int

    @classmethod
    def first(
        cls, start: datetime, end: datetime, price: Decimal, quantity: Decimal, seq: int
    ) -> Bar:
        return cls(
            start, end, price, price, price, price, quantity, price * quantity, price, 1, seq, seq
        )

    def add(self, price: Decimal, quantity: Decimal, seq: int) -> Bar:
        return replace(
            self,
            high=max(self.high, price),
            low=min(self.low, price),
            close=price,
            volume=self.volume + quantity,
            notional=self.notional + price * quantity,
            price_sum=self.price_sum + price,
            count=self.count + 1,
            last_seq=seq,
        )

    @property
    def vwap(self) -> Decimal:
        return self.notional / self.volume


@dataclass(frozen=True, slots=True)
class BarWindow:
    """An instrument's open bar and the closed bars its longest window needs."""

    bar_seconds: int
    windows: tuple[int, ...]
    open_bar: Bar | None = None
    closed: tuple[Bar, ...] = ()  # oldest first, non-empty bars only

    def apply(
        self, moment: datetime, price: Decimal, quantity: Decimal, seq: int
    ) -> tuple[BarWindow, list[tuple[Bar, bool]]]:
        """Add one trade; return the new window and the bar updates ``(bar, final)``.

        A trade in a later bucket first closes the open bar (``final=True``).
        """
        start = bucket_start(moment, self.bar_seconds)
        current = self.open_bar
        if current is not None and start <= current.start:
            updated = replace(self, open_bar=current.add(price, quantity, seq))
            return updated, [(updated.open_bar, False)]  # type: ignore[list-item]
        end = _shifted(start, self.bar_seconds)
        opened = Bar.first(start, end, price, quantity, seq)
        closed: tuple[Bar, ...] = ()
        if current is not None:
            # keep what the windows of the closing bar need: the open bar's are a subset
            horizon = _shifted(current.start, -self.bar_seconds * (max(self.windows) - 1))
            closed = tuple(bar for bar in (*self.closed, current) if bar.start >= horizon)
        updates = [] if current is None else [(current, True)]
        updates.append((opened, False))
        return replace(self, open_bar=opened, closed=closed), updates

    def window_bars(self, bar: Bar, n: int) -> list[Bar]:
        """The non-empty bars among the ``n`` buckets ending with ``bar``, oldest first."""
        horizon = _shifted(bar.start, -self.bar_seconds * (n - 1))
        bars = [b for b in self.closed if horizon <= b.start < bar.start]
        return [*bars, bar]

    def sma(self, bar: Bar, n: int) -> Decimal:
        bars = self.window_bars(bar, n)
        return sum((b.vwap for b in bars), Decimal(0)) / len(bars)
