"""SIGKILL the worker mid-batch: nothing lost, duplicates identical, same results.

The reference is the reference exchange (``tests/reference.py``), a separate
naive matcher: the worker's trades (de-duplicated by ``trade_id``), every
order's execution reports (copies dropped by their key, each equal to its
first), and the books must equal its own; the final SMA, profit and P&L must
equal the analytics of its trades.

Each kill provably lands while a batch is in flight. The worker is frozen
(SIGSTOP) at a random moment and the system's own records are read: the
trades topic, and the matching changelog, whose ``m:<instrument>`` entries
hold the next trade ``seq`` the durable state would give. A trade delivered
with a ``seq`` the changelog does not yet cover belongs to a batch whose
outputs went out and whose state is not durable: the worker is killed then,
and only then (otherwise it is let go on and frozen again later). The
restarted worker must match that batch again and re-send those very trades.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import signal
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from exchange_app.broker import true_end_offsets
from exchange_app.orderflow import mixed_orders, seed_orders, stepping_clock
from exchange_app.wire import loads
from tests.harness import (
    Worker,
    assert_books_show,
    assert_same_analytics,
    bootstrap,
    consume,
    consume_analytics,
    produce,
    reference_analytics,
    topic,
    trades_by_id,
)
from tests.reference import ReferenceExchange, report_key, reports_by_key

pytestmark = pytest.mark.integration

KILLS = 6
#: orders sent at a time while the kills go on, and how many a second
CHUNK, RATE = 250, 250.0
#: how long one kill may look for a batch in flight
LOOKING_SECONDS = 60.0

#: a trade by its instrument and sequence number
Seq = tuple[str, int]


class Durability:
    """What the worker delivered and what its state holds, from its own topics.

    Reads the trades topic (the highest ``seq`` delivered per instrument) and the
    matching changelog (the next ``seq`` per instrument that durable state gives).
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.trades = topic(env, "trades")
        self.changelog = f"{env['EXCHANGE_APP_ID']}-matching-changelog"
        self.delivered: dict[str, int] = {}
        self.durable: dict[str, int] = {}  # instrument -> highest seq the changelog covers
        #: what was delivered when the worker last started: a run's own trades come after
        self.before: dict[str, int] = {}
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(env), enable_auto_commit=False)

    async def __aenter__(self) -> Durability:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def starting(self) -> None:
        """The worker is down and about to start: what it delivers from now on is its own."""
        while await self._read():
            pass
        self.before = dict(self.delivered)

    async def in_flight(self) -> set[Seq]:
        """The trades this run delivered first whose state the changelog does not hold (read
        the topics to their ends until a read adds nothing, so that nothing sent before is
        still landing). A trade re-sent from an earlier run's batch is not counted."""
        while await self._read():
            pass
        return {
            (instrument, seq)
            for instrument, last in self.delivered.items()
            for seq in range(
                max(self.durable.get(instrument, 0), self.before.get(instrument, 0)) + 1,
                last + 1,
            )
        }

    async def _read(self) -> int:
        """Read both topics to their current ends; how many records that was."""
        tps = []
        for name in (self.trades, self.changelog):
            partitions = self.consumer.partitions_for_topic(name)
            if not partitions:
                await self.consumer._client.force_metadata_update()
                partitions = self.consumer.partitions_for_topic(name)
            if not partitions:
                return 0  # not made yet: the worker creates its topics when it starts
            tps += [TopicPartition(name, p) for p in sorted(partitions)]
        if set(tps) != self.consumer.assignment():
            self.consumer.assign(tps)
            for tp in tps:
                self.consumer.seek(tp, 0)
        ends = await true_end_offsets(self.consumer._client, await self.consumer.end_offsets(tps))
        read = 0
        while [tp for tp in tps if await self.consumer.position(tp) < ends[tp]]:
            for tp, messages in (await self.consumer.getmany(timeout_ms=200)).items():
                read += len(messages)
                for message in messages:
                    self._take(tp.topic, message.key, message.value)
        return read

    def _take(self, name: str, key: bytes | None, value: bytes | None) -> None:
        if name == self.trades:
            trade = loads(value or b"")
            instrument = trade["instrument"]
            self.delivered[instrument] = max(self.delivered.get(instrument, 0), trade["seq"])
            return
        meta_key = loads(key or b"null")
        if isinstance(meta_key, str) and meta_key.startswith("m:") and value is not None:
            self.durable[meta_key[2:]] = loads(value)["seq"] - 1  # "seq": the next one


