"""Running the real thing in tests: the embedded broker, worker processes, Kafka clients."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from exchange_app.broker import free_port
from exchange_app.wire import dumps, loads

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
EXCHANGE = str(Path(sys.executable).with_name("exchange"))


def exchange_env(broker_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings for one isolated exchange on a shared broker: its own topics and group."""
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "EXCHANGE_BROKER": broker_url,
        "EXCHANGE_APP_ID": f"ex-{tag}",
        "EXCHANGE_DATA_DIR": str(data_dir),
        "EXCHANGE_WEB_PORT": str(free_port()),
        "EXCHANGE_PARTITIONS": "4",
        "EXCHANGE_STORE": "rocksdb://",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("orders", "trades", "events", "sma", "profit", "pnl", "dlq"):
        env[f"EXCHANGE_{name.upper()}_TOPIC"] = f"{tag}-{name}"
    env.update(overrides)
    return env


def topic(env: dict[str, str], name: str) -> str:
    return env[f"EXCHANGE_{name.upper()}_TOPIC"]


def bootstrap(env: dict[str, str]) -> str:
    return env["EXCHANGE_BROKER"].split("://", 1)[1]


class Worker:
    """``faust -A exchange_app worker`` as a child process with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str] | None = None) -> None:
        self.env = env
        self.log = log
        self.command = command or [FAUST, "-A", "exchange_app", "worker", "-l", "info"]
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after: float | None = None  # seconds from start to "Ready", last start

    def start(self, timeout: float = 90.0) -> Worker:
        mark = self.log.stat().st_size if self.log.exists() else 0
        began = time.monotonic()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")
            if b"[^Worker]: Ready" in self.log.read_bytes()[mark:]:
                self.ready_after = time.monotonic() - began
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready within {timeout} s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wait_for(self, text: str, after: int = 0, timeout: float = 90.0) -> int:
        """Wait until the log holds ``text`` past byte ``after``; return where it ends."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while time.monotonic() < deadline:
            data = self.log.read_bytes()
            found = data.find(needle, after)
            if found >= 0:
                return found + len(needle)
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} not in the log within {timeout} s:\n{self.tail()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


async def produce(
    env: dict[str, str],
    values: Iterable[bytes | dict[str, Any]],
    *,
    keyed: bool = True,
    topic_name: str = "orders",
) -> int:
    """Send orders with a plain aiokafka producer (batched: many records per request)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(env), enable_idempotence=False, linger_ms=20
    )
    await producer.start()
    count = 0
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else dumps(value)
            key = None
            if keyed and isinstance(value, dict) and isinstance(value.get("instrument"), str):
                key = value["instrument"].encode()
            await producer.send(topic(env, topic_name), raw, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def consume(
    env: dict[str, str],
    name: str,
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60.0,
    stall: float = 10.0,
) -> list[dict[str, Any]]:
    """Read a topic from the start until ``until(records)`` holds; JSON values.

    A reader that gets nothing for ``stall`` seconds is replaced by a new one
    that resumes at the same offsets, so a stuck client connection cannot pass
    for output the worker never produced.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    positions: dict[TopicPartition, int] = {}
    records: list[dict[str, Any]] = []
    while not until(records):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(env), enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic(env, name))
            while not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic(env, name))
                if loop.time() > deadline:
                    raise TimeoutError(f"{name}: no such topic")
            tps = [TopicPartition(topic(env, name), p) for p in sorted(partitions)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, positions.get(tp, 0))
            progress = loop.time()
            while not until(records) and loop.time() - progress < stall:
                if loop.time() > deadline:
                    raise TimeoutError(f"{name}: condition not met after {len(records)} records")
                batch = await consumer.getmany(timeout_ms=300)
                for tp, messages in batch.items():
                    if messages:
                        progress = loop.time()
                        records += [loads(m.value) for m in messages]
                        positions[tp] = messages[-1].offset + 1
        finally:
            await consumer.stop()
    return records


def count_at_least(n: int) -> Callable[[list[Any]], bool]:
    return lambda records: len(records) >= n


def reference_outputs(
    orders: Iterable[dict[str, Any] | bytes], policy: str = "price-time", state: Any = None
) -> list[Any]:
    """What a clean, uninterrupted run must produce, from the pure state adapter."""
    from exchange_app.engine import InvalidOrder
    from exchange_app.wire import decode_order
    from tables.matching import MatchingState, Position, Source

    state = state if state is not None else MatchingState({}, policy)
    outputs: list[Any] = []
    for offset, value in enumerate(orders):
        try:
            command = decode_order(value if isinstance(value, bytes) else dumps(value))
        except InvalidOrder:
            continue
        outputs += state.handle(command, Source(0, offset), Position("reference", 0, offset))
    return outputs


