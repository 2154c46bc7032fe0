"""Streams and connections: who may hold a stream, when it ends, how long a request may take."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exchange_app.auth import KeyRing, parse_key
from exchange_app.broker import free_port
from exchange_app.web import Broadcaster, Services, install
from exchange_app.web.broadcast import own_trade
from exchange_app.web.live import StreamLimits
from exchange_app.web.server import server_options
from exchange_app.web.views import API, Api
from exchange_app.wire import dumps
from tests.harness import bearer, eventually
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import Exchange, read_events


@pytest.fixture()
def keys() -> tuple[KeyRing, dict[str, str]]:
    ring, (alice, bob, admin) = ring_with(("alice", False), ("bob", False), ("ops", True))
    return ring, {"alice": alice, "bob": bob, "admin": admin}


async def serve(services: Services) -> tuple[TestClient, Api]:
    application = web.Application()
    api = install(application, services)
    client = TestClient(TestServer(application))
    await client.start_server()
    return client, api


async def opened(response: Any) -> None:
    """Until the stream's first line: the server holds the stream from then on."""
    assert response.status == 200
    assert await asyncio.wait_for(response.content.readline(), 5) == b"retry: 2000\n"


async def ended(response: Any) -> bytes:
    """What the server sent until it ended the stream."""
    return await asyncio.wait_for(response.content.read(), 5)


async def test_a_key_is_checked_before_a_stream_takes_a_slot(keys) -> None:
    ring, issued = keys
    client, api = await serve(Exchange().services(keys=ring, max_streams=1))
    try:
        mine = await client.get("/stream", headers=bearer(issued["alice"]))
        await opened(mine)
        wrong = await client.get("/stream", headers=bearer("ek_000000000000_" + "A" * 43))
        assert wrong.status == 401  # not 503: a wrong key learns nothing about the slots
        other = await client.get("/stream?account=alice", headers=bearer(issued["bob"]))
        assert other.status == 403
        assert api.live.open_streams == 1
        mine.close()
    finally:
        await client.close()


async def test_an_address_without_a_key_holds_a_bounded_number_of_streams(keys) -> None:
    ring, issued = keys
    services = Exchange().services(keys=ring, max_streams=100, max_streams_per_address=2)
    client, _ = await serve(services)
    try:
        anonymous = [await client.get("/stream") for _ in range(2)]
        for response in anonymous:
            await opened(response)
        refused = await client.get("/stream")
        assert refused.status == 429 and refused.headers["Retry-After"] == "5"
        assert "without a key" in (await refused.json())["errors"][0]
        keyed = await client.get("/stream", headers=bearer(issued["alice"]))
        await opened(keyed)  # a key has its own streams
        for response in (*anonymous, keyed):
            response.close()
    finally:
        await client.close()


async def test_streams_without_a_key_leave_room_for_keys(keys) -> None:
    ring, issued = keys
    services = Exchange().services(
        keys=ring, max_streams=4, max_streams_per_address=10, anonymous_stream_share=0.5
    )
    client, _ = await serve(services)
    try:
        anonymous = [await client.get("/stream") for _ in range(2)]
        for response in anonymous:
            await opened(response)
        refused = await client.get("/stream")
        assert refused.status == 503 and "kept for keys" in (await refused.json())["errors"][0]
        keyed = [
            await client.get("/stream", headers=bearer(issued[who])) for who in ("alice", "bob")
        ]
        for response in keyed:
            await opened(response)
        full = await client.get("/stream", headers=bearer(issued["admin"]))
        assert full.status == 503  # the worker's own cap still holds
        for response in (*anonymous, *keyed):
            response.close()
    finally:
        await client.close()


async def test_without_keys_everyone_may_take_every_stream() -> None:
    client, _ = await serve(Exchange().services(max_streams=2, anonymous_stream_share=0.5))
    try:
        streams = [await client.get("/stream") for _ in range(2)]
        for response in streams:
            await opened(response)
        for response in streams:
            response.close()
    finally:
        await client.close()


async def test_the_heartbeat_finds_a_client_that_went_away() -> None:
    """Nothing is published: only the heartbeat's write can find the closed connection."""
    client, api = await serve(Exchange().services(max_streams=1, stream_heartbeat=0.05))
    try:
        response = await client.get("/stream")
        await opened(response)
        assert b": keepalive" in await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        response.close()

        async def slot_given_back() -> None:
            assert api.live.open_streams == 0

        await eventually(slot_given_back, timeout=10)
        again = await client.get("/stream")
        await opened(again)
        again.close()
    finally:
        await client.close()


async def test_revoking_a_key_ends_its_open_streams(keys) -> None:
    ring, issued = keys
    broadcaster = Broadcaster()
    client, api = await serve(Exchange().services(keys=ring, broadcaster=broadcaster))
    try:
        alice = await client.get("/stream", headers=bearer(issued["alice"]))
        watcher = await client.get("/stream?account=alice", headers=bearer(issued["admin"]))
        for response in (alice, watcher):
            await opened(response)
        broadcaster.publish("pnl", {"instrument": "TCS", "account": "alice", "seq": 1})
        assert [d for _, _, d in await read_events(alice, 1)] == [
            {"instrument": "TCS", "account": "alice", "seq": 1}
        ]
        key_id, _ = parse_key(issued["alice"]) or ("", "")
        ring.apply(key_id, None)  # the key store's tombstone, as the follower applies it
        broadcaster.publish("pnl", {"instrument": "TCS", "account": "alice", "seq": 2})
        assert b"data" not in await ended(alice)  # ended, and nothing private after
        assert (await read_events(watcher, 2))[1][2]["seq"] == 2  # the admin's key stands
        assert api.live.open_streams == 1
        again = await client.get("/stream", headers=bearer(issued["alice"]))
        assert again.status == 401
        watcher.close()
    finally:
        await client.close()


