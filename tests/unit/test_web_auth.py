"""Who may do what over HTTP: API keys, per-account authorization, admin-only paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.auth import KeyRing, Principal, new_key, parse_key
from exchange_app.web import Broadcaster
from exchange_app.web.throttle import FailureThrottle
from exchange_app.wire import dumps, loads
from tests.harness import bearer
from tests.unit.test_web_views import JSON, SECRET, SEED, Exchange, read_events, serve


def ring_with(*keys: tuple[str, bool]) -> tuple[KeyRing, list[str]]:
    ring, issued = KeyRing(), []
    for account, admin in keys:
        key, key_id, record = new_key(account, admin=admin)
        ring.apply(key_id, record)
        issued.append(key)
    ring.ready = True
    return ring, issued


@pytest.fixture()
async def exchange() -> Exchange:
    exchange = Exchange()
    exchange.feed(
        [{**order, "account": ("alice", "bob")[i % 2]} for i, order in enumerate(ORDERS_SMALL)]
    )
    return exchange


ORDERS_SMALL = [
    {"id": 1, "instrument": "TCS", "trxn_type": "BUY", "quantity": 5, "price": 15},
    {"id": 2, "instrument": "TCS", "trxn_type": "SELL", "quantity": 5, "price": 15},
    {"id": 3, "instrument": "TCS", "trxn_type": "BUY", "quantity": 2, "price": 14},
    {"id": 4, "instrument": "TCS", "trxn_type": "SELL", "quantity": 2, "price": 16},
]
for _i, _order in enumerate(ORDERS_SMALL):
    _order["order_timestamp"] = f"2023-03-12T09:15:0{_i}+00:00"


@pytest.fixture()
async def keys() -> tuple[KeyRing, dict[str, str]]:
    ring, (alice, bob, admin) = ring_with(("alice", False), ("bob", False), ("ops", True))
    return ring, {"alice": alice, "bob": bob, "admin": admin}


@pytest.fixture()
async def client(exchange, keys) -> AsyncIterator[TestClient]:
    client = await serve(exchange.services(keys=keys[0], broadcaster=Broadcaster()))
    yield client
    await client.close()


PUBLIC = [
    "/",
    "/instruments",
    "/orderbook/TCS",
    "/trades/TCS",
    "/bars/TCS",
    "/profit/TCS",
    "/health",
]
PRIVATE = [
    ("POST", "/orders"),
    ("DELETE", "/orders/1?instrument=TCS"),
    ("GET", "/accounts/alice"),
    ("GET", "/whoami"),
    ("GET", "/metrics"),
    ("GET", "/table/"),
    ("GET", "/router/"),
    ("GET", "/stream?account=alice"),
]


@pytest.mark.parametrize("path", PUBLIC)
async def test_market_data_needs_no_key(client, path) -> None:
    assert (await client.get(path)).status == 200


@pytest.mark.parametrize(("method", "path"), PRIVATE)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ek_000000000000_" + "A" * 43},  # well-formed, unknown
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic YWxpY2U6YWxpY2U="},
    ],
)
async def test_without_a_valid_key_private_requests_answer_401(
    client, exchange, method, path, headers
) -> None:
    response = await client.request(method, path, headers={**headers, **JSON}, data=dumps(SEED))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not exchange.published


async def test_a_key_trades_and_cancels_as_its_own_account_only(client, exchange, keys) -> None:
    alice = bearer(keys[1]["alice"])
    answer = await client.post("/orders", data=dumps(SEED), headers={**alice, **JSON})
    assert answer.status == 202 and exchange.published[-1][1]["account"] == "alice"
    as_bob = {**SEED, "id": 7, "account": "bob"}
    answer = await client.post("/orders", data=dumps(as_bob), headers={**alice, **JSON})
    assert answer.status == 403 and len(exchange.published) == 1
    assert (
        await client.delete("/orders/1?instrument=TCS&account=bob", headers=alice)
    ).status == 403
    assert (await client.delete("/orders/1?instrument=TCS", headers=alice)).status == 202
    assert exchange.published[-1][1] == {**exchange.published[-1][1], "account": "alice"}
    assert len(exchange.published) == 2


@pytest.mark.parametrize(
    ("who", "account", "status"),
    [("alice", "alice", 200), ("alice", "bob", 403), ("admin", "bob", 200), ("bob", "alice", 403)],
)
async def test_an_account_is_read_by_its_key_or_an_admin(
    client, keys, who, account, status
) -> None:
    response = await client.get(f"/accounts/{account}", headers=bearer(keys[1][who]))
    assert response.status == status
    if status == 200:  # the account asked for, not the key's own
        answer = loads(await response.read())
        assert answer["account"] == account
        assert {row["account"] for row in answer["positions"]} == {account}
    stream = await client.get(f"/stream?account={account}", headers=bearer(keys[1][who]))
    assert stream.status == status
    stream.close()


@pytest.mark.parametrize(
    ("path", "for_admin"),
    # Faust's own views are not served by this test server: past the key check, 404
    [("/metrics", 200), ("/table/", 404), ("/router/", 404)],
)
async def test_operations_views_answer_only_an_admin_key(client, keys, path, for_admin) -> None:
    refused = await client.get(path, headers=bearer(keys[1]["alice"]))
    assert refused.status == 403
    assert "admin" in " ".join(loads(await refused.read())["errors"])
    answer = await client.get(path, headers=bearer(keys[1]["admin"]))
    assert answer.status == for_admin
    if path == "/metrics":
        assert (await answer.text()).startswith("# HELP exchange_")


async def test_whoami_and_a_revoked_key(client, keys) -> None:
    ring, issued = keys
    answer = await client.get("/whoami", headers=bearer(issued["bob"]))
    assert loads(await answer.read()) == {"account": "bob", "admin": False, "auth": True}
    key_id, _ = parse_key(issued["bob"]) or ("", "")
    ring.apply(key_id, None)  # revoked: a tombstone in the key store
    assert (await client.get("/whoami", headers=bearer(issued["bob"]))).status == 401


async def test_until_the_keys_are_loaded_a_key_is_answered_503(client, keys) -> None:
    keys[0].ready = False
    response = await client.get("/whoami", headers=bearer(keys[1]["alice"]))
    assert response.status == 503 and response.headers["Retry-After"] == "1"


async def test_a_keys_stream_has_market_events_and_its_own(exchange, keys) -> None:
    broadcaster = Broadcaster()
    client = await serve(exchange.services(keys=keys[0], broadcaster=broadcaster))
    try:
        public = await client.get("/stream")
        mine = await client.get("/stream", headers=bearer(keys[1]["alice"]))
        await asyncio.sleep(0.05)
        broadcaster.publish("order", {"instrument": "TCS", "account": "bob", "status": "NEW"})
        broadcaster.publish("pnl", {"instrument": "TCS", "account": "alice"})
        broadcaster.publish("trade", {"instrument": "TCS", "seq": 3, "buyer": "alice"})
        assert [(k, d) for _, k, d in await read_events(mine, 2)] == [
            ("pnl", {"instrument": "TCS", "account": "alice"}),
            ("trade", {"instrument": "TCS", "seq": 3, "buyer": "alice"}),
        ]
        assert [(k, d) for _, k, d in await read_events(public, 1)] == [
            ("trade", {"instrument": "TCS", "seq": 3})
        ]
        public.close()
        mine.close()
    finally:
        await client.close()


async def test_a_peer_hop_carries_the_askers_authorization(exchange, keys) -> None:
    """The worker asked checks the key; the owner trusts only its signed hop."""
    ring, issued = keys
    owner = await serve(exchange.services(keys=ring, cluster_secret=SECRET))
    base = str(owner.make_url("/")).rstrip("/")
    asked = await serve(
        Exchange().services(
            keys=ring, cluster_secret=SECRET, owner=lambda kind, key: base, peers=lambda: [base]
        )
    )
    try:
        mine = await asked.get("/accounts/alice", headers=bearer(issued["alice"]))
        assert mine.status == 200 and loads(await mine.read())["account"] == "alice"
        assert (await asked.get("/accounts/bob", headers=bearer(issued["alice"]))).status == 403
        assert (
            await owner.get("/accounts/alice", headers={"X-Exchange-Routed": "1"})
        ).status == 401
    finally:
        await asked.close()
        await owner.close()


def test_keys_authenticate_only_as_issued() -> None:
    ring, (alice, admin) = ring_with(("alice", False), ("ops", True))
    key_id, secret = parse_key(alice) or ("", "")
    assert ring.authenticate(alice) == Principal("alice", key=key_id)
    assert ring.authenticate(admin) == Principal("ops", True, (parse_key(admin) or ("",))[0])
    other = "B" if secret.endswith("A") else "A"
    assert ring.authenticate(f"ek_{key_id}_{secret[:-1]}{other}") is None  # one character off
    assert ring.ids_of("alice") == [key_id]
    assert "sha256" in ring.records[key_id] and secret not in str(ring.records[key_id])


@given(st.text(max_size=80))
def test_no_made_up_key_authenticates(text: str) -> None:
    ring, _ = ring_with(("alice", True))
    assert ring.authenticate(text) is None


async def test_each_key_has_its_own_request_rate(exchange, keys) -> None:
    ring, issued = keys
    client = await serve(exchange.services(keys=ring, key_rate=0.5, key_burst=3))
    try:
        alice, bob = bearer(issued["alice"]), bearer(issued["bob"])
        assert [(await client.get("/whoami", headers=alice)).status for _ in range(3)] == [200] * 3
        refused = await client.get("/whoami", headers=alice)
        assert refused.status == 429 and refused.headers["Retry-After"] == "2"
        assert (await client.get("/whoami", headers=bob)).status == 200  # bob's bucket is full
        assert (await client.get("/instruments")).status == 200  # market data: no key, no limit
    finally:
        await client.close()


async def test_each_key_holds_a_bounded_number_of_streams(exchange, keys) -> None:
    ring, issued = keys
    broadcaster = Broadcaster()
    services = exchange.services(keys=ring, broadcaster=broadcaster, max_streams_per_key=1)
    client = await serve(services)
    try:
        alice, bob = bearer(issued["alice"]), bearer(issued["bob"])
        first = await client.get("/stream", headers=alice)
        assert first.status == 200
        again = await client.get("/stream", headers=alice)
        assert again.status == 429 and again.headers["Retry-After"] == "5"
        other = await client.get("/stream", headers=bob)
        assert other.status == 200
        other.close()
        first.close()
        for _ in range(100):  # the server notices the disconnect at its next write
            broadcaster.publish("bar", {"instrument": "TCS"})
            await asyncio.sleep(0.02)
            again = await client.get("/stream", headers=alice)
            if again.status == 200:
                break
        assert again.status == 200
        again.close()
    finally:
        await client.close()


async def test_failed_authentication_is_throttled_per_address(exchange, keys) -> None:
    ring, issued = keys
    client = await serve(exchange.services(keys=ring, auth_failure_rate=0.5, auth_failure_burst=3))
    try:
        wrong = [
            bearer("ek_000000000000_" + "A" * 43),
            {"Authorization": "Basic YWxpY2U6"},
            bearer("not-a-key"),
        ]
        assert [(await client.get("/whoami", headers=h)).status for h in wrong] == [401] * 3
        refused = await client.get("/whoami", headers=wrong[0])
        assert refused.status == 429 and refused.headers["Retry-After"] == "2"
        assert "failed authentications" in (await refused.json())["errors"][0]
        assert (await client.get("/stream", headers=wrong[0])).status == 429
        for _ in range(3):  # a key that authenticates is not throttled, nor counted
            assert (await client.get("/whoami", headers=bearer(issued["alice"]))).status == 200
        assert (await client.get("/instruments")).status == 200  # nor is no key at all
    finally:
        await client.close()


def test_the_failure_throttle_refills_and_forgets_the_oldest_addresses() -> None:
    now = [0.0]
    throttle = FailureThrottle(rate=0.5, burst=2, clock=lambda: now[0], max_addresses=2)
    assert [throttle.failed("a") for _ in range(3)] == [None, None, 2]
    now[0] = 1.0
    assert throttle.failed("a") == 1  # half a token back: one more second
    now[0] = 2.0
    assert throttle.failed("a") is None and throttle.failed("a") == 2
    assert throttle.failed("b") is None and throttle.failed("c") is None
    assert throttle.failed("a") is None  # "a", the oldest, was forgotten: a full bucket


@pytest.mark.parametrize(
    "key",
    [
        "ek_0123456789ab_" + "A" * 43 + "\n",  # "$" would match before the newline
        "\nek_0123456789ab_" + "A" * 43,
        "ek_0123456789ab_" + "A" * 44,
    ],
)
def test_a_key_is_matched_whole(key: str) -> None:
    assert parse_key(key) is None
    assert parse_key(key.strip()[: 16 + 43]) is not None


@pytest.mark.parametrize("client_order_id", ["abc\n", "abc\n\n"])
async def test_a_trailing_newline_is_refused_in_a_client_order_id(
    client, exchange, keys, client_order_id
) -> None:
    alice = bearer(keys[1]["alice"])
    order = {**{k: v for k, v in SEED.items() if k != "id"}, "client_order_id": client_order_id}
    answer = await client.post("/orders", data=dumps(order), headers={**alice, **JSON})
    assert answer.status == 400, await answer.text()
    assert "client_order_id" in (await answer.json())["errors"][0]
    assert not exchange.published


@pytest.mark.parametrize("path", ["/orderbook/TCS%0A", "/accounts/alice%0A"])
async def test_a_trailing_newline_is_refused_in_a_path(client, keys, path) -> None:
    response = await client.get(path, headers=bearer(keys[1]["admin"]))
    assert response.status == 400, await response.text()
