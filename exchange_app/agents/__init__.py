"""The Faust agents. Thin: decode, call the pure core through a state adapter, send."""

from .matching import match_orders

__all__ = ["match_orders"]
