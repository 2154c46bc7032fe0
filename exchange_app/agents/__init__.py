"""The Faust agents. Thin: decode, call the pure core through a state adapter, checkpoint."""

from .analytics import analyse_trades, compute_pnl
from .matching import match_orders, match_routed

__all__ = ["analyse_trades", "compute_pnl", "match_orders", "match_routed"]
