"""Running the real thing in tests: the embedded broker, worker processes, Kafka clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from exchange_app import processes
from exchange_app.processes import (  # noqa: F401  (the tests import them from here)
    EXCHANGE,
    FAUST,
    ROOT,
    WorkerExited,
    bootstrap,
    exchange_env,
    topic,
)
from exchange_app.wire import dumps, loads

#: how Python begins a traceback, in a worker's log as anywhere
TRACEBACK = "Traceback (most recent call last):"


class Worker(processes.Worker):
    """A worker of a test: it ends only when the test stops it, and logs no traceback the
    test does not expect.

    A worker that died by itself (a crash during recovery, say) would otherwise pass for
    one the test killed: :meth:`stop` raises :class:`WorkerExited` for it, and every
    worker launched is in :data:`LAUNCHED`, which the integration tests' ``conftest.py``
    checks after each test (stopped as planned, no unexpected traceback).
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        command: list[str] | None = None,
        *,
        expected: Iterable[str] = (),
    ) -> None:
        """``expected``: patterns of the exceptions (a traceback's last line) that this
        worker may log, because the test provokes them."""
        super().__init__(env, log, command)
        self.expected = tuple(re.compile(pattern) for pattern in expected)

    def launch(self) -> Worker:
        if self not in LAUNCHED:
            LAUNCHED.append(self)
        super().launch()
        return self

    def alive(self) -> None:
        """Raise :class:`WorkerExited` if the process was started and has ended."""
        if self.process is not None and self.process.poll() is not None:
            process, self.process = self.process, None
            raise WorkerExited(
                f"the worker ended by itself with {process.returncode}, "
                f"before the test stopped it:\n{self.tail()}"
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Send ``sig`` and wait for the end; :class:`WorkerExited` if it had already ended."""
        self.alive()
        super().stop(sig, timeout)

    def tracebacks(self) -> list[str]:
        """The exceptions (each traceback's last line) in the log that are not expected."""
        if not self.log.exists():
            return []
        found, lines = [], self.text().splitlines()
        for start, line in enumerate(lines):
            if TRACEBACK not in line:
                continue
            last = next(
                (text for text in lines[start + 1 :] if text and not text[0].isspace()),
                "(the log ends inside the traceback)",
            )
            if not any(pattern.search(last) for pattern in self.expected):
                found.append(last)
        return found


#: Every :class:`Worker` launched since the list was last emptied (by ``conftest.py``).
LAUNCHED: list[Worker] = []


def ended_as_planned(workers: Iterable[Worker]) -> list[str]:
    """Stop ``workers``; what was wrong with them: ended by itself, unexpected tracebacks."""
    problems = []
    for worker in workers:
        try:
            worker.stop()
        except WorkerExited as exc:
            problems.append(f"{worker.log.name}: {exc}")
        for exception in worker.tracebacks():
            problems.append(f"{worker.log.name}: a traceback ending in {exception!r}")
    return problems


async def produce(
    env: dict[str, str],
    values: Iterable[bytes | dict[str, Any]],
    *,
    keyed: bool = True,
    topic_name: str = "orders",
    rate: float = 0.0,
) -> int:
    """Send orders with a plain aiokafka producer (batched: many records per request).

    ``rate``: orders per second at most (0: as fast as possible).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(env), enable_idempotence=False, linger_ms=20
    )
    await producer.start()
    count, started = 0, time.monotonic()
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else dumps(value)
            key = None
            if keyed and isinstance(value, dict) and isinstance(value.get("instrument"), str):
                key = value["instrument"].encode()
            await producer.send(topic(env, topic_name), raw, key=key)
            count += 1
            if rate and count % 50 == 0:
                await asyncio.sleep(max(0.0, started + count / rate - time.monotonic()))
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
    from tables.matching import MatchingState, Source
    from tables.transaction import Transaction

    state = state if state is not None else MatchingState({}, policy)
    outputs: list[Any] = []
    for offset, value in enumerate(orders):
        try:
            command = decode_order(value if isinstance(value, bytes) else dumps(value))
        except InvalidOrder:
            continue
        tx = Transaction()
        state.handle(command, Source(0, offset), 0, tx)
        state.seal(tx)
        tx.apply()
        outputs += tx.outputs
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
    from tests.factories import handled

    bars, profits, ledger = (
        BarsAnalytics({}, bar_seconds, windows),
        ProfitAnalytics({}, bar_seconds, windows),
        PnlLedger({}),
    )
    out: dict[str, list[dict[str, Any]]] = {"sma": [], "profit": [], "pnl": []}
    for trade in trades:
        trade = loads(dumps(trade))  # as read from the topic
        out["sma"] += [o.value for o in handled(bars, trade)]
        out["profit"] += [o.value for o in handled(profits, trade)]
        for fill in fills_of(trade):
            out["pnl"] += [o.value for o in handled(ledger, loads(dumps(fill)))]
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


ANALYTICS_KEYS = {
    "sma": ("instrument", "bar_start"),
    "profit": ("instrument", "bar_start"),
    "pnl": ("account", "instrument"),
}


async def consume_analytics(
    env: dict[str, str], expected: dict[str, list[dict[str, Any]]], timeout: float = 120
) -> dict[str, list[dict[str, Any]]]:
    """Read sma, profit and pnl until every key's last record equals the expected last one.

    A batch may leave out non-final records that a later one supersedes, so the
    records read are fewer than a per-trade computation's; the last of each
    key, and every final bar, are the same.
    """
    got = {}
    for name, rows in expected.items():
        key = ANALYTICS_KEYS[name]
        got[name] = await consume(
            env, name, until=_lasts_are(latest(rows, *key), key), timeout=timeout
        )
    return got


def _lasts_are(
    want: dict[tuple[Any, ...], dict[str, Any]], key: tuple[str, ...]
) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether the last record of every ``key`` in the records read equals ``want``'s."""
    return lambda records: latest(records, *key) == want


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


async def eventually(check: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    """Await ``check`` until it stops failing an assertion; after ``timeout`` s its last
    failure is raised. For state no output announces: a worker writes its tables after the
    outputs a test waits for, and an order that trades with nothing has no output at all."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(AssertionError),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.25),
        reraise=True,
    ):
        with attempt:
            await check()


async def assert_same_books(port: str | int, books: dict[str, Any]) -> None:
    """Every book, as ``/orderbook`` on that worker shows it, equals the reference's, once
    the worker has applied the orders after the last trade (they have no output to wait for)."""
    await assert_books_show(port, {name: book_levels(book) for name, book in books.items()})


async def assert_books_show(port: str | int, levels: dict[str, dict[str, list[list[Any]]]]) -> None:
    """Every book, as ``/orderbook`` on that worker shows it, has the ``levels`` of
    ``ReferenceExchange.levels`` ([price, quantity, orders] per side), once the worker has
    applied the orders after the last trade (they have no output to wait for)."""
    import aiohttp

    async def shown() -> None:
        for instrument, want in levels.items():
            url = f"http://127.0.0.1:{port}/orderbook/{instrument}?depth=1000"
            async with session.get(url) as response:
                view = loads(await response.read())
            got = {
                side: [[row["price"], row["quantity"], row["orders"]] for row in view[side]]
                for side in ("bids", "asks")
            }
            assert got == want, (port, instrument)

    async with aiohttp.ClientSession() as session:
        await eventually(shown)


async def api_key(
    env: dict[str, str],
    account: str = "ops",
    *,
    admin: bool = True,
    known_at: Iterable[str] = (),
    timeout: float = 60.0,
) -> str:
    """A new API key of ``account`` on the exchange ``env`` runs (an admin key by default),
    once the workers at the base URLs ``known_at`` know it (they follow the key store)."""
    import aiohttp

    from exchange_app.keystore import add_key

    key = await add_key(
        [bootstrap(env)], f"{env['EXCHANGE_APP_ID']}-api-keys", account, admin=admin
    )
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers=bearer(key)) as session:
        for url in known_at:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/whoami") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} does not know the new key of {account}")
                await asyncio.sleep(0.1)
    return key


#: What the integration tests trade: the seed's instruments, ``HOSTILE``, and the families
#: they pick names from by partition (``B``, ``S``, ``X``) or by number (``FILL``). Listed
#: with the finest steps, so that only the tests about steps meet them.
TEST_INSTRUMENTS = (
    "RIL",
    "INFY",
    "ONGC",
    "TCS",
    "HOSTILE",
    "LATENCY",
    *(f"{family}{n}" for family in ("B", "S", "X", "FILL") for n in range(1000)),
)


async def list_instruments(
    env: dict[str, str],
    symbols: Iterable[str] = TEST_INSTRUMENTS,
    *,
    tick: str = "1e-8",
    lot: str = "1e-8",
) -> None:
    """List ``symbols`` on the exchange ``env`` runs: a worker started afterwards has them
    before it matches (``listings.py``)."""
    from decimal import Decimal

    from exchange_app.listings import list_instruments as write
    from exchange_app.listings import listings_of

    listed = listings_of(symbols, Decimal(tick), Decimal(lot))
    await write([bootstrap(env)], f"{env['EXCHANGE_APP_ID']}-listings", listed)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def runs_alongside(work: Awaitable[Any]) -> int:
    """How often a task that is ready all along runs while ``work`` is awaited."""
    runs = 0
    done = False

    async def alongside() -> None:
        nonlocal runs
        while not done:
            runs += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(alongside())
    try:
        await work
    finally:
        done = True
        await task
    return runs
