"""Answers between workers: whole bodies, bounded pages, single-use hops, allowed peers only."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from exchange_app.application import create_app
from exchange_app.settings import get_settings
from exchange_app.web.pages import decode_cursor, encode_cursor
from exchange_app.web.peers import (
    MAX_PEER_ANSWER_BYTES,
    MAX_SKEW_SECONDS,
    ROUTED,
    Nonces,
    destination,
    sign,
)
from exchange_app.wire import dumps, loads
from tests.unit.test_web_views import ORDERS, SECRET, Exchange, get, owner_and_other, serve

MiB = 1024 * 1024


async def raw_peer(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> TestServer:
    """A peer that answers every GET with ``handler``: what a worker gets back, byte for byte."""
    application = web.Application()
    application.router.add_get("/{tail:.*}", handler)
    server = TestServer(application, host="127.0.0.1", port=unused_port())
    await server.start_server()
    return server


def chunked(
    body: bytes, size: int = 4096
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler sending ``body`` in many small chunks, without a ``Content-Length``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), size):
            await response.write(body[start : start + size])
        await response.write_eof()
        return response

    return handler


def whole(body: bytes) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    return handler


@asynccontextmanager
async def asking(peer: TestServer, **overrides: Any) -> AsyncIterator[TestClient]:
    """A worker that owns no key and asks ``peer`` for every one."""
    base = str(peer.make_url("/")).rstrip("/")
    client = await serve(
        Exchange().services(
            owner=lambda kind, key: base, peers=lambda: [base], cluster_secret=SECRET, **overrides
        )
    )
    try:
        yield client
    finally:
        await client.close()
        await peer.close()


def big_book(size: int) -> bytes:
    """An order book answer of about ``size`` bytes, valid JSON only when whole."""
    levels = [{"price": str(n), "quantity": "1", "orders": 1} for n in range(size // 40)]
    return dumps({"instrument": "TCS", "bids": levels, "asks": []})


@pytest.mark.parametrize("send", [chunked, whole], ids=["chunked", "content-length"])
async def test_a_peer_answer_of_two_mib_arrives_whole(send) -> None:
    body = big_book(2 * MiB)
    assert len(body) > 2 * MiB
    async with asking(await raw_peer(send(body))) as client:
        answer = await client.get("/orderbook/TCS")
        assert answer.status == 200
        assert await answer.read() == body


@pytest.mark.parametrize("send", [chunked, whole], ids=["chunked", "content-length"])
async def test_an_answer_over_the_limit_is_a_502_never_a_cut_body(send) -> None:
    body = big_book(MAX_PEER_ANSWER_BYTES + 64 * 1024)
    assert len(body) > MAX_PEER_ANSWER_BYTES
    async with asking(await raw_peer(send(body))) as client:
        answer = await client.get("/orderbook/TCS")
        assert answer.status == 502
        [reason] = loads(await answer.read())["errors"]
        assert f"over {MAX_PEER_ANSWER_BYTES} bytes" in reason and "smaller page" in reason


async def test_a_listing_from_a_peer_is_merged_whole_or_not_at_all() -> None:
    rows = [{"instrument": f"X{n:05}", "last_price": None} for n in range(30_000)]
    body = dumps({"instruments": rows, "next_cursor": encode_cursor(rows[-1]["instrument"])})
    assert len(body) > MiB
    async with asking(await raw_peer(chunked(body))) as client:
        page = await get(client, "/instruments?limit=1000")
        assert page["instruments"] == rows[:1000]
        assert decode_cursor(page["next_cursor"]) == "X00999"
    too_much = dumps({"instruments": [{"instrument": "X" * MAX_PEER_ANSWER_BYTES}]})
    async with asking(await raw_peer(chunked(too_much))) as client:
        assert await get(client, "/instruments") == {"instruments": [], "next_cursor": None}


# -- pages -----------------------------------------------------------------------------------

OTHERS = ["AAA", "MMM", "ZZZ"]


async def walk(client: TestClient, path: str, field: str, limit: int) -> list[Any]:
    """Every row of a paged listing, checking each page's size and order."""
    found: list[Any] = []
    cursor = None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = await get(client, path + query)
        assert len(page[field]) <= limit
        found += page[field]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7, 100])
