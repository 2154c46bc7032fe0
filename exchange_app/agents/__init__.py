"""The Faust agents. Thin: decode, call the pure core through a state adapter, send."""

from .analytics import (
    compute_bars,
    compute_pnl,
    compute_profit,
    record_bars,
    record_trades,
    split_fills,
)
from .matching import match_orders, match_routed

__all__ = [
    "compute_bars",
    "compute_pnl",
    "compute_profit",
    "match_orders",
    "match_routed",
    "record_bars",
    "record_trades",
    "split_fills",
]
