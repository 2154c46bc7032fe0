"""The HTTP API at the aiohttp level, over the real state adapters on plain dicts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port

from exchange_app.listings import Listings, listings_of
from exchange_app.metrics import Metrics
from exchange_app.orderflow import INSTRUMENTS, seed_orders, stepping_clock
from exchange_app.web import Broadcaster, Services, install
from exchange_app.web.peers import (
    MAX_SKEW_SECONDS,
    ROUTED,
    allowed_peer,
    destination,
    sign,
    verify,
)
from exchange_app.web.views import (
    LOOPBACK,
    MAX_BODY_BYTES,
    SECURITY_HEADERS,
    exchange_order_id,
)
from exchange_app.wire import PUBLIC_TRADE_FIELDS, decode_order, dumps, loads
from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, fills_of
from tables.matching import MatchingState, Source
from tables.query import StateQuery
from tables.tape import TradeTape
from tables.transaction import Transaction
from tests.factories import handled


class Exchange:
    """One worker's state, fed synchronously like the agents would."""

    def __init__(self) -> None:
        self.matching = MatchingState({}, "price-time")
        self.matching.load()  # as the worker does when its tables are recovered
        self.bars = BarsAnalytics({}, 300, (2, 3))
        self.profits = ProfitAnalytics({}, 300, (2, 3))
        self.ledger = PnlLedger({})
        self.tape = TradeTape({}, 300)
        self.published: list[tuple[str, Any]] = []
        self.offset = itertools.count()

    def feed(self, orders: list[dict[str, Any]]) -> None:
        for order in orders:
            offset = next(self.offset)
            tx = Transaction()
            self.matching.handle(decode_order(order), Source(0, offset), 0, tx)
            tx.apply()
            for out in tx.outputs:
                if out.stream != "trades":
                    continue
                trade = loads(dumps(out.value))
                handled(self.tape, trade, "record_trade")
                for bar in handled(self.bars, trade):
                    handled(self.tape, bar.value, "record_bar")
                handled(self.profits, trade)
                for fill in fills_of(trade):
                    handled(self.ledger, fill)

    def services(self, **overrides: Any) -> Services:
        async def publish(key: str, raw: bytes) -> None:
            self.published.append((key, loads(raw)))

        # The instruments these tests trade, listed as the seed's (tick 0.01, lot 1).
        listings = Listings(listings_of(INSTRUMENTS), ready=True)
        return Services(
            query=StateQuery(self.matching, self.bars, self.profits, self.ledger, self.tape),
            broadcaster=overrides.pop("broadcaster", Broadcaster()),
            listings=overrides.pop("listings", listings),
            metrics=Metrics(),
            publish=publish,
            **overrides,
        )


ORDERS = list(
    itertools.islice(
        seed_orders(clock=stepping_clock(step=20), seed=9, accounts=("alice", "bob")), 400
    )
)


@pytest.fixture()
async def exchange() -> Exchange:
    exchange = Exchange()
    exchange.feed(ORDERS)
    return exchange


async def serve(services: Services) -> TestClient:
    """A worker serving ``services`` on a free loopback port, which it knows as its own."""
    port = unused_port()
    services.own_url = lambda: f"http://127.0.0.1:{port}"  # what its hops are signed for
    application = web.Application()
    install(application, services)
    client = TestClient(TestServer(application, host="127.0.0.1", port=port))
    await client.start_server()
    return client


@pytest.fixture()
async def client(exchange: Exchange) -> AsyncIterator[TestClient]:
    client = await serve(exchange.services())
    yield client
    await client.close()


