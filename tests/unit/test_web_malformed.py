"""Malformed requests are answered 4xx with a reason, never 500: each case a hostile probe
found, and the last resort for whatever else escapes a view."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exchange_app.web import Broadcaster, install
from exchange_app.web.peers import ROUTED
from exchange_app.wire import dumps, loads
from tests.harness import bearer
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import JSON, ORDERS, SECRET, SEED, Exchange, owner_and_other, serve


async def raw_request(client: TestClient, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (a request line and header lines) as bytes; the status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "query", ["depth=\u00b2", "depth=" + "9" * 5_000, "depth=%EF%BC%95", "depth=+5", "depth="]
)
async def test_a_depth_that_is_not_ascii_digits_is_a_400(query: str) -> None:
    """``str.isdigit`` takes a superscript two, which ``int()`` refuses, and a fullwidth
    five, which ``int()`` reads as 5; ``int()`` refuses 5,000 digits outright."""
    client = await serve(Exchange().services())
    try:
        answer = await client.get(f"/orderbook/TCS?{query}")
        assert answer.status == 400
        assert "depth: expected a whole number from 1 to 1000" in (await answer.json())["errors"][0]
    finally:
        await client.close()


#: A hop mark whose time is a superscript two: ``str.isdigit`` takes it, ``int()`` does not.
MARK = "\u00b2." + "a" * 32 + ".x"


async def test_a_hop_mark_with_a_non_ascii_digit_is_no_hop() -> None:
    ring, (alice,) = ring_with(("alice", False))
    exchange = Exchange()
    exchange.feed(ORDERS)
    client = await serve(exchange.services(keys=ring, cluster_secret=SECRET))
    try:
        status, body = await raw_request(
            client, f"GET /accounts/bob HTTP/1.1\r\n{ROUTED}: {MARK}\r\n".encode()
        )
        assert status == 401, body  # not a hop: the account needs a key
        status, body = await raw_request(
            client,
            f"GET /accounts/bob HTTP/1.1\r\n{ROUTED}: {MARK}\r\n"
            f"Authorization: Bearer {alice}\r\n".encode(),
        )
        assert status == 403, body  # alice's key, bob's account: the mark changes nothing
    finally:
        await client.close()


@pytest.mark.parametrize("path", ["/orderbook/TCS", "/accounts/bob", "/instruments"])
async def test_an_absolute_url_as_the_request_target_is_served_by_its_path(path: str) -> None:
    """``GET http://x/orderbook/TCS`` is answered as ``GET /orderbook/TCS``: here, by the
    worker owning TCS, which this one asks with the path alone."""
    _, owner_client, client, _ = await owner_and_other()
    try:
        expected = await (await owner_client.get(path)).read()
        for target in (f"http://x{path}", f"http://127.0.0.1:1{path}"):
            status, body = await raw_request(client, f"GET {target} HTTP/1.1\r\n".encode())
            assert status == 200, body
            assert loads(body) == loads(expected)
    finally:
        await client.close()
        await owner_client.close()


@pytest.mark.parametrize("number", ["\u00b2", "\u0661\u0662", "9" * 5_000, "-1", "", "x"])
def test_a_last_event_id_that_is_not_ours_asks_for_a_reset(number: str) -> None:
    broadcaster = Broadcaster()
    broadcaster.publish("trade", {"instrument": "TCS"})
    assert broadcaster.since(f"{broadcaster.boot}-{number}") is None
    assert broadcaster.since(f"{broadcaster.boot}-0") is not None


async def test_a_stream_resumed_from_a_non_ascii_digit_starts_with_a_reset() -> None:
    broadcaster = Broadcaster()
    broadcaster.publish("trade", {"instrument": "TCS", "price": 1})
    client = await serve(Exchange().services(broadcaster=broadcaster))
    try:
        last = f"{broadcaster.boot}-\u00b2"
        async with client.get("/stream", headers={"Last-Event-ID": last}) as stream:
            assert stream.status == 200
            seen = b""
            while b"event: reset" not in seen:
                chunk = await stream.content.readany()
                assert chunk, f"the stream ended before a reset: {seen!r}"
                seen += chunk
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1E+9999999999999999999", "body: not JSON: a number out of range"),
        ("1E-9999999999999999999", "body: not JSON: a number out of range"),
        ("1E+999999999999999999", "quantity: expected a number from 1e-1000 to 1e1000"),
    ],
)
async def test_an_order_with_a_number_out_of_range_is_a_400(number: str, reason: str) -> None:
    ring, (alice,) = ring_with(("alice", False))
    exchange = Exchange()
    client = await serve(exchange.services(keys=ring))
    try:
        body = dumps({**SEED, "quantity": "@"}).replace(b'"@"', number.encode())
        answer = await client.post("/orders", data=body, headers={**JSON, **bearer(alice)})
        assert answer.status == 400
        assert any(reason in r for r in (await answer.json())["errors"])
        assert not exchange.published
    finally:
        await client.close()


async def test_an_exception_a_view_did_not_expect_is_a_logged_json_500(caplog) -> None:
    """The last resort: the error in the shape of every other refusal, and in the log."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    application = web.Application()
    install(application, Exchange().services())
    application.router.add_get("/broken", broken)
    client = TestClient(TestServer(application, host="127.0.0.1"))
    await client.start_server()
    try:
        with caplog.at_level(logging.ERROR, logger="exchange_app.web.failsafe"):
            answer = await client.get("/broken")
        assert answer.status == 500
        assert answer.content_type == "application/json"
        assert (await answer.json())["errors"] == [
            "internal error: the request was not processed; it is logged"
        ]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "RuntimeError: a bug" in caplog.text
    finally:
        await client.close()