async def kill_mid_batch(worker: Worker, durability: Durability, rng: random.Random) -> set[Seq]:
    """Freeze the worker until a freeze finds a batch in flight, then SIGKILL it there; the
    trades it had delivered whose state was not durable (the restart must re-send them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOOKING_SECONDS
    while True:
        worker.alive()  # a crash of its own would pass for this kill
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            pending = await durability.in_flight()
        except BaseException:
            os.kill(worker.pid, signal.SIGCONT)
            raise
        if pending:
            worker.stop(signal.SIGKILL)
            return pending
        os.kill(worker.pid, signal.SIGCONT)
        if loop.time() > deadline:
            raise AssertionError(f"no batch was in flight in {LOOKING_SECONDS} s of looking")
        await asyncio.sleep(rng.uniform(0.0, 0.05))  # a random next moment


def order_log() -> list[dict]:
    clock = stepping_clock(step=0.5)
    seed = itertools.islice(
        seed_orders(clock=clock, seed=101, accounts=("ann", "ben", "cy")), 12_000
    )
    mixed = itertools.islice(mixed_orders(clock=clock, seed=102, start_id=5_000_001), 8_000)
    return [*seed, *mixed]


@pytest.mark.parametrize(
    "wipe", [False, True], ids=["own-data-dir", "alternating-own-and-empty-data-dir"]
)
async def test_sigkill_while_orders_flow_loses_and_changes_nothing(
    env, tmp_path: Path, wipe: bool
) -> None:
    """Kill the worker while orders arrive; with ``wipe``, every other restart begins on an
    empty data directory, as a failover to another machine would, restoring the changelogs."""
    orders = order_log()
    reference = ReferenceExchange().run(orders)
    expected = trades_by_id(reference.trades)
    reports = reports_by_key(reference.reports)
    analytics = reference_analytics(
        sorted(reference.trades, key=lambda t: (t["instrument"], t["seq"]))
    )

    rng = random.Random(7)
    worker = Worker(env, tmp_path / "worker.log")
    recoveries: list[float] = []
    data_dir = Path(env["EXCHANGE_DATA_DIR"])
    in_flight: list[set[Seq]] = []  # per kill: the trades delivered, state not durable
    kills_done = asyncio.Event()

    def start(kill: int) -> None:
        if wipe and kill % 2 == 1:
            shutil.rmtree(data_dir, ignore_errors=True)
        worker.start()
        recoveries.append(worker.ready_after or 0.0)

    async def kill_repeatedly() -> None:
        async with Durability(env) as durability:
            for kill in range(KILLS):
                await durability.starting()
                await asyncio.to_thread(start, kill)
                await asyncio.sleep(rng.uniform(0.2, 2.0))  # a random moment to look from
                in_flight.append(await kill_mid_batch(worker, durability, rng))
        kills_done.set()
        await asyncio.to_thread(start, KILLS)

    async def flow() -> None:
        """Orders arrive at RATE while the kills go on, the rest at once after them."""
        sent = 0
        while sent < len(orders) and not kills_done.is_set():
            sent += await produce(env, orders[sent : sent + CHUNK], rate=RATE)
        if not kills_done.is_set():
            raise AssertionError(f"the {len(orders)} orders ran out before the {KILLS} kills")
        await produce(env, orders[sent:])

    await asyncio.gather(kill_repeatedly(), flow())
    last_seq = Counter[str]()
    for trade in expected.values():
        last_seq[trade["instrument"]] = max(last_seq[trade["instrument"]], trade["seq"])

    def through_last_seq(records: list[dict[str, Any]]) -> bool:
        """Until every instrument's last trade arrived: a lost one still shows as lost."""
        seen = Counter[str]()
        for t in records:
            seen[t["instrument"]] = max(seen[t["instrument"]], t["seq"])
        return seen >= last_seq

    try:
        records = await consume(env, "trades", until=through_last_seq, timeout=300)
        copies = Counter(t["trade_id"] for t in records)
        by_seq = Counter((t["instrument"], t["seq"]) for t in records)
        restarts = (
            "alternately on its own and on an empty data dir" if wipe else "on its own data dir"
        )
        lost = len(expected.keys() - copies.keys())
        resent = sum(n - 1 for n in copies.values())
        print(
            f"\ncrash test ({restarts}): {len(orders)} orders, {len(in_flight)} SIGKILLs "
            f"mid-batch, {len(expected)} trades expected, {len(copies)} arrived, {lost} lost; "
            f"trades delivered but not durable at each kill, re-sent by the restart: "
            f"{[len(pending) for pending in in_flight]}; {resent} re-sent copies in all, "
            f"dropped by trade_id; recovery to Ready per restart: median "
            f"{statistics.median(recoveries):.1f} s, max {max(recoveries):.1f} s "
            f"({', '.join(f'{r:.1f}' for r in recoveries)})"
        )
        trades = trades_by_id(records)  # asserts every copy equals its first
        assert lost == 0 and trades == expected
        for instrument in {t["instrument"] for t in trades.values()}:
            seqs = sorted(t["seq"] for t in trades.values() if t["instrument"] == instrument)
            assert seqs == list(range(1, len(seqs) + 1))
        # Each kill interrupted a batch: the restart matched it again and re-sent its trades.
        for kill, pending in enumerate(in_flight):
            assert pending, kill
            assert all(by_seq[trade] >= 2 for trade in pending), (kill, sorted(pending))

        assert_same_analytics(await consume_analytics(env, analytics, timeout=300), analytics)
        await assert_books_show(env["EXCHANGE_WEB_PORT"], reference.levels())
        # every order's reports: none lost or changed by a kill or a replay
        events = await consume(
            env, "events", until=lambda r: len({report_key(e) for e in r}) >= len(reports)
        )
        assert reports_by_key(events) == reports  # asserts every copy equals its first
    finally:
        worker.stop()
    assert worker.tracebacks() == []
