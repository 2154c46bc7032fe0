"""The Faust agents. Thin: decode, call the pure core through a state adapter, send."""

from .matching import match_orders, match_routed

__all__ = ["match_orders", "match_routed"]
