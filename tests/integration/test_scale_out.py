"""Workers join and leave while orders flow: the results equal the uninterrupted run."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_app.broker import free_port
from exchange_app.orderflow import mixed_orders, seed_orders, stepping_clock
from exchange_app.routing import home_partition
from tests.harness import (
    Worker,
    assert_same_analytics,
    assert_same_books,
    consume,
    consume_analytics,
    exchange_env,
    list_instruments,
    produce,
    reference_outputs,
    reference_run,
    trades_by_id,
    trades_in,
)

pytestmark = pytest.mark.integration

#: two instruments per partition, so every worker has books to own
INSTRUMENTS = [
    name
    for p in range(4)
    for name in itertools.islice(
        (f"X{i}" for i in range(1000) if home_partition(f"X{i}", 4) == p), 2
    )
]


def worker_pool(
    broker: Any, tmp_path: Path, count: int
) -> tuple[dict[str, str], list[dict[str, str]], list[Worker]]:
    """``count`` workers of one exchange (not started): their own data dirs and web ports."""
    base = exchange_env(broker.url, tmp_path / "w0")
    envs = [base] + [
        {**base, "EXCHANGE_DATA_DIR": str(tmp_path / f"w{n}"), "EXCHANGE_WEB_PORT": str(port)}
        for n, port in ((n, free_port()) for n in range(1, count))
    ]
    return base, envs, [Worker(env, tmp_path / f"w{n}.log") for n, env in enumerate(envs)]


def order_log() -> list[dict]:
    clock = stepping_clock(step=0.5)
    seed = seed_orders(clock=clock, seed=31, instruments=INSTRUMENTS, accounts=("ann", "ben", "cy"))
    mixed = mixed_orders(clock=clock, seed=32, instruments=INSTRUMENTS, start_id=5_000_001)
    return [*itertools.islice(seed, 5000), *itertools.islice(mixed, 5000)]


@pytest.mark.parametrize(
    "leave_after", [3.0, 1.5], ids=["after-the-join-settled", "while-the-join-settles"]
)
async def test_workers_join_and_leave_while_orders_flow(
    broker, tmp_path: Path, workers, leave_after: float
) -> None:
    """Partitions move twice under load. The second move, made while the first one's
    rebalance settles, is where Faust's stream once skipped a packed batch."""
    orders = order_log()
    reference, expected, analytics = reference_run(orders)

    base, envs, pool = worker_pool(broker, tmp_path, 3)
    await list_instruments(base)
    workers.extend(pool)
    await asyncio.gather(*(asyncio.to_thread(w.start) for w in pool[:2]))

    async def feed() -> None:
        for start in range(0, len(orders), 250):  # itertools.batched needs Python 3.12
            await produce(base, orders[start : start + 250])
            await asyncio.sleep(0.4)

    flow = asyncio.create_task(feed())
    await asyncio.sleep(3)
    await asyncio.to_thread(pool[2].start)  # a third worker joins: partitions move to it
    await asyncio.sleep(leave_after)
    await asyncio.to_thread(pool[0].stop)  # the first leaves: its partitions move away
    await flow

    records = await consume(
        base, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=300
    )
    trades = trades_by_id(records)
    assert trades == expected
    assert_same_analytics(await consume_analytics(base, analytics, timeout=300), analytics)
    for env in envs[1:]:  # either remaining worker shows every book
        await assert_same_books(env["EXCHANGE_WEB_PORT"], reference.books)
    resent = len(records) - len(trades)
    lost = len(expected.keys() - trades.keys())
    reread = sum(worker.text().count("was due; reading again") for worker in pool)
    print(f"\nscale-out: {len(orders)} orders, 2 -> 3 -> 2 workers, {len(trades)} trades, "
          f"{lost} lost, {resent} re-sent duplicates dropped, "
          f"{reread} messages skipped by a stream and read again")  # fmt: skip


async def test_two_workers_share_the_seed_flow(broker, tmp_path: Path, workers) -> None:
    """The seed's four instruments spread over the partitions: both workers match orders."""
    base, envs, pool = worker_pool(broker, tmp_path, 2)
    await list_instruments(base)
    workers.extend(pool)
    await asyncio.gather(*(asyncio.to_thread(w.start) for w in pool))
    orders = list(itertools.islice(seed_orders(clock=stepping_clock(), seed=41), 4000))
    expected = trades_by_id(trades_in(reference_outputs(orders)))
    # Keyed like any Kafka client (murmur2): the intake forwards them to their homes.
    await produce(base, orders)
    records = await consume(
        base, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=300
    )
    assert trades_by_id(records) == expected

    matched: dict[int, set[str]] = {}
    async with aiohttp.ClientSession() as session:
        for n, env in enumerate(envs):
            url = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}/instruments?scope=local"
            async with session.get(url) as response:
                rows = (await response.json())["instruments"]
            matched[n] = {row["instrument"] for row in rows}
    assert matched[0] and matched[1], f"a worker sat idle: {matched}"
    assert matched[0].isdisjoint(matched[1])
    assert matched[0] | matched[1] == {"RIL", "INFY", "ONGC", "TCS"}
    print(f"\nseed flow on two workers: {matched[0]} and {matched[1]}, {len(expected)} trades")
