"""Reference data over HTTP: ``GET /listings`` for anyone, listing and delisting for
an admin key.

``PUT /listings/{instrument}`` (``tick_size``, ``lot_size``, ``band_pct``)
lists an instrument or changes its steps; ``DELETE /listings/{instrument}``
delists it. Both write the listings topic (``listings.py``) and answer once
the broker has it and this worker applied it (or after :data:`APPLY_WAIT_SECONDS`),
so that a request pasted right after it sees it here; every other worker
applies it within a fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from exchange_app.engine import InvalidListing, Listing, ListingStatus
from exchange_app.listings import Listings, listing_of, listing_record
from exchange_app.wire import loads

from .answers import error, instrument_of, json, refuse
from .gate import Gate
from .pages import MAX_LIMIT, page_of
from .server import read_body

__all__ = ["APPLY_WAIT_SECONDS", "MAX_LISTING_BYTES", "ListingViews", "WriteListings"]

#: The largest body ``PUT /listings/{instrument}`` reads: three numbers.
MAX_LISTING_BYTES = 4096

#: The longest a listing's answer waits for this worker to apply it.
APPLY_WAIT_SECONDS = 5.0

#: Writes listings to the listings topic; answers once the broker has them.
WriteListings = Callable[[Sequence[Listing]], Awaitable[None]]


class ListingViews:
    def __init__(
        self,
        gate: Gate,
        listings: Listings,
        write: WriteListings | None = None,
        max_page: int = MAX_LIMIT,
    ) -> None:
        self.gate = gate
        self.listings = listings
        # Without a topic to write (a worker's views on their own, in tests): apply here.
        self.write = write or self._apply_here
        self.max_page = max_page

    async def _apply_here(self, listings: Sequence[Listing]) -> None:
        for listing in listings:
            self.listings.by_instrument[listing.instrument] = listing

    def _ready(self) -> Listings:
        if not self.listings.ready:
            raise refuse(503, "the listings are being loaded")
        return self.listings

    async def page(self, request: web.Request) -> web.Response:
        """A page of the listings, by symbol: ``?limit=N&cursor=C``, ``next_cursor``."""
        listings = self._ready()
        page = page_of(request, self.max_page)
        names, more = page.of(listings.symbols())
        shown = [listing_record(listings.by_instrument[name]) for name in names]
        return json({"listings": shown, "next_cursor": page.next_cursor(names, more)})

    async def put(self, request: web.Request) -> web.Response:
        """List ``{instrument}`` with the body's steps (again, if it was delisted)."""
        self._admin(request)
        instrument = instrument_of(request)
        if request.content_type != "application/json":
            return error(415, "Content-Type: expected application/json")
        raw = await read_body(request, MAX_LISTING_BYTES)
        if len(raw) > MAX_LISTING_BYTES:
            return error(413, f"body: over {MAX_LISTING_BYTES} bytes")
        try:
            body = loads(raw)
        except ArithmeticError:
            return error(400, "body: a number out of range")
        except RecursionError:
            return error(400, "body: not JSON: nested too deeply")
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"body: not JSON: {exc}")
        if isinstance(body, dict):
            body = {**body, "status": ListingStatus.LISTED.value}
        try:
            listing = listing_of(instrument, body)
        except InvalidListing as exc:
            return error(400, *exc.reasons)
        await self.write([listing])
        await self._applied(listing)
        return json(listing_record(listing))

    async def delete(self, request: web.Request) -> web.Response:
        """Delist ``{instrument}``: no new orders; its resting orders may be cancelled."""
        self._admin(request)
        instrument = instrument_of(request)
        current = self._ready().get(instrument)
        if current is None:
            return error(404, f"instrument: {instrument} is not listed")
        delisted = Listing(
            instrument,
            current.tick_size,
            current.lot_size,
            current.band_pct,
            ListingStatus.DELISTED,
        )
        await self.write([delisted])
        await self._applied(delisted)
        return json(listing_record(delisted))

    async def _applied(self, listing: Listing) -> None:
        """Wait until this worker's follower applied ``listing`` (at most
        :data:`APPLY_WAIT_SECONDS`): read your own writes."""
        deadline = time.monotonic() + APPLY_WAIT_SECONDS
        while self.listings.get(listing.instrument) != listing and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _admin(self, request: web.Request) -> None:
        if not self.gate.require(request).admin:
            raise refuse(403, "an admin key is needed")