async def test_instruments_come_in_pages_from_every_worker(limit) -> None:
    _, owner_client, _, base = await owner_and_other()
    other = Exchange()
    other.feed(
        [
            {
                "id": 900 + n,
                "instrument": name,
                "trxn_type": "BUY",
                "quantity": 1,
                "price": 10,
                "order_timestamp": "2023-03-12T10:00:00+00:00",
            }
            for n, name in enumerate(OTHERS)
        ]
    )
    client = await serve(
        other.services(owner=lambda kind, key: base, peers=lambda: [base], cluster_secret=SECRET)
    )
    try:
        rows = await walk(client, "/instruments", "instruments", limit)
        names = [row["instrument"] for row in rows]
        assert names == sorted(["INFY", "ONGC", "RIL", "TCS", *OTHERS])
        owners = await get(owner_client, "/instruments")
        assert [row for row in rows if row["instrument"] not in OTHERS] == owners["instruments"]
        assert owners["next_cursor"] is None
    finally:
        await client.close()
        await owner_client.close()


async def test_an_accounts_positions_come_in_pages_with_the_pages_totals() -> None:
    _, owner_client, client, _ = await owner_and_other()
    try:
        everything = await get(client, "/accounts/alice?limit=1000")
        assert everything == await get(owner_client, "/accounts/alice?limit=1000")
        assert len(everything["positions"]) == 4 and everything["next_cursor"] is None
        pages = [await get(client, "/accounts/alice?limit=3")]
        pages.append(await get(client, f"/accounts/alice?limit=3&cursor={pages[0]['next_cursor']}"))
        assert [len(page["positions"]) for page in pages] == [3, 1]
        assert pages[1]["next_cursor"] is None
        assert [p for page in pages for p in page["positions"]] == everything["positions"]
        for key in ("realized", "unrealized", "total"):
            assert sum(page[key] for page in pages) == everything[key]
    finally:
        await client.close()
        await owner_client.close()


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "cursor=%%%",
        "cursor=not-a-cursor",
        f"cursor={encode_cursor('TCS')}==",
        "cursor=" + "QUFB" * 40,
        "cursor=%C2%B2",
    ],
)
async def test_a_bad_limit_or_cursor_is_a_400_naming_it(query) -> None:
    exchange = Exchange()
    exchange.feed(ORDERS[:50])
    client = await serve(exchange.services())
    try:
        for path in ("/instruments", "/accounts/alice"):
            answer = await client.get(f"{path}?{query}")
            assert answer.status == 400, (path, query)
            [reason] = loads(await answer.read())["errors"]
            assert reason.startswith(query.partition("=")[0] + ":")
    finally:
        await client.close()


def test_cursors_are_opaque_deterministic_and_round_trip() -> None:
    for name in ("A", "TCS", "BRK.B", "alice@example.com", "Z" * 64):
        cursor = encode_cursor(name)
        assert cursor == encode_cursor(name) and name not in cursor
        assert decode_cursor(cursor) == name
    for bad in ("!", "QQ=", "QUJD" + "=", "Q"):
        with pytest.raises(ValueError):
            decode_cursor(bad)


# -- single-use hops, bound to their destination ---------------------------------------------


async def test_a_replayed_hop_is_a_plain_client_request() -> None:
    _, owner_client, client, _ = await owner_and_other()
    path = "/orderbook/TCS"
    try:
        mark = sign(
            SECRET, "GET", path, b"", time.time(), to=destination(str(client.make_url("/")))
        )
        first = await client.get(path, headers={ROUTED: mark})
        assert first.status == 404  # a hop: answered from this worker's own (empty) books
        for _ in range(3):
            again = await client.get(path, headers={ROUTED: mark})
            assert again.status == 200  # the same mark again: routed to the owner like anyone's
            assert loads(await again.read()) == await get(owner_client, path)
    finally:
        await client.close()
        await owner_client.close()


