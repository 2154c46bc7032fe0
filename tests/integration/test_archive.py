"""The archiver SIGKILLed twice mid-write while orders flow: the archive equals the topics."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from exchange_app.archive import DATASETS, open_archive, records
from exchange_app.broker.offsets import true_end_offsets
from exchange_app.export import read_messages
from exchange_app.orderflow import seed_orders, stepping_clock
from exchange_app.processes import EXCHANGE, ROOT, Worker
from exchange_app.wire import dumps, loads, parse_time
from tests.harness import (
    bootstrap,
    consume,
    consume_analytics,
    exchange_env,
    list_instruments,
    produce,
    reference_run,
    topic,
    trades_by_id,
)

pytestmark = pytest.mark.integration

ORDERS = 3_000
BY_NAME = {d.name: d for d in DATASETS}
NAMES = ("orders", "trades", "events", "sma", "profit", "pnl", "dlq")


async def read_all(env: dict[str, str], name: str) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record of a topic, up to its end now."""
    messages = await read_messages([bootstrap(env)], topic(env, name))
    return [(m.partition, m.offset, m.value) for m in messages]


async def end_offsets(env: dict[str, str]) -> list[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(env), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic(env, name), p) for name in NAMES for p in range(4)]
        ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
        return [ends[tp] for tp in tps]
    finally:
        await consumer.stop()


async def settled(env: dict[str, str], quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Until no topic of the exchange grows for ``quiet`` seconds."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        sizes = await end_offsets(env)
        if sizes != last:
            last, since = sizes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the exchange's topics kept growing")


async def kill_mid_write(archiver: Worker, root: Path, timeout: float = 60.0) -> int:
    """SIGKILL the archiver while a batch is written but not committed; the files it left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(root.rglob(".part-*.tmp")):
            archiver.kill()
            return len(list(root.rglob(".part-*.tmp")))
        await asyncio.sleep(0.005)
    raise TimeoutError("the archiver never wrote a batch")


async def test_two_kills_mid_write_leave_every_record_once(
    broker, tmp_path: Path, start_worker
) -> None:
    root = tmp_path / "archive"
    env = exchange_env(
        broker.url,
        tmp_path / "data",
        EXCHANGE_ARCHIVE_URL=str(root),
        EXCHANGE_ARCHIVE_FLUSH_RECORDS="400",
        EXCHANGE_ARCHIVE_FLUSH_SECONDS="0.5",
        EXCHANGE_ARCHIVE_COMMIT_PAUSE_MS="150",  # a window for the kills
    )
    await list_instruments(env)
    start_worker(env)
    orders: list[Any] = list(
        itertools.islice(
            seed_orders(clock=stepping_clock(step=2), seed=5, accounts=("alice", "bob")), ORDERS
        )
    )
    orders += [b"not json", dumps({"id": 1, "instrument": "TCS"})]  # the DLQ gets some too
    flow = asyncio.ensure_future(produce(env, orders, rate=500))
    archiver = Worker(env, tmp_path / "archive.log", [EXCHANGE, "archive"])
    landed = 0
    try:
        for _ in range(6):  # a kill that misses its window (a busy machine) is one more crash
            archiver.launch()
            landed += await kill_mid_write(archiver, root) > 0
            if landed == 2:
                break
    finally:
        archiver.kill()
    assert landed == 2, "two kills landed between writing a batch and committing it"
    await flow
    _, expected_trades, expected_analytics = reference_run(orders)
    await consume(env, "trades", until=lambda r: trades_by_id(r).keys() >= expected_trades.keys())
    await consume_analytics(env, expected_analytics)
    await settled(env)  # and nothing else still coming (events, the DLQ)
    # the third run finishes what is on the topics now
    subprocess.run([EXCHANGE, "archive", "--until-end"], env=env, cwd=ROOT, check=True, timeout=180)

    assert not list(root.rglob("*.tmp")), "no partial file is left"
    archive = open_archive(str(root))
    for dataset in DATASETS:
        on_topic = await read_all(env, dataset.name)
        rows = records(archive, dataset)
        where = [(r["kafka_partition"], r["kafka_offset"]) for r in rows]
        assert len(where) == len(set(where)), f"{dataset.name}: a record archived twice"
        expected = [(p, o) for p, o, raw in on_topic if _archivable(dataset.name, raw)]
        assert sorted(where) == sorted(expected), dataset.name
        assert rows, f"{dataset.name}: nothing flowed"
    trades = {t["trade_id"]: t for t in records(archive, BY_NAME["trades"])}
    for _, _, raw in await read_all(env, "trades"):
        sent = loads(raw)
        kept = trades[sent["trade_id"]]
        for field in ("price", "quantity", "id", "id_sell", "seq", "buyer", "seller"):
            assert kept[field] == sent[field], field  # decimals exact
        assert kept["timestamp"] == parse_time(sent["timestamp"])
    for file in root.rglob("*.parquet"):
        pq.read_metadata(file)  # every file is whole

    answer = subprocess.run(
        [EXCHANGE, "query", "SELECT count(*) AS n, count(DISTINCT trade_id) AS d FROM trades"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert answer.stdout.split()[-2:] == [str(len(trades))] * 2

    # the original CSV files, from the archive (one day) and from the topics: the same rows
    days = {t["timestamp"].date() for t in trades.values()}
    assert len(days) == 1  # the flow is one day's: the day's export is the whole export
    sources = {"archive": ["--from-archive", "--date", str(min(days))], "topics": []}
    for source, extra in sources.items():
        subprocess.run(
            [EXCHANGE, "export", "--out", str(tmp_path / source), *extra],
            env=env, cwd=ROOT, check=True, timeout=120, capture_output=True,
        )  # fmt: skip
    for name in ("successful_orders.csv", "sma_calc.csv", "profit_calc.csv"):
        from_archive = pd.read_csv(tmp_path / "archive" / name)
        from_topics = pd.read_csv(tmp_path / "topics" / name)
        assert len(from_archive) > 0, name
        pd.testing.assert_frame_equal(from_archive, from_topics, check_dtype=False)

    # the daily compaction: fewer files, the same rows
    before = {d.name: records(archive, d) for d in DATASETS}
    files = len(list(root.rglob("*.parquet")))
    subprocess.run([EXCHANGE, "archive", "--compact"], env=env, cwd=ROOT, check=True, timeout=120)
    assert len(list(root.rglob("*.parquet"))) < files
    assert {d.name: records(archive, d) for d in DATASETS} == before


def _archivable(name: str, raw: bytes) -> bool:
    """Orders the exchange refused are in the DLQ's dataset, not in the orders'."""
    return name != "orders" or BY_NAME["orders"].decode(raw) is not None
