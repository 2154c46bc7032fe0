"""The pure cores of the exchange: no faust, no asyncio, no I/O, no clock."""

from .errors import (
    DuplicateOrderId,
    ExchangeError,
    InvalidListing,
    InvalidOrder,
    OrderRejected,
    UnknownOrder,
    UnsupportedOrder,
)
from .listing import Listing, ListingStatus, listing_reasons
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
    "InvalidListing",
    "InvalidOrder",
    "Listing",
    "ListingStatus",
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
    "listing_reasons",
    "policy_named",
]
