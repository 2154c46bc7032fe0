"""Order ids belong to the account, on a real two-worker exchange.

Alice and Bob post the same client order ids, each through both workers, on
instruments that both workers match: every order is its own, rests or trades,
and no order of one is refused as a repeat of the other's. The yardstick is the
reference exchange (``tests/reference.py``) fed the same orders under ids that
are unique per (account, client id) by construction.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_app.broker import free_port
from tests.harness import (
    api_key,
    bearer,
    consume,
    exchange_env,
    list_instruments,
    trades_by_id,
)
from tests.integration.test_serving import INSTRUMENTS, base, wait_for_split
from tests.reference import ReferenceExchange, reports_by_key

pytestmark = pytest.mark.integration

#: per instrument, in this order: (account, client id, side, quantity, price, worker)
STEPS = [
    ("alice", 1, "BUY", 5, 15, 0),
    ("bob", 1, "SELL", 3, 15, 1),  # trades with alice's
    ("alice", 2, "SELL", 4, 16, 1),
    ("bob", 2, "BUY", 4, 16, 0),  # trades with alice's
]


def client_id(n: int, k: int) -> str:
    """The client id both accounts give their k-th order on the n-th instrument."""
    return f"o-{2 * n + k}"


def settled(posted: set[int]) -> Any:
    """Until every posted order has a report and every trade reported has both sides'."""

    def done(reports: list[dict[str, Any]]) -> bool:
        if not posted <= {r["order_id"] for r in reports}:
            return False
        sides: dict[str, set[int]] = {}
        for report in reports:
            for trade_id in report.get("trade_ids", ()):
                sides.setdefault(trade_id, set()).add(report["order_id"])
        return all(len(ids) == 2 for ids in sides.values())

    return done


async def test_two_accounts_with_the_same_client_ids_trade_through_both_workers(
    broker, tmp_path: Path, start_worker
) -> None:
    first = exchange_env(broker.url, tmp_path / "a")
    second = {**first, "EXCHANGE_DATA_DIR": str(tmp_path / "b")}
    second["EXCHANGE_WEB_PORT"] = str(free_port())
    await list_instruments(first)
    start_worker(first, "a")
    start_worker(second, "b")
    urls = [base(first), base(second)]
    admin = await api_key(first, known_at=urls)
    keys = {
        account: await api_key(first, account, admin=False, known_at=urls)
        for account in ("alice", "bob")
    }
    async with aiohttp.ClientSession(headers=bearer(admin)) as session:
        await wait_for_split(session, urls)

    #: the exchange's id of each (account, client id), as the answers gave it
    ids: dict[tuple[str, str], int] = {}

    async def trade(n: int, instrument: str, http: aiohttp.ClientSession) -> None:
        """The steps on one instrument, each once the previous one's order is reported:
        the two workers publish independently, so only the reports give their order."""
        for account, k, side, quantity, price, worker in STEPS:
            body = {
                "client_order_id": client_id(n, k),
                "instrument": instrument,
                "trxn_type": side,
                "quantity": quantity,
                "price": price,
            }
            url = urls[(worker + n) % 2]  # each account's orders go through both workers
            async with http.post(
                f"{url}/orders", json=body, headers=bearer(keys[account])
            ) as response:
                assert response.status == 202, await response.text()
                order_id = (await response.json())["id"]
            ids[account, client_id(n, k)] = order_id
            await consume(first, "events", until=settled({order_id}), timeout=60)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(trade(n, i, http) for n, i in enumerate(INSTRUMENTS)))
    assert len(set(ids.values())) == len(ids) == len(STEPS) * len(INSTRUMENTS), ids

    reference = ReferenceExchange()
    numbered = {key: number for number, key in enumerate(sorted(ids), 1)}
    for n, instrument in enumerate(INSTRUMENTS):
        for account, k, side, quantity, price, _ in STEPS:
            reference.apply(
                {
                    "id": numbered[account, client_id(n, k)],
                    "instrument": instrument,
                    "trxn_type": side,
                    "quantity": quantity,
                    "price": price,
                    "order_timestamp": "2023-03-12T10:00:00+00:00",
                    "account": account,
                }
            )

    def named(reports: list[dict[str, Any]], names: dict[int, tuple[str, str]]) -> Any:
        """Reports by their key, the order id replaced by (account, client id), the
        timestamp (the worker's clock stamps the orders) left out."""
        return reports_by_key(
            {**r, "order_id": names[r["order_id"]], "timestamp": None} for r in reports
        )

    events = await consume(first, "events", until=settled(set(ids.values())), timeout=60)
    got = named(events, {order_id: key for key, order_id in ids.items()})
    expected = named(reference.reports, {number: key for key, number in numbered.items()})
    for account in ("alice", "bob"):  # exactly the expected reports, per account
        mine = {key: r for key, r in got.items() if r["account"] == account}
        assert mine == {key: r for key, r in expected.items() if r["account"] == account}
    assert not [r for r in events if r["status"] == "REJECTED"]
    assert len(expected) == 6 * len(INSTRUMENTS)

    def who(trades: Any, names: dict[int, tuple[str, str]]) -> set[tuple[Any, ...]]:
        return {
            (t["trade_id"], names[t["buy_order_id"]], names[t["sell_order_id"]], t["quantity"],
             t["price"], t["buyer"], t["seller"], t["aggressor"])
            for t in trades
        }  # fmt: skip

    records = await consume(first, "trades", until=lambda r: len(r) >= len(reference.trades))
    assert who(trades_by_id(records).values(), {i: key for key, i in ids.items()}) == who(
        reference.trades, {number: key for key, number in numbered.items()}
    )