async def test_a_hop_captured_on_its_way_to_one_worker_is_no_hop_at_another() -> None:
    captured: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        captured.append((request.raw_path, request.headers[ROUTED]))
        return web.json_response({"instrument": "TCS", "bids": [], "asks": []})

    async with asking(await raw_peer(record)) as client:
        assert (await client.get("/orderbook/TCS")).status == 200
        [(path, mark)] = captured  # a true hop, signed for the peer, presented here
        again = await client.get(path, headers={ROUTED: mark})
        assert again.status == 200  # routed on to the peer, not answered from here (404)
        assert len(captured) == 2 and captured[1][1] != mark


def test_nonces_are_single_use_and_forgotten_when_too_old_to_verify() -> None:
    nonces = Nonces(limit=3)
    now = 1_700_000_000
    assert nonces.first_use("a" * 32, now, now)
    assert not nonces.first_use("a" * 32, now, now + 1)
    assert nonces.first_use("b" * 32, now, now) and nonces.first_use("c" * 32, now, now)
    assert not nonces.first_use("d" * 32, now, now)  # full: refused, nothing forgotten early
    later = now + MAX_SKEW_SECONDS + 1  # every mark so far is stale: their nonces can go
    assert nonces.first_use("d" * 32, later, later)
    assert nonces.first_use("a" * 32, later, later)  # a stale mark fails its time check anyway


# -- Faust's own forwarding ------------------------------------------------------------------


class Recorder:
    """``app.http_client``: records whom it was asked to contact, answers 200."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, str]]] = []

    @asynccontextmanager
    async def request(self, method: str, headers: Any, url: URL) -> AsyncIterator[Any]:
        self.asked.append((str(url), dict(headers)))

        async def text() -> str:
            return "{}"

        yield SimpleNamespace(text=text, content_type="application/json", status=200)


@pytest.mark.parametrize(
    ("advertised", "contacted"),
    [
        ("http://10.9.9.9:6066", False),
        ("http://169.254.169.254:80", False),
        ("http://127.0.0.1.evil.io:6066", False),
        ("http://localhost:7777", True),
    ],
)
async def test_fausts_table_forwarding_asks_only_allowed_peers(advertised, contacted) -> None:
    """``/table/{name}/{key}/`` sends the caller's headers on: never outside the peer hosts."""
    app = create_app(get_settings())
    recorder = Recorder()
    app.http_client = recorder  # type: ignore[assignment]
    router = app.router
    router.key_store = lambda name, key: URL(advertised)  # type: ignore[method-assign]
    request = SimpleNamespace(
        method="GET",
        url=URL(f"{app.conf.canonical_url}/table/matching/m:TCS/"),
        headers={"Authorization": "Bearer the-admins-key"},
    )
    answering = SimpleNamespace(text=lambda body, content_type, status: (body, status))
    if contacted:
        assert await router.route_req("matching", "m:TCS", answering, request) == ("{}", 200)
        assert [url for url, _ in recorder.asked] == [f"{advertised}/table/matching/m:TCS/"]
    else:
        with pytest.raises(ServiceUnavailable):
            await router.route_req("matching", "m:TCS", answering, request)
        assert recorder.asked == []


def test_every_page_of_a_sorted_listing_is_bounded() -> None:
    from exchange_app.web.pages import Page

    names = [f"N{n:03}" for n in range(10)]
    for limit in range(1, 12):
        seen, after = [], None
        for _ in itertools.count():
            chosen, more = Page(limit, after).of(names)
            assert len(chosen) <= limit
            seen += chosen
            if not more:
                break
            after = chosen[-1]
        assert seen == names