async def get(client: TestClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return loads(await response.read())


async def test_instruments_list_last_price_volume_and_best_prices(client, exchange) -> None:
    rows = (await get(client, "/instruments"))["instruments"]
    assert [r["instrument"] for r in rows] == ["INFY", "ONGC", "RIL", "TCS"]
    tcs = rows[-1]
    book = exchange.matching.books["TCS"]
    assert (tcs["best_bid"], tcs["best_ask"]) == (book.best_bid(), book.best_ask())
    assert tcs["last_price"] == exchange.tape.head("TCS")["last_price"] and tcs["volume"] > 0


async def test_orderbook_aggregates_levels(client, exchange) -> None:
    data = await get(client, "/orderbook/TCS?depth=3")
    book = exchange.matching.books["TCS"]
    assert len(data["bids"]) <= 3 and data["bids"][0]["price"] == book.best_bid()
    assert data["asks"][0]["quantity"] == book.asks.best().quantity
    assert sum(o["quantity"] for o in data["top"]["asks"]) == data["asks"][0]["quantity"]
    # market data: whose orders these are is nobody else's business
    assert {tuple(o) for o in data["top"]["asks"] + data["top"]["bids"]} == {
        ("quantity", "timestamp")
    }
    assert [b["price"] for b in data["bids"]] == sorted(
        (b["price"] for b in data["bids"]), reverse=True
    )


async def test_trades_newest_first_with_limit(client, exchange) -> None:
    trades = (await get(client, "/trades/TCS?limit=5"))["trades"]
    last = exchange.tape.head("TCS")["seq"]
    assert [t["seq"] for t in trades] == list(range(last, last - 5, -1))
    private = {"buyer", "seller", "id", "id_sell", "buy_order_id", "sell_order_id"}
    assert private <= set(exchange.tape.recent("TCS", 1)[0])  # what the tape holds
    assert all(set(t) == set(PUBLIC_TRADE_FIELDS) for t in trades)  # what anyone sees


async def test_bars_with_every_sma(client) -> None:
    data = await get(client, "/bars/TCS")
    assert data["windows"] == [2, 3] and data["bars"]
    assert all(b["final"] for b in data["bars"]) and not data["open"]["final"]
    assert set(data["open"]["sma"]) == {"2", "3"}
    starts = [b["bar_start"] for b in data["bars"]] + [data["open"]["bar_start"]]
    assert starts == sorted(starts)


async def test_profit_of_open_and_last_closed_bar(client) -> None:
    data = await get(client, "/profit/TCS")
    current = data["current"]
    assert current["profit"] == current["closing_price"] - current["opening_price"]
    assert data["previous"]["bar_start"] < current["bar_start"]


async def test_account_positions_marked_to_last_price(client, exchange) -> None:
    data = await get(client, "/accounts/alice")
    for position in data["positions"]:
        mark = exchange.tape.head(position["instrument"])["last_price"]
        assert position["mark_price"] == mark
        assert position["total"] == position["realized"] + position["unrealized"]
    assert data["total"] == sum(p["total"] for p in data["positions"])


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/orderbook/NOPE", 404, "unknown instrument"),
        ("/trades/NOPE", 404, "unknown instrument"),
        ("/bars/NOPE", 404, "unknown instrument"),
        ("/profit/NOPE", 404, "unknown instrument"),
        ("/orderbook/bad%20name", 400, "not an instrument symbol"),
        ("/accounts/%F0%9F%92%B0", 400, "not an account name"),
        ("/orderbook/TCS?depth=0", 400, "depth: expected a whole number"),
        ("/orderbook/TCS?depth=abc", 400, "depth: expected a whole number"),
        ("/trades/TCS?limit=100000", 400, "limit: expected a whole number"),
    ],
)
async def test_json_errors(client, path: str, status: int, message: str) -> None:
    data = await get(client, path, status)
    assert message in data["errors"][0]


SEED = {
    "id": 1000001,
    "instrument": "TCS",
    "trxn_type": "BUY",
    "quantity": 5.0,
    "price": 15.0,
    "order_timestamp": "2023/03/12, 23:48:37",
}


JSON = {"Content-Type": "application/json"}


async def test_post_order_publishes_it_keyed_by_instrument(client, exchange) -> None:
    response = await client.post("/orders", data=dumps(SEED), headers=JSON)
    assert response.status == 202
    # the body's id is the client's own: the exchange's id is made from it and the account
    exchange_id = exchange_order_id("", "1000001")
    assert loads(await response.read()) == {
        "id": exchange_id,
        "client_order_id": "1000001",
        "client_timestamp": "2023-03-12T23:48:37+00:00",
        "instrument": "TCS",
        "status": "SUBMITTED",
    }
    key, order = exchange.published[-1]
    assert key == "TCS"
    stamped = {"id": exchange_id, "order_timestamp": order["order_timestamp"]}
    assert decode_order(order) == decode_order(dumps({**SEED, **stamped}))


