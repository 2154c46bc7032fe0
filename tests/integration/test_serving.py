"""The serving layer on two real workers: every view answers for every key from either."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_app.broker import free_port
from exchange_app.routing import home_partition
from tests.harness import (
    api_key,
    bearer,
    consume,
    eventually,
    exchange_env,
    list_instruments,
    produce,
)

pytestmark = pytest.mark.integration

#: one instrument and one account per partition, so both workers own some
INSTRUMENTS = [
    next(f"S{i}" for i in range(1000) if home_partition(f"S{i}", 4) == p) for p in range(4)
]
ACCOUNTS = [
    next(f"acct{i}" for i in range(1000) if home_partition(f"acct{i}", 4) == p) for p in range(4)
]


def base(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        return response.status, await response.json(content_type=None)


async def wait_for_split(
    session: aiohttp.ClientSession, urls: list[str], timeout: float = 90
) -> None:
    """Until both workers are healthy and each owns some of the partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            statuses = [(await fetch(session, f"{u}/health"))[0] for u in urls]
            _, tables = await fetch(session, f"{urls[0]}/router/")
            if statuses == [200, 200] and len(tables) == 2:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise TimeoutError("the two workers did not share the partitions")


def reported(order_id: int, times: int = 1) -> Any:
    return lambda events: sum(e["order_id"] == order_id for e in events) >= times


def sold(order_id: int) -> Any:
    return lambda trades: any(t["id_sell"] == order_id for t in trades)


def orders() -> list[dict[str, Any]]:
    flow = []
    for n, instrument in enumerate(INSTRUMENTS):
        for k, (side, price) in enumerate([("SELL", 11), ("SELL", 12), ("BUY", 12), ("BUY", 9)]):
            flow.append(
                {
                    "id": 100 * n + k + 1,
                    "instrument": instrument,
                    "trxn_type": side,
                    "quantity": 2,
                    "price": price,
                    "order_timestamp": f"2023-03-12T10:0{k}:00",
                    "account": ACCOUNTS[(n + k) % 4],
                }
            )
    return flow


async def test_every_view_answers_for_every_key_from_either_worker(
    broker, tmp_path: Path, start_worker
) -> None:
    first = exchange_env(broker.url, tmp_path / "a")
    second = {**first, "EXCHANGE_DATA_DIR": str(tmp_path / "b")}
    second["EXCHANGE_WEB_PORT"] = str(free_port())  # its own: port + 1 may be taken
    await list_instruments(first)
    start_worker(first, "a")
    start_worker(second, "b")
    urls = [base(first), base(second)]
    admin = await api_key(first, known_at=urls)  # accounts and /router/ need an admin key
    trader_key = await api_key(first, ACCOUNTS[0], admin=False, known_at=urls)
    trader = bearer(trader_key)
    async with aiohttp.ClientSession(headers=bearer(admin)) as session:
        await wait_for_split(session, urls)
        async with aiohttp.ClientSession() as anyone:  # no key: the operations views refuse
            for path in ("/metrics", "/table/", "/router/", f"/accounts/{ACCOUNTS[0]}"):
                assert (await fetch(anyone, urls[0] + path))[0] == 401, path
            async with anyone.get(urls[0] + "/metrics", headers=bearer(trader_key)) as response:
                assert response.status == 403  # a trader's key is not an admin's
        await produce(first, orders())
        await consume(first, "pnl", until=lambda r: len(r) >= 2 * len(INSTRUMENTS))

        paths = ["/instruments"]
        for instrument in INSTRUMENTS:
            paths += [f"/orderbook/{instrument}", f"/trades/{instrument}", f"/bars/{instrument}",
                      f"/profit/{instrument}"]  # fmt: skip
        paths += [f"/accounts/{account}" for account in ACCOUNTS]

        async def agree() -> None:  # tables are written after the outputs waited for above
            for path in paths:
                answers = [await fetch(session, url + path) for url in urls]
                assert answers[0] == answers[1], path
                assert answers[0][0] == 200, (path, answers[0])

        await eventually(agree)
        _, listing = await fetch(session, urls[1] + "/instruments")
        assert [row["instrument"] for row in listing["instruments"]] == sorted(INSTRUMENTS)
        for url in urls:
            assert (await fetch(session, f"{url}/orderbook/NOPE"))[0] == 404

        # an order entered on one worker trades on whichever owns its instrument, for the
        # key's account only
        for n, url in enumerate(urls):
            instrument = INSTRUMENTS[0]
            _, book = await fetch(session, f"{url}/orderbook/{instrument}")
            order = {
                "instrument": instrument,
                "trxn_type": "SELL",
                "quantity": 1,
                "price": book["best_bid"],
                "account": ACCOUNTS[0],
                "client_order_id": f"sell-{n}",
            }
            async with session.post(f"{url}/orders", json=order) as response:
                assert response.status == 403  # the admin key is not ACCOUNTS[0]'s
            async with session.get(f"{url}/accounts/{ACCOUNTS[1]}", headers=trader) as response:
                assert response.status == 403  # nor may a trader read another account
            async with session.post(f"{url}/orders", json=order, headers=trader) as response:
                assert response.status == 202
                answer = await response.json()
                order_id = answer["id"]
            events = await consume(first, "events", until=reported(order_id))
            assert [e["status"] for e in events if e["order_id"] == order_id] == ["FILLED"]
            # a retry of the filled order, from the other worker: the first answer, no trade
            async with session.post(f"{urls[1 - n]}/orders", json=order, headers=trader) as again:
                assert (again.status, await again.json()) == (202, answer)
            events = await consume(first, "events", until=reported(order_id, times=2))
            mine = [e for e in events if e["order_id"] == order_id]
            assert [e["status"] for e in mine] == ["FILLED", "REJECTED"]
            assert "the first order stands" in mine[1]["reasons"][0] and mine[1]["duplicate"]
            trades = await consume(first, "trades", until=sold(order_id))
            assert sum(t["id_sell"] == order_id for t in trades) == 1
