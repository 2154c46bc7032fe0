"""A hostile web run beside a legitimate order flow: thousands of requests that must be
refused change nothing, answer no 500, and leave the worker serving."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from exchange_app.orderflow import seed_orders, stepping_clock
from exchange_app.web.peers import ROUTED, destination, sign
from tests.harness import (
    EXCHANGE,
    ROOT,
    api_key,
    assert_same_analytics,
    assert_same_books,
    bearer,
    consume,
    consume_analytics,
    produce,
    reference_run,
    trades_by_id,
)

pytestmark = pytest.mark.integration

ROUNDS = 500  # fifteen hostile requests a round
CONCURRENCY = 16
JSON = {"Content-Type": "application/json"}


def orders() -> list[dict[str, Any]]:
    clock = stepping_clock(step=0.5)
    return list(
        itertools.islice(seed_orders(clock=clock, seed=61, accounts=("alice", "bob")), 3_000)
    )


def stamped(moment: str) -> bytes:
    """A crossing order of mallory's own, stamped ``moment`` by the client."""
    order = {"instrument": "TCS", "trxn_type": "SELL", "quantity": 1, "price": 1}
    return json.dumps({**order, "order_timestamp": moment}).encode()


def hostile(
    url: str, mallory: str, victims: list[tuple[int, str]], hops: tuple[str, str]
) -> list[tuple[str, str, dict[str, str], bytes, set[int]]]:
    """(method, path, headers, body, the status it must get): none may have an effect on
    anyone, and mallory's cancels name other people's resting orders. ``hops``: a peer's
    mark for ``/accounts/alice`` captured after its one use, and one signed for another
    worker."""
    order = json.dumps(
        {"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1, "account": "alice"}
    ).encode()
    own = json.dumps({"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1})
    as_mallory = bearer(mallory)
    huge = b'{"instrument": "TCS", "trxn_type": "BUY", "quantity": 1E+9999999999999999999}'
    malformed = [  # once a 500 each: str.isdigit() took "²", Decimal raised, int() too
        ("GET", "/orderbook/TCS?depth=\u00b2", {}, b"", {400}),
        ("GET", "/orderbook/TCS?depth=" + "9" * 5_000, {}, b"", {400}),
        ("POST", "/orders", {**JSON, **as_mallory}, huge, {400}),
        ("DELETE", "/orders/1E+999999999999999999?instrument=TCS", as_mallory, b"", {400}),
        ("GET", "/accounts/alice", {ROUTED: "\u00b2." + "a" * 32 + ".x"}, b"", {401}),
        # event times at the calendar's ends: once a 500, or a bar in the year 9999 that
        # crashed the analytics and took other traders' trades with it
        *(
            ("POST", "/orders", {**JSON, **as_mallory}, stamped(moment), {400})
            for moment in (
                "9999-12-31T23:59:59+00:00",
                "0001-01-01T00:00:00+00:00",
                "9999-12-31T23:59:59-05:00",
                "9000-01-01T00:00:00+00:00",
            )
        ),
    ]
    requests = []
    for n in range(ROUNDS):
        order_id, instrument = victims[n % len(victims)]
        requests += [
            ("POST", "/orders", JSON, order, {401}),  # no key
            ("POST", "/orders", {**JSON, **bearer("ek_0123456789ab_" + "x" * 43)}, order, {401}),
            ("POST", "/orders", {**JSON, "Authorization": "Basic YWxpY2U6"}, order, {401}),
            ("POST", "/orders", {**JSON, **as_mallory}, order, {403}),  # as alice
            (
                "POST",
                "/orders",
                {"Content-Type": "text/plain", **as_mallory},
                own.encode(),
                {415},
            ),
            ("POST", "/orders", {**JSON, **as_mallory}, b"[" * 20_000, {413}),
            ("POST", "/orders", {**JSON, **as_mallory}, b"[" * 5_000 + b"]" * 5_000, {400}),
            # someone else's resting order: published as mallory's cancel, refused by the book
            ("DELETE", f"/orders/{order_id}?instrument={instrument}", as_mallory, b"", {202}),
            ("GET", "/accounts/alice", {ROUTED: "1"}, b"", {401}),  # spoofed hop
            ("GET", "/accounts/alice", {ROUTED: hops[n % 2]}, b"", {401}),  # replayed, misdirected
            malformed[n % len(malformed)],
            ("GET", "/instruments?limit=1001", {}, b"", {400}),  # pages are bounded
            ("GET", "/instruments?cursor=%25%25", {}, b"", {400}),
            ("GET", f"/accounts/alice?limit=1000&cursor={'Q' * 200}", as_mallory, b"", {403}),
            (
                "GET",
                ("/accounts/alice", "/metrics", "/table/", "/stream?account=alice")[n % 4],
                as_mallory,
                b"",
                {403},
            ),
        ]
    return [(m, url + p, h, b, ok) for m, p, h, b, ok in requests]


def refusals_of(account: str, reports: list[dict[str, Any]]) -> Counter[int]:
    """The order ids of ``account``'s cancels that the book refused as not its resting orders
    (and every report of ``account`` must be one)."""
    mine = [r for r in reports if r.get("account") == account]
    accepted = [r for r in mine if r["status"] != "REJECTED"]
    assert not accepted, accepted[:3]
    return Counter(
        r["order_id"]
        for r in mine
        if any(reason.startswith(f"cannot cancel order {r['order_id']}: no such order is resting")
               for reason in r["reasons"])
    )  # fmt: skip


async def attack(
    requests: list[tuple[str, str, dict[str, str], bytes, set[int]]],
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    unexpected: list[str] = []
    queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes, set[int]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            method, url, headers, body, allowed = queue.get_nowait()
            async with session.request(method, url, headers=headers, data=body) as response:
                await response.read()
                statuses[response.status] += 1
                if response.status not in allowed:
                    unexpected.append(f"{method} {url[-40:]} -> {response.status}")

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
    assert not unexpected, unexpected[:10]
    return statuses


async def test_a_hostile_run_changes_nothing_and_the_worker_keeps_serving(
    env, start_worker
) -> None:
    log = orders()
    reference, expected, analytics = reference_run(log)
    resting = [(o["id"], o["instrument"]) for o in log if o.get("account") == "alice"][:200]
    # every rule answers for itself here: the key rate limit and the throttle of failed
    # authentications (429) have tests of their own
    start_worker(
        {
            **env,
            "EXCHANGE_KEY_RATE": "100000",
            "EXCHANGE_KEY_BURST": "100000",
            "EXCHANGE_AUTH_FAILURE_RATE": "100000",
            "EXCHANGE_AUTH_FAILURE_BURST": "100000",
        }
    )
    url = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    mallory = await api_key(env, "mallory", admin=False, known_at=[url])
    admin = await api_key(env, known_at=[url])

    # a hop a peer sent once, then captured; and a hop for another worker of the exchange
    secret, now, path = env["EXCHANGE_CLUSTER_SECRET"].encode(), time.time(), "/accounts/alice"
    captured = sign(secret, "GET", path, b"", now, to=destination(url))
    misdirected = sign(secret, "GET", path, b"", now, to="127.0.0.1:1")
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + path, headers={ROUTED: captured}) as used,
    ):
        # the peer's one use: no key asked for; alice has not traded yet, her account is empty
        assert used.status == 200 and (await used.json())["positions"] == []
    requests = hostile(url, mallory, resting, (captured, misdirected))
    assert len(requests) >= 5_000
    flow = produce(env, log, rate=len(log) / 15)  # orders arrive while the attack goes on
    statuses, _ = await asyncio.gather(attack(requests), flow)  # each got its status, no 500

    # mallory's cancels of other people's orders reached the book, which refused each one
    cancelled = Counter(resting[n % len(resting)][0] for n in range(ROUNDS))
    refused = await consume(
        env, "events", until=lambda r: refusals_of("mallory", r) == cancelled, timeout=120
    )
    assert refusals_of("mallory", refused) == cancelled

    records = await consume(
        env, "trades", until=lambda r: len({t["trade_id"] for t in r}) >= len(expected)
    )
    assert trades_by_id(records) == expected  # no trade more, none less, none different
    assert_same_analytics(await consume_analytics(env, analytics), analytics)  # accounts' P&L
    await assert_same_books(env["EXCHANGE_WEB_PORT"], reference.books)

    async with aiohttp.ClientSession(headers=bearer(admin)) as session:
        async with session.get(f"{url}/health") as health:
            assert health.status == 200
        async with session.get(f"{url}/accounts/mallory") as account:
            assert account.status == 200  # mallory never traded: her account is empty
            assert (await account.json())["positions"] == []
    print(f"\nhostile web run: {len(requests)} requests, statuses {dict(sorted(statuses.items()))}")


SLOW_CLIENTS = 100


async def test_revoked_keys_lose_their_streams_and_slow_clients_their_connections(
    env, start_worker
) -> None:
    """A stream ends when its key is revoked from the command line; half-sent requests are
    closed by the worker, which serves others meanwhile; anonymous streams and failed
    authentications are bounded per client address."""
    start_worker(
        {
            **env,
            "EXCHANGE_HEADER_TIMEOUT_SECONDS": "1",
            "EXCHANGE_MAX_STREAMS_PER_ADDRESS": "2",
            "EXCHANGE_AUTH_FAILURE_BURST": "5",
        }
    )
    url = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    mallory = await api_key(env, "mallory", admin=False, known_at=[url])

    async def first_line(response: aiohttp.ClientResponse) -> None:
        assert response.status == 200
        assert await asyncio.wait_for(response.content.readline(), 30) == b"retry: 2000\n"

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        stream = await session.get(f"{url}/stream", headers=bearer(mallory))
        await first_line(stream)
        revoke = await asyncio.create_subprocess_exec(
            EXCHANGE, "keys", "revoke", "mallory", env=env, cwd=ROOT
        )
        assert await revoke.wait() == 0
        await asyncio.wait_for(stream.content.read(), 60)  # to its end: the worker ended it
        again = await session.get(f"{url}/stream", headers=bearer(mallory))
        assert again.status == 401

        slow = [await asyncio.open_connection("127.0.0.1", env["EXCHANGE_WEB_PORT"])
                for _ in range(SLOW_CLIENTS)]  # fmt: skip
        for _, writer in slow:
            writer.write(b"GET /health HTTP/1.1\r\nHost: exchange\r\nX-Slow: ")
            await writer.drain()
        async with session.get(f"{url}/health") as health:
            assert health.status == 200  # served while the slow ones hang
        anonymous = [await session.get(f"{url}/stream") for _ in range(2)]
        for response in anonymous:
            await first_line(response)
        refused = await session.get(f"{url}/stream")
        assert refused.status == 429
        closed = await asyncio.gather(*(asyncio.wait_for(reader.read(), 30) for reader, _ in slow))
        assert closed == [b""] * SLOW_CLIENTS  # every half-sent request closed by the worker
        for _, writer in slow:
            writer.close()
        for response in anonymous:
            response.close()

        wrong = bearer("ek_0123456789ab_" + "x" * 43)
        statuses = [(await session.get(f"{url}/whoami", headers=wrong)).status for _ in range(6)]
        assert statuses == [401] * 5 + [429]
