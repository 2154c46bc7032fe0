"""The listings this worker matches against, followed from their topic (``listings.py``).

Matching waits until the topic has been read to its end once: an order is never
refused as unlisted because its listing was not read yet.
"""

from __future__ import annotations

from exchange_app.application import app
from exchange_app.listings import Listings, follow_listings

__all__ = ["follow_instrument_listings", "listings"]

settings = app.settings

#: The listings in force on this worker; ``POST /orders`` checks against the same.
listings = Listings()


@app.task
async def follow_instrument_listings() -> None:
    """Keep :data:`listings` equal to the listings topic."""
    await follow_listings(
        listings,
        settings.bootstrap_servers,
        settings.listings_topic,
        settings.follow_wait_ms or 500,
    )
