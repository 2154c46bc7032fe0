"""The embedded broker's measured quirks and the project's answers to them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from exchange_app.broker import EmbeddedBroker, free_port, true_end_offsets
from exchange_app.orderflow import seed_orders, stepping_clock
from tests.harness import (
    EXCHANGE,
    Worker,
    consume,
    exchange_env,
    list_instruments,
    produce,
    reference_outputs,
    trades_by_id,
    trades_in,
)

pytestmark = pytest.mark.integration


def all_of(expected: dict[str, Any]) -> Callable[[list[dict[str, Any]]], bool]:
    """Until every expected trade arrived (each copy equal to its first)."""
    return lambda records: trades_by_id(records).keys() >= expected.keys()


async def test_true_end_offsets_correct_the_misreported_latest_offset(broker) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, enable_idempotence=False, linger_ms=50
    )
    await producer.start()
    try:
        for _ in range(3):  # three batches of 20 records: offsets 0..59
            await asyncio.gather(
                *[await producer.send("offsets-probe", b"x", partition=0) for _ in range(20)]
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition("offsets-probe", 0)
        reported = await consumer.end_offsets([tp])
        corrected = await true_end_offsets(consumer._client, reported)
    finally:
        await consumer.stop()
    assert reported[tp] < 60  # the broker's under-report this fix exists for
    assert corrected[tp] == 60


async def test_worker_recovers_when_the_broker_lost_its_topics(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    orders = list(itertools.islice(seed_orders(clock=stepping_clock(), seed=3), 400))
    expected = trades_by_id(trades_in(reference_outputs(orders)))
    with EmbeddedBroker("127.0.0.1", port, log_file=tmp_path / "broker1.log") as first:
        env = exchange_env(first.url, data)
        await list_instruments(env)
        worker = Worker(env, tmp_path / "worker.log").start()
        try:
            await produce(env, orders)
            before = await consume(env, "trades", until=all_of(expected))
        finally:
            worker.stop()
    assert trades_by_id(before) == expected
    # the memory-only broker restarts empty; the worker's RocksDB is still full
    with EmbeddedBroker("127.0.0.1", port, log_file=tmp_path / "broker2.log"):
        await list_instruments(env)  # reference data went with the broker too
        worker = Worker(env, tmp_path / "worker.log").start()
        try:
            await produce(env, orders)  # new offsets start at 0 again: must not be skipped
            trades = await consume(env, "trades", until=all_of(expected))
        finally:
            worker.stop()
    assert trades_by_id(trades) == expected  # from seq 1 again, as on a fresh exchange
    log = worker.text()
    assert "lost its topics" in log and "Discarding the local tables" in log
    assert "ConsistencyError" not in log and "Traceback" not in log


async def test_running_worker_comes_back_when_the_broker_restarts_empty(tmp_path: Path) -> None:
    port = free_port()
    orders = list(itertools.islice(seed_orders(clock=stepping_clock(), seed=4), 300))
    expected = trades_by_id(trades_in(reference_outputs(orders)))
    log = tmp_path / "supervised.log"
    first = EmbeddedBroker("127.0.0.1", port, log_file=tmp_path / "broker1.log").start()
    env = exchange_env(first.url, tmp_path / "data")
    await list_instruments(env)
    # The provoked failure: the first worker process finds its tables ahead of the empty
    # broker, and Faust's crash on it also fails to stop a thread of a closed event loop.
    provoked = [r"^faust\.exceptions\.ConsistencyError: ", r"^RuntimeError: Event loop is closed"]
    worker = Worker(env, log, command=[EXCHANGE, "worker", "-l", "info"], expected=provoked)
    try:
        worker.start()
        await produce(env, orders)
        assert trades_by_id(await consume(env, "trades", until=all_of(expected))) == expected
        first.stop()  # the worker keeps running while the broker is gone...
        with EmbeddedBroker("127.0.0.1", port, log_file=tmp_path / "broker2.log"):
            await list_instruments(env)  # reference data went with the broker too
            # ...notices the empty broker, stops cleanly and is started again, once
            mark = worker.wait_for("starting the worker again")
            worker.wait_for("[^Worker]: Ready", after=mark)
            await produce(env, orders)  # offsets start at 0 again: must not be skipped
            trades = await consume(env, "trades", until=all_of(expected))
            assert trades_by_id(trades) == expected  # from seq 1 again, as on a fresh exchange
            assert worker.process is not None and worker.process.poll() is None
            worker.stop()  # while it has a broker to leave
    finally:
        worker.stop()
        first.stop()
    text = worker.text()
    assert text.count("starting the worker again") == 1
    assert "lost its topics" in text or "ahead of the broker's changelogs" in text
    assert "Discarding the local tables" in text