def trades_by_id(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """De-duplicate trades by ``trade_id``, checking that every copy is identical."""
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        first = unique.setdefault(record["trade_id"], record)
        assert first == record, f"re-sent trade {record['trade_id']} differs from its first copy"
    return unique


def reference_analytics(
    trades: Iterable[dict[str, Any]], bar_seconds: int = 300, windows: tuple[int, ...] = (2,)
) -> dict[str, list[dict[str, Any]]]:
    """The sma, profit and pnl records a clean run emits for these trades, in order."""
    from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, fills_of

    bars, profits, ledger = (
        BarsAnalytics({}, bar_seconds, windows),
        ProfitAnalytics({}, bar_seconds, windows),
        PnlLedger({}),
    )
    out: dict[str, list[dict[str, Any]]] = {"sma": [], "profit": [], "pnl": []}
    for trade in trades:
        trade = loads(dumps(trade))  # as read from the topic
        out["sma"] += [o.value for o in bars.handle(trade)]
        out["profit"] += [o.value for o in profits.handle(trade)]
        for fill in fills_of(trade):
            out["pnl"] += [o.value for o in ledger.handle(loads(dumps(fill)))]
    return out


def latest(records: Iterable[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The last record per key (a topic's compacted view)."""
    return {tuple(r[k] for k in key): r for r in records}


def book_levels(book: Any) -> dict[str, list[list[Any]]]:
    """An order book's levels as ``/orderbook`` shows them: [price, quantity, orders]."""
    return {
        side: [[level.price, level.quantity, level.count] for level in getattr(book, side).depth()]
        for side in ("bids", "asks")
    }


def trades_in(outputs: Iterable[Any]) -> list[dict[str, Any]]:
    """The trades among outputs, as a consumer reads them (JSON round trip)."""
    return [loads(dumps(o.value)) for o in outputs if o.stream == "trades"]


#: what identifies one analytics record, so that re-sent copies count once
RECORD_IDENTITY = {
    "sma": ("instrument", "bar_start", "last_seq", "final"),
    "profit": ("instrument", "bar_start", "last_seq", "final"),
    "pnl": ("account", "instrument", "seq", "position"),
}


def distinct(name: str, records: Iterable[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(r[k] for k in RECORD_IDENTITY[name]) for r in records}


async def consume_analytics(
    env: dict[str, str], expected: dict[str, list[dict[str, Any]]], timeout: float = 120
) -> dict[str, list[dict[str, Any]]]:
    """Read sma, profit and pnl until every expected record arrived (copies aside)."""
    got = {}
    for name, rows in expected.items():
        want = len(distinct(name, rows))
        got[name] = await consume(
            env, name, until=lambda r, n=name, w=want: len(distinct(n, r)) >= w, timeout=timeout
        )
    return got


ANALYTICS_KEYS = {
    "sma": ("instrument", "bar_start"),
    "profit": ("instrument", "bar_start"),
    "pnl": ("account", "instrument"),
}


def reference_run(orders: list[dict[str, Any]]) -> tuple[Any, dict[str, Any], dict[str, list[Any]]]:
    """An uninterrupted run of ``orders``: the matching state, trades by id, analytics."""
    from tables.matching import MatchingState

    state = MatchingState({}, "price-time")
    trades = trades_in(reference_outputs(orders, state=state))
    ordered = sorted(trades, key=lambda t: (t["instrument"], t["seq"]))
    return state, trades_by_id(trades), reference_analytics(ordered)


def assert_same_analytics(got: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    """The final figure of every key equals the reference's."""
    for name, key in ANALYTICS_KEYS.items():
        assert latest(got[name], *key) == latest(expected[name], *key), name


async def assert_same_books(port: str | int, books: dict[str, Any]) -> None:
    """Every book, as ``/orderbook`` on that worker shows it, equals the reference's."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for instrument, book in books.items():
            url = f"http://127.0.0.1:{port}/orderbook/{instrument}?depth=1000"
            async with session.get(url) as response:
                view = loads(await response.read())
            shown = {
                side: [[row["price"], row["quantity"], row["orders"]] for row in view[side]]
                for side in ("bids", "asks")
            }
            assert shown == book_levels(book), (port, instrument)