NOW = datetime(2026, 5, 4, 9, 30, 15, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({}, None),
        ({"order_timestamp": None}, None),
        ({"order_timestamp": "9000-01-01T00:00:00+00:00"}, None),
        ({"order_timestamp": "2023/03/12, 23:48:37"}, "2023-03-12T23:48:37+00:00"),
        ({"order_timestamp": "2023-03-12T23:48:37-05:00"}, "2023-03-13T04:48:37+00:00"),
    ],
)
async def test_the_worker_stamps_event_time_and_keeps_the_clients_apart(
    exchange, sent, kept
) -> None:
    """A client cannot choose an order's bar: its time is kept as ``client_timestamp``."""
    client = await serve(exchange.services(clock=lambda: NOW))
    body = {k: v for k, v in SEED.items() if k != "order_timestamp"}
    response = await client.post("/orders", data=dumps({**body, **sent}), headers=JSON)
    answer = loads(await response.read())
    if (sent.get("order_timestamp") or "").startswith("9000"):
        assert response.status == 400 and not exchange.published
        assert answer["errors"] == [
            "order_timestamp: expected a time from 1970-01-01 to before 2200-01-01 (UTC), "
            "got 9000-01-01T00:00:00+00:00"
        ]
        return
    assert response.status == 202
    order = exchange.published[-1][1]
    assert order["order_timestamp"] == NOW.isoformat()
    assert order.get("client_timestamp") == answer.get("client_timestamp") == kept


async def test_a_retried_order_gets_the_first_answer_and_the_same_id(client, exchange) -> None:
    """The book refuses the second copy (``test_matching_state.py``): it never trades."""
    body = {k: v for k, v in SEED.items() if k != "id"}
    answers = []
    for _ in range(2):
        posted = await client.post(
            "/orders", data=dumps({**body, "client_order_id": "a-1"}), headers=JSON
        )
        answers.append((posted.status, loads(await posted.read())))
    assert answers[0] == answers[1]
    assert answers[0][1]["id"] == exchange.published[-1][1]["id"] == exchange.published[-2][1]["id"]
    other = await client.post(
        "/orders", data=dumps({**body, "client_order_id": "a-2"}), headers=JSON
    )
    assert loads(await other.read())["id"] != answers[0][1]["id"]


def test_order_ids_are_scoped_per_account() -> None:
    ids = {exchange_order_id(account, "1") for account in ("alice", "bob", "")}
    assert len(ids) == 3 and all(0 < i < 2**53 for i in ids)
    assert exchange_order_id("alice", "1") == exchange_order_id("alice", "1")


@pytest.mark.parametrize("client_id", ["", "x" * 65, "a b", "ü", True, 1.5, {"a": 1}, [1]])
async def test_a_bad_client_order_id_is_refused(client, exchange, client_id) -> None:
    body = {k: v for k, v in SEED.items() if k != "id"}
    response = await client.post(
        "/orders", data=dumps({**body, "client_order_id": client_id}), headers=JSON
    )
    assert response.status == 400
    assert loads(await response.read())["errors"][0].startswith("client_order_id:")
    assert not exchange.published


async def test_post_order_without_id_gets_one(client, exchange) -> None:
    order = {k: v for k, v in SEED.items() if k not in ("id", "order_timestamp")}
    answer = loads(await (await client.post("/orders", data=dumps(order), headers=JSON)).read())
    assert 0 < answer["id"] < 2**53 and exchange.published[-1][1]["id"] == answer["id"]