async def test_a_replaced_key_record_ends_the_streams_of_the_key(keys) -> None:
    ring, issued = keys
    client, _ = await serve(Exchange().services(keys=ring))
    try:
        alice = await client.get("/stream", headers=bearer(issued["alice"]))
        await opened(alice)
        key_id, _ = parse_key(issued["alice"]) or ("", "")
        ring.apply(key_id, {**ring.records[key_id], "account": "bob"})
        await ended(alice)
    finally:
        await client.close()


TRADE = {
    "id": 11,
    "id_sell": 22,
    "instrument": "TCS",
    "quantity": 1,
    "price": 15,
    "trade_id": "TCS-3",
    "seq": 3,
    "buy_order_id": 11,
    "sell_order_id": 22,
    "buyer": "alice",
    "seller": "bob",
    "aggressor": "BUY",
}


def test_an_accounts_own_trade_names_its_side_only() -> None:
    public = {k: TRADE[k] for k in ("instrument", "quantity", "price", "trade_id", "seq")}
    assert own_trade(TRADE, "alice") == {
        **public,
        "id": 11,
        "buy_order_id": 11,
        "buyer": "alice",
        "aggressor": "BUY",
    }
    assert own_trade(TRADE, "bob") == {
        **public,
        "id_sell": 22,
        "sell_order_id": 22,
        "seller": "bob",
        "aggressor": "BUY",
    }
    assert own_trade({**TRADE, "seller": "alice"}, "alice") == {**TRADE, "seller": "alice"}


async def test_a_stream_shows_its_trades_without_the_counterparty(keys) -> None:
    ring, issued = keys
    broadcaster = Broadcaster()
    client, _ = await serve(Exchange().services(keys=ring, broadcaster=broadcaster))
    try:
        alice = await client.get("/stream", headers=bearer(issued["alice"]))
        bob = await client.get("/stream", headers=bearer(issued["bob"]))
        for response in (alice, bob):
            await opened(response)
        broadcaster.publish("trade", dict(TRADE))
        [(_, _, seen_by_alice)] = await read_events(alice, 1)
        [(_, _, seen_by_bob)] = await read_events(bob, 1)
        assert seen_by_alice == own_trade(TRADE, "alice")
        assert seen_by_bob == own_trade(TRADE, "bob")
        assert not {"seller", "id_sell", "sell_order_id"} & seen_by_alice.keys()
        assert not {"buyer", "id", "buy_order_id"} & seen_by_bob.keys()
        alice.close()
        bob.close()
    finally:
        await client.close()


def test_stream_limits_are_checked() -> None:
    assert StreamLimits(total=200, anonymous_share=0.75).anonymous == 150
    assert StreamLimits(total=1, anonymous_share=0.5).anonymous == 1
    with pytest.raises(ValueError, match="anonymous_share"):
        StreamLimits(anonymous_share=0)


def test_the_views_are_installed_once_however_often_faust_initialises_its_server() -> None:
    from exchange_app.application import app
    from exchange_app.web.wiring import ExchangeWeb

    server = ExchangeWeb(app)
    server.init_server()  # the command line, the worker's start, ...
    middlewares = list(server.web_app.middlewares)
    routes = len(server.web_app.router.routes())
    api = server.web_app[API]
    server.init_server()
    server.init_server()
    assert list(server.web_app.middlewares) == middlewares
    assert len(server.web_app.router.routes()) == routes
    assert server.web_app[API] is api


async def start_runner(services: Services, header_timeout: float) -> tuple[web.AppRunner, str]:
    """The views behind aiohttp's runner, configured like the worker's (``wiring.py``)."""
    application = web.Application()
    install(application, services)
    runner = web.AppRunner(application, access_log=None, **server_options(header_timeout))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"127.0.0.1:{port}"


async def test_a_request_whose_headers_do_not_arrive_is_closed_and_others_are_served() -> None:
    runner, address = await start_runner(Exchange().services(), header_timeout=0.5)
    host, port = address.split(":")
    try:
        slow = [await asyncio.open_connection(host, int(port)) for _ in range(20)]
        for _, writer in slow:
            writer.write(b"GET /health HTTP/1.1\r\nHost: exchange\r\nX-Slow: ")
            await writer.drain()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{address}/health") as response,
        ):
            assert response.status == 200  # served while the slow ones wait
        for reader, writer in slow:
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
            writer.close()
    finally:
        await runner.cleanup()


async def test_a_request_whose_body_does_not_arrive_is_answered_408(keys) -> None:
    ring, issued = keys
    services = Exchange().services(keys=ring, body_timeout=0.3)
    runner, address = await start_runner(services, header_timeout=30)
    host, port = address.split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /orders HTTP/1.1\r\nHost: exchange\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\nAuthorization: Bearer "
            + issued["alice"].encode()
            + b"\r\n\r\n"
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # to the end: the server closes
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert b"body: not received within 0.3 s" in answer
        writer.close()
    finally:
        await runner.cleanup()


async def test_a_body_sent_in_pieces_is_read_whole(keys) -> None:
    ring, issued = keys
    exchange = Exchange()
    client, _ = await serve(exchange.services(keys=ring))
    body = dumps({"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1})

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.1)  # the server reads the first piece alone
        yield body[10:]

    try:
        headers = {**bearer(issued["alice"]), "Content-Type": "application/json"}
        answer = await client.post("/orders", data=pieces(), headers=headers)
        assert answer.status == 202, await answer.text()
        assert exchange.published[-1][1]["instrument"] == "TCS"
    finally:
        await client.close()
