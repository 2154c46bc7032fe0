"""The pure cores of the exchange: no faust, no asyncio, no I/O, no clock."""

from .errors import (
    DuplicateOrderId,
    ExchangeError,
    InvalidOrder,
    OrderRejected,
    UnknownOrder,
    UnsupportedOrder,
)
from .matching import POLICIES, ExactPolicy, MatchingPolicy, PriceTimePolicy, policy_named
from .order_book import OrderBook
from .types import (
    Cancel,
    Execution,
    Fill,
    Order,
    OrderType,
    RestingOrder,
    Side,
    Status,
    TimeInForce,
)

__all__ = [
    "POLICIES",
    "Cancel",
    "DuplicateOrderId",
    "ExactPolicy",
    "ExchangeError",
    "Execution",
    "Fill",
    "InvalidOrder",
    "MatchingPolicy",
    "Order",
    "OrderBook",
    "OrderRejected",
    "OrderType",
    "PriceTimePolicy",
    "RestingOrder",
    "Side",
    "Status",
    "TimeInForce",
    "UnknownOrder",
    "UnsupportedOrder",
    "policy_named",
]
