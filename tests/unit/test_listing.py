"""Listings: the check of an order against its instrument's listing, and the registry
of listings a worker keeps from their topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.engine import (
    Cancel,
    InvalidListing,
    Listing,
    ListingStatus,
    Order,
    OrderType,
    Side,
    listing_reasons,
)
from exchange_app.listings import Listings, listing_of, listing_record, listings_of
from exchange_app.wire import dumps, loads

NOW = datetime(2023, 3, 12, 9, 15, tzinfo=UTC)
TCS = Listing("TCS", Decimal("0.05"), Decimal(10), Decimal(10))


def order(quantity: str = "10", price: str | None = "15.05", instrument: str = "TCS") -> Order:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    return Order(
        1,
        instrument,
        Side.BUY,
        Decimal(quantity),
        None if price is None else Decimal(price),
        NOW,
        order_type=kind,
    )


@pytest.mark.parametrize(
    ("listing", "incoming", "expected"),
    [
        (TCS, order(), []),
        (TCS, order(price=None), []),  # a MARKET order has no price to be off the tick
        (TCS, order("30", "1000"), []),
        (None, order(), ["instrument: TCS is not listed"]),
        (
            Listing("TCS", Decimal("0.05"), Decimal(10), Decimal(10), ListingStatus.DELISTED),
            order(),
            ["instrument: TCS is delisted"],
        ),
        (TCS, order(price="15.01"), ["price: 15.01 is off the tick: TCS trades in steps of 0.05"]),
        (TCS, order("15"), ["quantity: 15 is off the lot: TCS trades in multiples of 10"]),
        (TCS, order("1", "0.01"), ["price: 0.01 is off the tick", "quantity: 1 is off the lot"]),
    ],
    ids=["fits", "market", "multiples", "unlisted", "delisted", "off-tick", "off-lot", "both"],
)
def test_an_order_fits_its_listing_or_is_told_why_not(
    listing: Listing | None, incoming: Order, expected: list[str]
) -> None:
    reasons = listing_reasons(listing, incoming)
    assert len(reasons) == len(expected)
    assert all(got.startswith(want) for got, want in zip(reasons, expected, strict=True))


steps = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal(1000), places=8)


@given(tick=steps, lot=steps, ticks=st.integers(1, 10**6), lots=st.integers(1, 10**6))
def test_whole_multiples_of_tick_and_lot_always_fit(
    tick: Decimal, lot: Decimal, ticks: int, lots: int
) -> None:
    listing = Listing("X", tick, lot, Decimal(5))
    fits = order(str(lot * lots), str(tick * ticks), instrument="X")
    assert listing_reasons(listing, fits) == []
    off = order(str(lot * lots), str(tick * ticks + Decimal("1e-9")), instrument="X")
    assert [r.split(":")[0] for r in listing_reasons(listing, off)] == ["price"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"tick_size": Decimal(0)}, "tick_size: expected a number from 1E-8 to 1E+12, got 0"),
        ({"lot_size": Decimal("-1")}, "lot_size: expected a number from"),
        ({"tick_size": Decimal("1e-9")}, "tick_size: expected a number from"),
        ({"tick_size": Decimal("NaN")}, "tick_size: expected a number from"),
        ({"lot_size": Decimal("1E+999999")}, "lot_size: expected a number from"),
        ({"band_pct": Decimal(0)}, "band_pct: expected more than 0 and at most 100, got 0"),
        ({"band_pct": Decimal(101)}, "band_pct: expected more than 0"),
        ({"instrument": "tcs"}, "instrument: 'tcs' is not an instrument symbol"),
        ({"instrument": "TCS\n"}, "instrument: 'TCS\\n' is not an instrument symbol"),
    ],
)
def test_a_listing_that_cannot_trade_is_refused_with_the_problem(
    fields: dict[str, object], problem: str
) -> None:
    values = {"instrument": "TCS", "tick_size": Decimal("0.01"), "lot_size": Decimal(1)}
    values |= {"band_pct": Decimal(10), **fields}
    with pytest.raises(InvalidListing) as raised:
        Listing(**values)  # type: ignore[arg-type]
    assert raised.value.reasons[0].startswith(problem)


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"tick_size": "0.05", "lot_size": 10, "band_pct": 10}, []),
        ({"tick_size": True, "lot_size": 10, "band_pct": 10}, ["tick_size: expected a number"]),
        ({"lot_size": "ten", "band_pct": 10}, ["tick_size: expected", "lot_size: expected"]),
        ({"tick_size": 1, "lot_size": 1, "band_pct": 1, "status": "gone"}, ["status: expected"]),
        ([1, 2], ["expected a JSON object, got list"]),
    ],
)
def test_a_record_or_body_becomes_a_listing_or_every_problem(
    body: object, problems: list[str]
) -> None:
    if not problems:
        assert listing_of("TCS", body) == TCS
        return
    with pytest.raises(InvalidListing) as raised:
        listing_of("TCS", body)
    assert len(raised.value.reasons) == len(problems)
    assert all(r.startswith(p) for r, p in zip(raised.value.reasons, problems, strict=True))


def test_a_listing_goes_through_its_record_unchanged() -> None:
    for listing in [TCS, *listings_of(["RIL", "INFY"])]:
        assert listing_of(listing.instrument, loads(dumps(listing_record(listing)))) == listing


def test_the_registry_follows_records_and_tombstones_and_checks_new_orders_only() -> None:
    listings = Listings()
    listings.apply("TCS", dumps(listing_record(TCS)))
    listings.apply("RIL", dumps(listing_record(listings_of(["RIL"])[0])))
    listings.apply("RIL", None)
    assert listings.symbols() == ["TCS"]
    assert listings.reasons(order(instrument="RIL")) == ["instrument: RIL is not listed"]
    assert listings.reasons(Cancel(1, "RIL")) == []  # a cancel is the book's to answer
    with pytest.raises(ValueError):
        listings.apply("INFY", b"{not json")
    with pytest.raises(InvalidListing):
        listings.apply("INFY", dumps({"tick_size": 0, "lot_size": 1, "band_pct": 1}))
    assert list(listings.by_instrument) == ["TCS"]


async def test_waiting_for_the_listings_ends_when_they_are_read() -> None:
    listings = Listings()
    waiting = asyncio.create_task(listings.wait_ready())
    await asyncio.sleep(0)
    assert not waiting.done() and not listings.ready
    listings.mark_ready()
    await waiting
    assert listings.ready
