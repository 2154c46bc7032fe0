"""The original design's instrument window profit.

For a bar: ``opening_price`` is the first trade price of the oldest non-empty
bar in the SMA window, ``closing_price`` is the SMA, and ``profit`` is their
difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .bars import Bar, BarWindow

__all__ = ["WindowProfit", "window_profit"]


@dataclass(frozen=True, slots=True)
class WindowProfit:
    opening_price: Decimal
    closing_price: Decimal

    @property
    def profit(self) -> Decimal:
        return self.closing_price - self.opening_price


def window_profit(window: BarWindow, bar: Bar, n: int) -> WindowProfit:
    bars = window.window_bars(bar, n)
    return WindowProfit(bars[0].open, window.sma(bar, n))
