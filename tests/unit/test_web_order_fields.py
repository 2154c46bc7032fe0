"""``POST /orders`` refuses fields no order has; the orders topic still takes them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from exchange_app.engine import Order, TimeInForce
from exchange_app.web.openapi import SPEC
from exchange_app.web.trading import BODY_FIELDS
from exchange_app.wire import decode_order, dumps, loads
from tests.unit.test_web_views import JSON, SEED, Exchange, serve


@pytest.fixture()
async def posted() -> AsyncIterator[tuple[Exchange, TestClient]]:
    exchange = Exchange()
    client = await serve(exchange.services())
    yield exchange, client
    await client.close()


@pytest.mark.parametrize(
    ("extra", "errors"),
    [
        ({"tif": "IOC"}, ["tif: unknown field"]),
        ({"Price": 15, "qty": 2}, ["Price: unknown field", "qty: unknown field"]),
        ({"client_timestamp": "2023-03-12T23:48:37+00:00"}, ["client_timestamp: unknown field"]),
        (
            {f"f{i:02}": i for i in range(12)},
            [*(f"f{i:02}: unknown field" for i in range(10)), "and 2 more unknown fields"],
        ),
    ],
)
async def test_an_unknown_field_is_refused_by_name_and_nothing_is_sent(
    posted, extra, errors
) -> None:
    exchange, client = posted
    response = await client.post("/orders", data=dumps({**SEED, **extra}), headers=JSON)
    assert response.status == 400
    assert loads(await response.read()) == {"errors": errors}
    assert not exchange.published


async def test_every_field_of_an_order_is_still_taken(posted) -> None:
    exchange, client = posted
    body = {
        **SEED,
        "client_order_id": "c-1",
        "action": "NEW",
        "order_type": "LIMIT",
        "time_in_force": "IOC",
        "account": "alice",
    }
    assert set(body) == BODY_FIELDS
    response = await client.post("/orders", data=dumps(body), headers=JSON)
    assert response.status == 202, await response.text()
    order = decode_order(exchange.published[-1][1])
    assert isinstance(order, Order) and order.time_in_force is TimeInForce.IOC


@pytest.mark.parametrize(
    "raw",
    [
        # the original format, byte for byte, and what the gateway adds to it
        b'{"id": 1000001, "instrument": "TCS", "trxn_type": "BUY", "quantity": 5.0, '
        b'"price": 15.0, "order_timestamp": "2023/03/12, 23:48:37"}',
        dumps({**SEED, "client_timestamp": "2023-03-12T23:48:37+00:00"}),
        dumps({**SEED, "a_gateways_own_field": 1}),
    ],
)
def test_the_orders_topic_ignores_fields_it_does_not_know(raw) -> None:
    order = decode_order(raw)
    assert isinstance(order, Order) and order.id == SEED["id"]


def test_the_description_refuses_other_fields_and_names_each_one_taken() -> None:
    schema = SPEC["components"]["schemas"]["Order"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == BODY_FIELDS
