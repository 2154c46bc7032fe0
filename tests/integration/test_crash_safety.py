"""SIGKILL the worker at random moments: nothing lost, duplicates identical, same results.

The reference is the uninterrupted computation of the same orders by the same
state adapters in one process; the worker's trades (de-duplicated by
``trade_id``), books, and final SMA, profit and P&L must equal it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import statistics
from collections import Counter
from pathlib import Path

import pytest

from exchange_app.orderflow import mixed_orders, seed_orders, stepping_clock
from tests.harness import (
    Worker,
    assert_same_analytics,
    assert_same_books,
    consume,
    consume_analytics,
    produce,
    reference_run,
    trades_by_id,
)

pytestmark = pytest.mark.integration

KILLS = 6


def order_log() -> list[dict]:
    clock = stepping_clock(step=0.5)
    seed = itertools.islice(
        seed_orders(clock=clock, seed=101, accounts=("ann", "ben", "cy")), 12_000
    )
    mixed = itertools.islice(mixed_orders(clock=clock, seed=102, start_id=5_000_001), 8_000)
    return [*seed, *mixed]


async def test_sigkill_at_random_moments_loses_and_changes_nothing(env, tmp_path: Path) -> None:
    orders = order_log()
    reference, expected, analytics = reference_run(orders)

    rng = random.Random(7)
    worker = Worker(env, tmp_path / "worker.log")
    recoveries: list[float] = []
    await produce(env, orders)
    for _ in range(KILLS):
        worker.start()
        recoveries.append(worker.ready_after or 0.0)
        await asyncio.sleep(rng.uniform(0.5, 5.0))
        worker.stop(signal.SIGKILL)
    worker.start()
    recoveries.append(worker.ready_after or 0.0)
    try:
        records = await consume(
            env,
            "trades",
            until=lambda r: len({t["trade_id"] for t in r}) >= len(expected),
            timeout=300,
        )
        trades = trades_by_id(records)  # asserts every copy equals its first
        assert trades == expected
        for instrument in {t["instrument"] for t in trades.values()}:
            seqs = sorted(t["seq"] for t in trades.values() if t["instrument"] == instrument)
            assert seqs == list(range(1, len(seqs) + 1))

        assert_same_analytics(await consume_analytics(env, analytics, timeout=300), analytics)
        await assert_same_books(env["EXCHANGE_WEB_PORT"], reference.books)
    finally:
        worker.stop()

    copies = Counter(t["trade_id"] for t in records)
    resent = sum(n - 1 for n in copies.values())
    print(
        f"\ncrash test: {len(orders)} orders, {KILLS} SIGKILLs survived, {len(expected)} trades, "
        f"0 lost, {resent} re-sent duplicates dropped by trade_id; "
        f"recovery to Ready per restart: median {statistics.median(recoveries):.1f} s, "
        f"max {max(recoveries):.1f} s ({', '.join(f'{r:.1f}' for r in recoveries)})"
    )