@pytest.mark.parametrize(
    ("body", "reasons"),
    [
        (b"not json", ["body: not JSON"]),
        (b"[1]", ["body: expected a JSON object"]),
        (
            dumps({**SEED, "trxn_type": "HOLD", "quantity": -1, "price": "NaN"}),
            ["trxn_type:", "quantity:", "price:"],
        ),
    ],
)
async def test_post_invalid_order_lists_every_reason(client, exchange, body, reasons) -> None:
    response = await client.post("/orders", data=body, headers=JSON)
    assert response.status == 400
    errors = loads(await response.read())["errors"]
    assert len(errors) == len(reasons) and all(
        e.startswith(r) for e, r in zip(errors, reasons, strict=True)
    )
    assert not exchange.published


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        # what a form on another site can send through a trader's browser, no preflight
        (dumps(SEED), {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b"id=1&instrument=TCS", {"Content-Type": "application/x-www-form-urlencoded"}, 415, ""),
        (dumps({**SEED, "pad": "x" * MAX_BODY_BYTES}), JSON, 413, "body: over"),
        (b"[" * 5_000 + b"]" * 5_000, JSON, 400, "body: not JSON: nested too deeply"),
        (b"[" * 100_000, JSON, 413, "body: over"),
    ],
)
async def test_hostile_bodies_are_refused_and_nothing_is_published(
    client, exchange, body, headers, status, reason
) -> None:
    response = await client.post("/orders", data=body, headers=headers)
    assert response.status == status
    assert loads(await response.read())["errors"][0].startswith(reason)
    assert not exchange.published


@pytest.mark.parametrize("path", ["/", "/instruments", "/orderbook/TCS", "/static/dashboard.js"])
async def test_every_answer_carries_the_security_headers(client, path) -> None:
    response = await client.get(path)
    assert response.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


async def test_delete_sends_a_cancel(client, exchange) -> None:
    response = await client.delete("/orders/42?instrument=TCS")
    assert response.status == 202
    assert exchange.published[-1] == (
        "TCS",
        {
            "action": "CANCEL",
            "id": 42,
            "instrument": "TCS",
            "order_timestamp": exchange.published[-1][1]["order_timestamp"],
        },
    )
    response = await client.delete("/orders/43?instrument=TCS&account=alice")
    assert response.status == 202 and exchange.published[-1][1]["account"] == "alice"
    assert (await client.delete("/orders/42")).status == 400
    assert (await client.delete("/orders/x?instrument=TCS")).status == 400


async def test_health_metrics_and_dashboard(exchange) -> None:
    healthy = {"value": False}
    client = await serve(exchange.services(healthy=lambda: healthy["value"]))
    try:
        assert (await client.get("/health")).status == 503
        healthy["value"] = True
        assert (await client.get("/health")).status == 200
        metrics = await (await client.get("/metrics")).text()
        assert "exchange_orders_total" in metrics and "exchange_consumer_lag" in metrics
        page = await client.get("/")
        assert page.status == 200 and "Order ticket" in await page.text()
        assert (await client.get("/static/dashboard.js")).status == 200
    finally:
        await client.close()


