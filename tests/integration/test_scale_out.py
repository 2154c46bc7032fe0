"""Workers join and leave while orders flow: the results equal the uninterrupted run."""

from __future__ import annotations

import ast
import asyncio
import itertools
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_app.broker import free_port
from exchange_app.orderflow import mixed_orders, seed_orders, stepping_clock
from exchange_app.routing import home_partition
from tests.harness import (
    Worker,
    api_key,
    assert_same_analytics,
    assert_same_books,
    bearer,
    consume,
    consume_analytics,
    exchange_env,
    list_instruments,
    produce,
    reference_outputs,
    reference_run,
    topic,
    trades_by_id,
    trades_in,
)

pytestmark = pytest.mark.integration

#: Partitions of the exchange that workers join and leave. Faust's sticky assignor
#: moves a partition only from a worker holding more than ceil(partitions / workers):
#: with four, a third worker joining two that hold two each would get none.
PARTITIONS = 6
#: two instruments per partition, so every worker has books to own
INSTRUMENTS = [
    name
    for p in range(PARTITIONS)
    for name in itertools.islice(
        (f"X{i}" for i in range(1000) if home_partition(f"X{i}", PARTITIONS) == p), 2
    )
]


def worker_pool(
    broker: Any, tmp_path: Path, count: int, partitions: int = 4
) -> tuple[dict[str, str], list[dict[str, str]], list[Worker]]:
    """``count`` workers of one exchange (not started): their own data dirs and web ports."""
    base = exchange_env(broker.url, tmp_path / "w0", EXCHANGE_PARTITIONS=str(partitions))
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


#: what a worker's intake logs when a rebalance gave it its orders partitions (and positions)
READING = re.compile(r"intake: reading \S+ from (\{[^}]*\})")
#: how long partitions may take to move
MOVE_SECONDS = 120.0
#: the labels of a consumer lag gauge in ``/metrics``, and each label
LAG = re.compile(r"^exchange_consumer_lag\{([^}]*)\}", re.M)
LABEL = re.compile(r'(\w+)="([^"]*)"')


def reading(worker: Worker) -> set[int]:
    """The orders partitions the worker's intake reads, by its log's last word on them."""
    found = READING.findall(worker.text())
    return set(ast.literal_eval(found[-1])) if found else set()


async def shared_by(live: list[Worker], flow: asyncio.Task[None]) -> list[set[int]]:
    """Wait until ``live`` workers' intakes read all the partitions, each one some and no
    partition twice (their logs say so), while the orders still flow; who reads what."""
    deadline = asyncio.get_running_loop().time() + MOVE_SECONDS
    while True:
        for worker in live:
            worker.alive()
        owned = [reading(worker) for worker in live]
        every = set(range(PARTITIONS))
        if all(owned) and sum(map(len, owned)) == len(every) and set().union(*owned) == every:
            assert not flow.done(), "the orders stopped flowing before the partitions moved"
            return owned
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"partitions not shared by {len(live)} workers: {owned}")
        await asyncio.sleep(0.2)


async def processes(
    session: aiohttp.ClientSession, worker: Worker, partitions: set[int], flow: asyncio.Task[None]
) -> None:
    """Wait until the worker's own ``/metrics`` shows it matched orders of each of
    ``partitions`` (a lag gauge per orders partition it processed), while orders flow."""
    url = f"http://127.0.0.1:{worker.env['EXCHANGE_WEB_PORT']}/metrics"
    orders = topic(worker.env, "orders")
    deadline = asyncio.get_running_loop().time() + MOVE_SECONDS
    while True:
        worker.alive()
        async with session.get(url) as response:
            text = await response.text()
        if response.status == 503:  # a worker just started: its keys are being loaded
            text = ""
        else:
            assert response.status == 200, text
        gauges = LAG.findall(text)
        done = {
            int(labels["partition"])
            for labels in (dict(LABEL.findall(found)) for found in gauges)
            if labels["topic"] == orders
        }
        if partitions <= done:
            assert not flow.done(), "the orders stopped flowing before the worker matched them"
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{worker.log.name} matched only {done} of {partitions}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("settled", "leave"),
    [(True, signal.SIGTERM), (False, signal.SIGTERM)],
    ids=["after-the-join-settled", "while-the-join-settles"],
)
async def test_workers_join_and_leave_while_orders_flow(
    broker, tmp_path: Path, workers, settled: bool, leave: int
) -> None:
    """Partitions move twice under load, as the workers' own logs show: a third worker
    joins two and gets partitions while orders flow, and then the first leaves (stopped, or
    killed with no word to the group) and its partitions move to the two left. The second
    move, made while the first one's rebalance settles, is where Faust's stream once
    skipped a packed batch."""
    orders = order_log()
    reference, expected, analytics = reference_run(orders)

    base, envs, pool = worker_pool(broker, tmp_path, 3, PARTITIONS)
    await list_instruments(base)
    workers.extend(pool)
    admin = await api_key(base)  # for /metrics, which answers an admin key only
    await asyncio.gather(*(asyncio.to_thread(w.start) for w in pool[:2]))
    moved = asyncio.Event()

    async def feed() -> None:
        """Orders flow until the partitions moved twice, the rest at once after that."""
        sent = 0
        while sent < len(orders) and not moved.is_set():
            sent += await produce(base, orders[sent : sent + 50])
            await asyncio.sleep(0.15)
        await produce(base, orders[sent:])

    flow = asyncio.create_task(feed())
    third = pool[2]
    async with aiohttp.ClientSession(headers=bearer(admin)) as session:
        await asyncio.to_thread(third.start)  # a third worker joins: partitions move to it
        joined = None
        if settled:
            joined = await shared_by(pool, flow)
            await processes(session, third, joined[2], flow)  # it matches orders of its own
        pool[0].stop(leave)  # the first leaves: its partitions move away
        left = await shared_by(pool[1:], flow)
        for worker, partitions in zip(pool[1:], left, strict=True):
            await processes(session, worker, partitions, flow)
    moved.set()
    await flow

    records = await consume(
        base, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=300
    )
    trades = trades_by_id(records)
    resent = len(records) - len(trades)
    lost = len(expected.keys() - trades.keys())
    reread = sum(worker.text().count("was due; reading again") for worker in pool)
    print(f"\nscale-out ({'SIGKILL' if leave == signal.SIGKILL else 'SIGTERM'} leave): "
          f"{len(orders)} orders, 2 -> 3 -> 2 workers, partitions {joined} after the join and "
          f"{left} after the leave, {len(trades)} trades, {lost} lost, {resent} re-sent "
          f"duplicates dropped, {reread} messages skipped by a stream and read again")  # fmt: skip
    assert trades == expected
    assert_same_analytics(await consume_analytics(base, analytics, timeout=300), analytics)
    for env in envs[1:]:  # either remaining worker shows every book
        await assert_same_books(env["EXCHANGE_WEB_PORT"], reference.books)


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
