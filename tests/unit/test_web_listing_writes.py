"""An admin's listing answers once this worker applied it: a request pasted right after
``PUT /listings/...`` (a ``DELETE`` of it, an order for it) sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from exchange_app.engine import Listing
from exchange_app.listings import Listings, listing_record, listings_of
from exchange_app.orderflow import INSTRUMENTS
from exchange_app.wire import dumps
from tests.harness import bearer
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import Exchange, serve


async def test_put_then_delete_at_once_finds_the_listing() -> None:
    listings = Listings(listings_of(INSTRUMENTS), ready=True)

    async def write(changed: Sequence[Listing]) -> None:
        """The topic: its follower applies a record a moment after the broker has it."""
        loop = asyncio.get_running_loop()
        for listing in changed:
            record = dumps(listing_record(listing))
            loop.call_later(0.2, listings.apply, listing.instrument, record)

    ring, (admin,) = ring_with(("ops", True))
    client = await serve(Exchange().services(keys=ring, listings=listings, write_listings=write))
    try:
        steps = {"tick_size": "0.05", "lot_size": 1, "band_pct": 10}
        put = await client.put("/listings/WIPRO", json=steps, headers=bearer(admin))
        assert put.status == 200
        delete = await client.delete("/listings/WIPRO", headers=bearer(admin))
        assert delete.status == 200, await delete.text()
    finally:
        await client.close()