async def read_events(response: Any, count: int) -> list[tuple[str, str, dict]]:
    events: list[tuple[str, str, dict]] = []
    fields: dict[str, str] = {}
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if not line:
            if "data" in fields and "id" in fields:
                events.append((fields["id"], fields["event"], loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


async def test_streams_beyond_the_cap_answer_503_until_one_closes(exchange) -> None:
    broadcaster = Broadcaster()
    client = await serve(exchange.services(broadcaster=broadcaster, max_streams=2))
    try:
        streams = [await client.get("/stream") for _ in range(2)]
        assert all(s.status == 200 for s in streams)
        refused = await client.get("/stream")
        assert refused.status == 503 and refused.headers["Retry-After"] == "5"
        streams[0].close()
        for _ in range(100):  # the server notices the disconnect at its next write
            broadcaster.publish("bar", {"instrument": "TCS"})
            await asyncio.sleep(0.02)
            again = await client.get("/stream")
            if again.status == 200:
                break
            again.close()
        assert again.status == 200
        again.close()
        streams[1].close()
    finally:
        await client.close()


async def test_stream_filters_and_resumes_from_last_event_id(exchange) -> None:
    broadcaster = Broadcaster()
    client = await serve(exchange.services(broadcaster=broadcaster))
    try:
        response = await client.get("/stream?instrument=TCS")
        await asyncio.sleep(0.05)
        broadcaster.publish("trade", {"instrument": "INFY", "seq": 1})
        broadcaster.publish("trade", {"instrument": "TCS", "seq": 1, "buyer": "alice"})
        broadcaster.publish("pnl", {"instrument": "TCS", "account": "alice"})  # private
        broadcaster.publish("bar", {"instrument": "TCS", "final": True})
        [(first_id, kind, data), (_, second_kind, _)] = await read_events(response, 2)
        assert (kind, data, second_kind) == ("trade", {"instrument": "TCS", "seq": 1}, "bar")
        response.close()

        # missed while disconnected, still in the ring: delivered on reconnect
        broadcaster.publish("trade", {"instrument": "TCS", "seq": 2})
        broadcaster.publish("bar", {"instrument": "TCS", "final": False})
        again = await client.get("/stream?instrument=TCS", headers={"Last-Event-ID": first_id})
        events = await read_events(again, 3)
        assert [(k, d.get("seq"), d.get("final")) for _, k, d in events] == [
            ("bar", None, True),
            ("trade", 2, None),
            ("bar", None, False),
        ]
        again.close()

        # an account's stream: market events, and the account's own events whole
        alice = await client.get("/stream?account=alice")
        await asyncio.sleep(0.05)
        broadcaster.publish("trade", {"instrument": "RIL", "seller": "alice", "seq": 7})
        broadcaster.publish("trade", {"instrument": "RIL", "seller": "bob", "seq": 8})
        broadcaster.publish("order", {"instrument": "RIL", "account": "bob", "status": "FILLED"})
        broadcaster.publish("order", {"instrument": "RIL", "account": "alice", "status": "FILLED"})
        assert [(k, d) for _, k, d in await read_events(alice, 3)] == [
            ("trade", {"instrument": "RIL", "seller": "alice", "seq": 7}),
            ("trade", {"instrument": "RIL", "seq": 8}),
            ("order", {"instrument": "RIL", "account": "alice", "status": "FILLED"}),
        ]
        alice.close()

        unknown = await client.get("/stream", headers={"Last-Event-ID": "other-boot-5"})
        assert b"event: reset" in await asyncio.wait_for(unknown.content.readuntil(b"reset"), 5)
        unknown.close()
    finally:
        await client.close()


SECRET = b"shared by the workers"


async def owner_and_other(**other: Any) -> tuple[Exchange, TestClient, TestClient, str]:
    """A worker owning every key, and one that owns none and asks it."""
    owner = Exchange()
    owner.feed(ORDERS)
    owner_client = await serve(owner.services(cluster_secret=SECRET))
    base = str(owner_client.make_url("/")).rstrip("/")
    overrides = {
        "owner": lambda kind, key: base,
        "peers": lambda: [base],
        "cluster_secret": SECRET,
        **other,
    }
    client = await serve(Exchange().services(**overrides))
    return owner, owner_client, client, base


async def test_views_are_answered_by_the_owner_of_the_key() -> None:
    _, owner_client, client, _ = await owner_and_other()
    try:
        for path in ("/orderbook/TCS", "/trades/TCS", "/bars/TCS", "/profit/TCS", "/accounts/bob"):
            assert await get(client, path) == await get(owner_client, path)
        assert await get(client, "/instruments") == await get(owner_client, "/instruments")
        assert (await get(client, "/orderbook/NOPE", 404))["errors"]
    finally:
        await client.close()
        await owner_client.close()


@pytest.mark.parametrize(
    "mark",
    [
        "1",  # what a client claiming to be a peer used to send
        lambda now, path, to: sign(b"guessed", "GET", path, b"", now, to=to),  # wrong secret
        lambda now, path, to: sign(SECRET, "GET", "/orderbook/RIL", b"", now, to=to),  # other
        lambda now, path, to: sign(SECRET, "GET", path, b"", now - MAX_SKEW_SECONDS - 5, to=to),
        lambda now, path, to: sign(SECRET, "GET", path, b"", now, to="127.0.0.1:1"),  # elsewhere
    ],
)
async def test_a_hop_mark_that_does_not_verify_is_ignored(mark) -> None:
    """A request claiming to be a peer's hop is routed like any other, unless signed."""
    _, owner_client, client, _ = await owner_and_other()
    path = "/orderbook/TCS"
    try:
        now = time.time()
        to = destination(str(client.make_url("/")))
        value = mark if isinstance(mark, str) else mark(now, path, to)
        answer = await client.get(path, headers={ROUTED: value})
        assert answer.status == 200  # asked the owner, did not answer from its own empty books
        assert loads(await answer.read()) == await get(owner_client, path)
        true_hop = sign(SECRET, "GET", path, b"", now, to=to)
        signed = await client.get(path, headers={ROUTED: true_hop})
        assert signed.status == 404  # a true hop is answered here: no TCS book on this one
    finally:
        await client.close()
        await owner_client.close()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"cluster_secret": None}, "EXCHANGE_CLUSTER_SECRET is not set"),
        ({"peer_hosts": ("10.0.0.7",)}, "not on an allowed peer host"),
    ],
)
async def test_a_worker_asks_only_allowed_peers_and_only_with_the_secret(overrides, reason) -> None:
    _, owner_client, client, _ = await owner_and_other(**overrides)
    try:
        answer = await client.get("/orderbook/TCS")
        assert answer.status == 503
        assert reason in loads(await answer.read())["errors"][0]
        # /instruments goes on without the peers it may not ask: only its own (none)
        assert (await get(client, "/instruments"))["instruments"] == []
    finally:
        await client.close()
        await owner_client.close()


