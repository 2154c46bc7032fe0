"""Answers larger than a socket read move whole between two real workers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_app.broker import free_port
from exchange_app.wire import loads
from tests.harness import api_key, bearer, eventually, exchange_env, list_instruments, produce
from tests.integration.test_serving import base, wait_for_split

pytestmark = pytest.mark.integration

#: Positions of one account: at about 260 bytes each, one page of them is over 1 MiB.
POSITIONS = 4400
INSTRUMENTS = [f"B{n}" for n in range(POSITIONS)]
#: The longest account name there is, so that every position says a lot.
TRADER = "t" * 64
MAKER = "maker"


def orders() -> list[dict[str, Any]]:
    flow = []
    for n, instrument in enumerate(INSTRUMENTS):
        price = f"{10 + n % 90}.{n:08}"
        for k, (side, account) in enumerate([("SELL", MAKER), ("BUY", TRADER)]):
            flow.append(
                {
                    "id": 2 * n + k + 1,
                    "instrument": instrument,
                    "trxn_type": side,
                    "quantity": 3,
                    "price": price,
                    "order_timestamp": "2023-03-12T10:00:00+00:00",
                    "account": account,
                }
            )
    return flow


async def read(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def test_an_answer_over_one_mib_moves_whole_between_workers(
    broker, tmp_path: Path, start_worker
) -> None:
    first = exchange_env(broker.url, tmp_path / "a", EXCHANGE_MAX_PAGE=str(2 * POSITIONS))
    second = {**first, "EXCHANGE_DATA_DIR": str(tmp_path / "b")}
    second["EXCHANGE_WEB_PORT"] = str(free_port())
    await list_instruments(first, INSTRUMENTS)
    start_worker(first, "a")
    start_worker(second, "b")
    urls = [base(first), base(second)]
    admin = await api_key(first, known_at=urls)
    async with aiohttp.ClientSession(headers=bearer(admin)) as session:
        await wait_for_split(session, urls)
        await produce(first, orders())
        path = f"/accounts/{TRADER}?limit={2 * POSITIONS}"

        async def whole() -> None:  # the positions are written after the trades go out
            for url in urls:
                status, body = await read(session, url + path)
                assert status == 200 and len(loads(body)["positions"]) == POSITIONS

        await eventually(whole, timeout=180)
        # one of the two answers came from the account's owner, the other through it
        answers = [await read(session, url + path) for url in urls]
        assert answers[0] == answers[1]
        status, body = answers[0]
        assert len(body) > 1024 * 1024
        account = loads(body)
        assert account["next_cursor"] is None
        assert [p["instrument"] for p in account["positions"]] == sorted(INSTRUMENTS)
        # every position is marked at its instrument's last price, wherever the book is
        assert all(p["mark_price"] == p["average_cost"] for p in account["positions"])
        assert account["unrealized"] == Decimal(0)

        # the listing, merged from both workers, a page at a time or in one
        pages: list[list[Any]] = [[], []]
        for n, url in enumerate(urls):
            cursor = ""
            while cursor is not None:
                status, body = await read(session, f"{url}/instruments?limit=1000&cursor={cursor}")
                page = loads(body)
                assert status == 200 and len(page["instruments"]) <= 1000
                pages[n] += page["instruments"]
                cursor = page["next_cursor"]
        assert pages[0] == pages[1]
        assert [row["instrument"] for row in pages[0]] == sorted(INSTRUMENTS)
        status, body = await read(session, f"{urls[1]}/instruments?limit={2 * POSITIONS}")
        assert loads(body) == {"instruments": pages[0], "next_cursor": None}
