"""Reference data: what an instrument trades in, and the check of an order against it.

An instrument trades only while it is listed. Its listing fixes the tick size
(the step of its prices), the lot size (the step of its quantities) and the
price band (how far in percent from the last trade price a limit price may be;
stored and shown, enforced by a later rule). A delisted instrument takes no new
orders, but its resting orders may still be cancelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .errors import InvalidListing
from .types import Order

__all__ = [
    "MAX_BAND_PCT",
    "MAX_STEP",
    "MIN_STEP",
    "SYMBOL",
    "Listing",
    "ListingStatus",
    "listing_reasons",
]

#: An instrument's symbol (``wire.py`` takes the same in orders).
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,15}")
#: The finest tick or lot: prices and quantities carry at most 8 decimals (``wire.py``).
MIN_STEP = Decimal("1e-8")
#: The coarsest tick or lot: the largest price or quantity an order may carry.
MAX_STEP = Decimal("1e12")
#: The widest price band, in percent of the last trade price.
MAX_BAND_PCT = Decimal(100)


class ListingStatus(StrEnum):
    LISTED = "LISTED"
    DELISTED = "DELISTED"


def _step_problems(name: str, value: Decimal) -> list[str]:
    if not value.is_finite() or not MIN_STEP <= value <= MAX_STEP:
        return [f"{name}: expected a number from {MIN_STEP} to {MAX_STEP}, got {value}"]
    if value % MIN_STEP:
        return [f"{name}: expected at most 8 decimals, got {value}"]
    return []


@dataclass(frozen=True, slots=True)
class Listing:
    """One instrument's reference data; raises :class:`InvalidListing` if it cannot trade."""

    instrument: str
    tick_size: Decimal
    lot_size: Decimal
    band_pct: Decimal
    status: ListingStatus = ListingStatus.LISTED

    def __post_init__(self) -> None:
        problems = []
        if not SYMBOL.fullmatch(self.instrument):
            problems.append(f"instrument: {self.instrument[:20]!r} is not an instrument symbol")
        problems += _step_problems("tick_size", self.tick_size)
        problems += _step_problems("lot_size", self.lot_size)
        band = self.band_pct
        if not band.is_finite() or not 0 < band <= MAX_BAND_PCT:
            problems.append(
                f"band_pct: expected more than 0 and at most {MAX_BAND_PCT}, got {band}"
            )
        if problems:
            raise InvalidListing(self.instrument, problems)

    @property
    def listed(self) -> bool:
        return self.status is ListingStatus.LISTED


def listing_reasons(listing: Listing | None, order: Order) -> list[str]:
    """Why ``order`` may not trade under ``listing`` (None: not listed); empty if it may."""
    if listing is None:
        return [f"instrument: {order.instrument} is not listed"]
    if not listing.listed:
        return [f"instrument: {order.instrument} is delisted"]
    reasons = []
    # Prices and quantities are bounded (``wire.py``) and steps are at least MIN_STEP: the
    # remainders below stay within Decimal's default precision.
    if order.price is not None and order.price % listing.tick_size:
        reasons.append(
            f"price: {order.price} is off the tick: {order.instrument} trades in steps "
            f"of {listing.tick_size}"
        )
    if order.quantity % listing.lot_size:
        reasons.append(
            f"quantity: {order.quantity} is off the lot: {order.instrument} trades in "
            f"multiples of {listing.lot_size}"
        )
    return reasons