def test_signatures_bind_method_destination_path_body_and_time() -> None:
    now = 1_700_000_000.0
    to = "127.0.0.1:6066"
    mark = sign(SECRET, "GET", "/a?b=1", b"", now, to=to)
    assert verify(SECRET, mark, "GET", "/a?b=1", b"", now + MAX_SKEW_SECONDS, to=to)
    for args, bound in (
        ((SECRET, mark, "POST", "/a?b=1", b"", now), to),
        ((SECRET, mark, "GET", "/a?b=2", b"", now), to),
        ((SECRET, mark, "GET", "/a?b=1", b"x", now), to),
        ((SECRET, mark, "GET", "/a?b=1", b"", now + MAX_SKEW_SECONDS + 1), to),
        ((None, mark, "GET", "/a?b=1", b"", now), to),
        ((SECRET, "x." + mark.partition(".")[2], "GET", "/a?b=1", b"", now), to),
        ((SECRET, mark, "GET", "/a?b=1", b"", now), "127.0.0.1:6067"),
        ((SECRET, mark, "GET", "/a?b=1", b"", now), ""),
    ):
        assert not verify(*args, to=bound)
    assert allowed_peer("http://127.0.0.1:6067", LOOPBACK)
    for url in ("http://169.254.169.254/", "file:///etc/passwd", "http://127.0.0.1.evil.io/"):
        assert not allowed_peer(url, LOOPBACK)


def test_decimal_numbers_survive_the_json() -> None:
    assert loads(dumps({"x": Decimal("0.1")}))["x"] == Decimal("0.1")


async def test_views_answer_503_while_the_books_are_restored_and_never_rebuild_them(
    exchange: Exchange,
) -> None:
    client = await serve(exchange.services())
    try:
        books = exchange.matching.books
        exchange.matching.invalidate()  # partitions moved: the agent reloads after recovery
        for path in ("/orderbook/TCS", "/instruments"):
            response = await client.get(path)
            assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert exchange.matching.stale and exchange.matching.books is books
    finally:
        await client.close()


async def test_the_views_read_plain_values_that_cannot_change_the_state(
    exchange: Exchange,
) -> None:
    """What the query answers is built anew each time: changing it changes nothing."""
    query = exchange.services().query

    def ask() -> list[Any]:
        return [
            query.instruments(),
            query.orderbook("TCS", 5),
            query.trades("TCS", 10),
            query.bars("TCS"),
            query.profit("TCS"),
            query.account("alice", {}),
            query.instrument_names(),
            query.positions("alice"),
            query.last_prices(["TCS"]),
        ]

    first = ask()
    before = loads(dumps(first))

    def vandalize(value: Any) -> None:
        children = value.values() if isinstance(value, dict) else value
        for child in list(children):
            if isinstance(child, dict | list):
                vandalize(child)
        value.clear()

    assert before[3]["bars"] and before[5]["positions"]  # nested answers are covered
    vandalize(first)
    assert loads(dumps(ask())) == before
    public = [name for name in dir(query) if not name.startswith("_")]
    assert public == [
        "account",
        "bars",
        "instrument_names",
        "instruments",
        "knows",
        "last_prices",
        "orderbook",
        "positions",
        "profit",
        "trades",
    ]
    with pytest.raises(AttributeError):
        query.matching = MatchingState({}, "price-time")  # type: ignore[attr-defined]
