"""The listings: which instruments trade, in which steps, kept in a compacted topic.

::

    <app id>-listings (1 partition, compacted)   key: instrument
        value: {"tick_size", "lot_size", "band_pct", "status"}
        ▲ exchange instruments add / remove,       ▼ every worker follows it into its Listings:
          PUT / DELETE /listings/{instrument}        the matching agent and POST /orders check
                                                     each new order against it

Kept like the API keys (``keystore.py``, ``broker/compacted.py``): every worker
reads the whole topic and then follows it, so a listing made on any machine
takes effect on every worker within a fetch. A worker matches no order and
takes none over HTTP until it has read the topic to its end once. Removing an
instrument delists it (a record with status ``DELISTED``): it takes no new
orders, its resting orders can still be cancelled, and ``GET /listings`` says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from .broker.compacted import follow_compacted, read_compacted, write_compacted
from .engine import Cancel, InvalidListing, Listing, ListingStatus, Order, listing_reasons
from .wire import dumps, loads

__all__ = [
    "DEFAULT_BAND_PCT",
    "DEFAULT_LOT",
    "DEFAULT_TICK",
    "Listings",
    "delist",
    "follow_listings",
    "list_instruments",
    "listing_of",
    "listing_record",
    "listings_of",
    "read_listings",
]

_FIELDS = ("tick_size", "lot_size", "band_pct")
#: What ``exchange instruments add`` lists with unless told: the seed's prices have
#: at most two decimals and its quantities are whole.
DEFAULT_TICK, DEFAULT_LOT, DEFAULT_BAND_PCT = Decimal("0.01"), Decimal(1), Decimal(10)


def listings_of(
    symbols: Iterable[str],
    tick_size: Decimal = DEFAULT_TICK,
    lot_size: Decimal = DEFAULT_LOT,
    band_pct: Decimal = DEFAULT_BAND_PCT,
) -> list[Listing]:
    """A listing of each of ``symbols`` with the same steps."""
    return [Listing(symbol, tick_size, lot_size, band_pct) for symbol in symbols]


def _number(name: str, value: object, problems: list[str]) -> Decimal:
    """``value`` as a Decimal: a JSON number or a decimal string; else a problem noted."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    shown = "nothing" if value is None else repr(value)[:40]
    problems.append(f"{name}: expected a number, got {shown}")
    return Decimal(1)


def listing_of(instrument: str, data: Any) -> Listing:
    """The listing a record (or a request body) gives ``instrument``; raises
    :class:`InvalidListing` with every problem found."""
    if not isinstance(data, dict):
        raise InvalidListing(instrument, [f"expected a JSON object, got {type(data).__name__}"])
    problems: list[str] = []
    tick, lot, band = (_number(name, data.get(name), problems) for name in _FIELDS)
    status = str(data.get("status", ListingStatus.LISTED)).upper()
    if status not in ListingStatus.__members__:
        problems.append(f"status: expected LISTED or DELISTED, got {status[:20]!r}")
        status = ListingStatus.LISTED
    if problems:
        raise InvalidListing(instrument, problems)
    return Listing(instrument, tick, lot, band, ListingStatus(status))


def listing_record(listing: Listing) -> dict[str, Any]:
    """The JSON object of ``listing``, as the topic keeps it and ``/listings`` shows it."""
    return {
        "instrument": listing.instrument,
        "tick_size": listing.tick_size,
        "lot_size": listing.lot_size,
        "band_pct": listing.band_pct,
        "status": listing.status.value,
    }


class Listings:
    """The listings in force on this worker, by instrument, as their topic gives them."""

    def __init__(self, listings: Iterable[Listing] = (), *, ready: bool = False) -> None:
        self.by_instrument: dict[str, Listing] = {}
        self._ready = asyncio.Event()
        for listing in listings:
            self.by_instrument[listing.instrument] = listing
        if ready:
            self.mark_ready()

    @property
    def ready(self) -> bool:
        """The topic was read to its end once."""
        return self._ready.is_set()

    def mark_ready(self) -> None:
        self._ready.set()

    async def wait_ready(self) -> None:
        if not self._ready.is_set():
            await self._ready.wait()

    def apply(self, instrument: str, value: bytes | None) -> None:
        """One record of the topic; raises ValueError (or InvalidListing) on a bad one."""
        if value is None:
            self.by_instrument.pop(instrument, None)
        else:
            self.by_instrument[instrument] = listing_of(instrument, loads(value))

    def get(self, instrument: str) -> Listing | None:
        return self.by_instrument.get(instrument)

    def reasons(self, command: Order | Cancel) -> list[str]:
        """Why ``command`` may not trade; empty if it may. A cancel always may: the
        resting orders of a delisted instrument can be cancelled."""
        if isinstance(command, Cancel):
            return []
        return listing_reasons(self.by_instrument.get(command.instrument), command)

    def symbols(self) -> list[str]:
        """Every instrument with a listing, delisted ones too, by symbol."""
        return sorted(self.by_instrument)


async def read_listings(bootstrap: list[str], topic: str, fetch_wait_ms: int = 100) -> Listings:
    """The listings in force now: the topic read to its end."""
    listings = Listings()
    await read_compacted(bootstrap, topic, listings.apply, fetch_wait_ms)
    listings.mark_ready()
    return listings


async def follow_listings(
    listings: Listings, bootstrap: list[str], topic: str, fetch_wait_ms: int
) -> None:
    """Keep ``listings`` equal to the topic until cancelled; ready once read to its end."""
    await follow_compacted(bootstrap, topic, listings.apply, listings.mark_ready, fetch_wait_ms)


async def list_instruments(bootstrap: list[str], topic: str, listings: Iterable[Listing]) -> None:
    """List (or list again, with new steps) each of ``listings``."""
    records = [(item.instrument, dumps(listing_record(item))) for item in listings]
    await write_compacted(bootstrap, topic, records)


async def delist(bootstrap: list[str], topic: str, instrument: str) -> Listing | None:
    """Delist ``instrument``; its listing now, or None if it was never listed."""
    current = (await read_listings(bootstrap, topic)).get(instrument)
    if current is None:
        return None
    delisted = Listing(
        instrument, current.tick_size, current.lot_size, current.band_pct, ListingStatus.DELISTED
    )
    await list_instruments(bootstrap, topic, [delisted])
    return delisted
