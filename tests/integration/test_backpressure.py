"""A producer far faster than the worker: lag grows, memory stays bounded, nothing is lost."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import aiohttp
import pytest

from exchange_app.orderflow import seed_orders, stepping_clock
from exchange_app.routing import home_partition
from tests.harness import (
    api_key,
    bearer,
    consume,
    produce,
    reference_outputs,
    trades_by_id,
    trades_in,
)

pytestmark = pytest.mark.integration

INSTRUMENTS = [
    next(f"B{i}" for i in range(1000) if home_partition(f"B{i}", 4) == p) for p in range(4)
]
ORDERS = 25_000
#: what the worker may grow by while a flood of ORDERS waits: its books and buffers
RSS_GROWTH_MIB = 200


async def lag(session: aiohttp.ClientSession, port: str) -> int:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(
        int(float(v)) for v in re.findall(r"^exchange_consumer_lag\{[^}]*\} (\S+)$", text, re.M)
    )


async def test_a_flood_is_absorbed_with_bounded_memory(env, start_worker) -> None:
    orders = list(
        itertools.islice(
            seed_orders(clock=stepping_clock(step=0.1), seed=77, instruments=INSTRUMENTS), ORDERS
        )
    )
    expected = trades_by_id(trades_in(reference_outputs(orders)))
    worker = start_worker(env)
    samples: list[tuple[float, int]] = []  # (seconds, lag)
    url = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    admin = await api_key(env, known_at=[url])  # /metrics answers an admin key only
    # The kernel's high-water mark of resident memory (VmHWM): a peak between two looks
    # cannot be missed, as a sampled VmRSS could miss it.
    before = worker.peak_rss_mib()
    assert before is not None
    started = time.monotonic()
    done = asyncio.Event()

    async def sample() -> None:
        async with aiohttp.ClientSession(headers=bearer(admin)) as session:
            while not done.is_set():
                try:
                    behind = await lag(session, env["EXCHANGE_WEB_PORT"])
                except aiohttp.ClientError:
                    behind = -1
                samples.append((time.monotonic() - started, behind))
                await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    await produce(env, orders)  # as fast as one producer goes
    produced = time.monotonic() - started
    records = await consume(
        env, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=600
    )
    done.set()
    await sampler
    drained = time.monotonic() - started

    peak = worker.peak_rss_mib()
    assert trades_by_id(records) == expected
    assert worker.process.poll() is None and peak is not None
    peak_lag = max(s[1] for s in samples)
    assert peak_lag > 1_000, "the producer did not outrun the worker"
    print(
        f"\nbackpressure: {ORDERS} orders produced in {produced:.1f} s, processed by "
        f"{drained:.1f} s ({ORDERS / drained:,.0f} orders/s); peak lag {peak_lag:,} messages; "
        f"worker peak RSS (VmHWM) {before:.0f} MiB before the flood, {peak:.0f} MiB after"
    )
    # The flood waits in Kafka, not in the worker: memory grows by the books, not the backlog.
    assert peak - before < RSS_GROWTH_MIB, f"peak RSS grew from {before:.0f} to {peak:.0f} MiB"
