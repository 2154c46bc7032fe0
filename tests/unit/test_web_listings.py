"""Listings over HTTP: anyone reads them, an admin key lists and delists, and POST /orders
refuses an order its listing refuses, with every reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient

from exchange_app.listings import Listings, listings_of
from exchange_app.wire import loads
from tests.harness import bearer
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import Exchange, serve

ORDER = {"instrument": "TCS", "trxn_type": "BUY", "quantity": 5, "price": 15}


@pytest.fixture()
async def keys() -> dict[str, str]:
    return {}


@pytest.fixture()
async def client(keys: dict[str, str]) -> AsyncIterator[TestClient]:
    ring, (alice, admin) = ring_with(("alice", False), ("ops", True))
    keys |= {"alice": alice, "admin": admin}
    client = await serve(Exchange().services(keys=ring))
    yield client
    await client.close()


async def answer(response) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    return response.status, loads(await response.read())


async def test_anyone_reads_the_listings_a_page_at_a_time(client) -> None:
    status, first = await answer(await client.get("/listings?limit=3"))
    assert status == 200 and [r["instrument"] for r in first["listings"]] == ["INFY", "ONGC", "RIL"]
    assert first["listings"][0] == {
        "instrument": "INFY",
        "tick_size": Decimal("0.01"),
        "lot_size": 1,
        "band_pct": 10,
        "status": "LISTED",
    }
    _, rest = await answer(await client.get(f"/listings?limit=3&cursor={first['next_cursor']}"))
    assert [r["instrument"] for r in rest["listings"]] == ["TCS"] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/listings/WIPRO"), ("DELETE", "/listings/TCS")],
)
async def test_only_an_admin_key_lists_or_delists(client, keys, method: str, path: str) -> None:
    body = {"tick_size": "0.05", "lot_size": 1, "band_pct": 20}
    assert (await client.request(method, path, json=body)).status == 401
    trader = await client.request(method, path, json=body, headers=bearer(keys["alice"]))
    assert await answer(trader) == (403, {"errors": ["an admin key is needed"]})
    admin = await client.request(method, path, json=body, headers=bearer(keys["admin"]))
    assert admin.status == 200


async def test_an_admin_lists_then_delists_and_the_orders_follow(client, keys) -> None:
    admin, alice = bearer(keys["admin"]), bearer(keys["alice"])
    order = {**ORDER, "instrument": "WIPRO", "price": "15.05"}
    status, body = await answer(await client.post("/orders", json=order, headers=alice))
    assert (status, body) == (400, {"errors": ["instrument: WIPRO is not listed"]})
    listing = {"tick_size": "0.05", "lot_size": 1, "band_pct": 20}
    status, listed = await answer(await client.put("/listings/WIPRO", json=listing, headers=admin))
    assert status == 200 and listed["tick_size"] == Decimal("0.05") and listed["status"] == "LISTED"
    assert (await client.post("/orders", json=order, headers=alice)).status == 202
    status, delisted = await answer(await client.delete("/listings/WIPRO", headers=admin))
    assert status == 200 and delisted["status"] == "DELISTED"
    _, refused = await answer(await client.post("/orders", json=order, headers=alice))
    assert refused == {"errors": ["instrument: WIPRO is delisted"]}
    cancel = await client.delete("/orders/1?instrument=WIPRO", headers=alice)
    assert cancel.status == 202  # resting orders of a delisted instrument may be cancelled
    _, page = await answer(await client.get("/listings"))
    assert {r["instrument"]: r["status"] for r in page["listings"]}["WIPRO"] == "DELISTED"


@pytest.mark.parametrize(
    ("order", "reasons"),
    [
        ({"price": "15.005"}, ["price: 15.005 is off the tick: TCS trades in steps of 0.01"]),
        ({"quantity": "2.5"}, ["quantity: 2.5 is off the lot: TCS trades in multiples of 1"]),
        (
            {"quantity": "0.5", "price": "9.999"},
            [
                "price: 9.999 is off the tick: TCS trades in steps of 0.01",
                "quantity: 0.5 is off the lot: TCS trades in multiples of 1",
            ],
        ),
    ],
    ids=["off-tick", "off-lot", "both"],
)
async def test_an_order_off_its_steps_is_refused_with_every_reason(
    client, keys, order: dict[str, str], reasons: list[str]
) -> None:
    response = await client.post("/orders", json={**ORDER, **order}, headers=bearer(keys["alice"]))
    assert await answer(response) == (400, {"errors": reasons})


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"tick_size": 0, "lot_size": 1, "band_pct": 10}, ["tick_size: expected a number from"]),
        ({"lot_size": "x", "band_pct": 500}, ["tick_size: expected", "lot_size: expected"]),
        ([1], ["expected a JSON object, got list"]),
    ],
)
async def test_a_listing_that_cannot_trade_is_refused_with_the_problems(
    client, keys, body: object, errors: list[str]
) -> None:
    response = await client.put("/listings/WIPRO", json=body, headers=bearer(keys["admin"]))
    status, answered = await answer(response)
    assert status == 400 and len(answered["errors"]) == len(errors)
    assert all(a.startswith(e) for a, e in zip(answered["errors"], errors, strict=True))
    assert (await client.delete("/listings/NOPE", headers=bearer(keys["admin"]))).status == 404


async def test_orders_wait_for_the_listings_to_be_read() -> None:
    exchange = Exchange()
    client = await serve(exchange.services(listings=Listings(listings_of(["TCS"]))))
    try:
        response = await client.post("/orders", json=ORDER)
        assert response.status == 503 and response.headers["Retry-After"]
        assert (await client.get("/listings")).status == 503
    finally:
        await client.close()
