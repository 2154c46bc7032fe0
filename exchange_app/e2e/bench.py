"""End-to-end benchmark (``exchange bench --e2e``): the exchange next to bare Kafka and Faust.

``bench.py`` times matching alone; this times what a user sees, orders through
a broker and a worker, next to the floor any pipeline on this machine has: a
plain consumer-to-producer copy and a Faust agent that only counts. Each run
starts its own embedded broker and workers in a temporary directory:

  pass-through   aiokafka getmany -> send copies N preloaded orders to another topic
  bare Faust     ``bare_agent.py`` iterates the same N (rate measured inside the agent)
  drain          N orders preloaded, then one worker: every order's first report
                 (matching), every instrument's ``sma`` at its last trade (all agents)
  latency        orders offered at a fixed rate: trade timestamp - aggressor's send time,
                 next to the pass-through's at the same rate (copy timestamp - send time);
                 in rounds, each on a fresh worker and fresh topics, reported as medians
  restart        R resting orders drained, then Ready and /health after a restart on
                 the worker's own state and after one restoring from the changelogs

Drain figures come from the Kafka timestamps of the output records, so neither
the worker's start nor the reader's pace counts. A phase that does not finish
is reported with the worker's log tail, and the others still run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..broker import EmbeddedBroker, free_port
from ..broker.admin import ensure_topics
from ..listings import list_instruments, listings_of
from ..orderflow import INSTRUMENTS, START_ID, resting_orders, seed_orders, stepping_clock
from ..processes import FAUST, Worker, exchange_env, topic
from ..settings import Settings
from .outputs import analytics_caught_up, copy_delays, first_reports, trade_delays
from .report import Round, Row, render, rounds_summary
from .topic_io import TopicReader, copy_topic, keyed, offer, produce
from .watch import PhaseError, Watch, books_served, boot

__all__ = ["PHASES", "E2EOptions", "render", "run_e2e"]

PHASES = ("passthrough", "faust", "drain", "latency", "restart")
PARTITIONS = 4
EPOCH = datetime(2023, 3, 12, 9, 15, tzinfo=UTC)
#: how long a worker holding R resting orders may take to shut down cleanly
STOP_SECONDS = 120.0


@dataclass(frozen=True)
class E2EOptions:
    """The command's options; the defaults are the full sizes."""

    orders: int = 30_000
    rate: float = 2_000.0
    latency_seconds: float = 20.0
    #: latency rounds; each offers ``rate`` for ``latency_seconds`` to a fresh worker
    latency_rounds: int = 3
    resting: int = 1_000_000
    seed: int = 7
    keep: bool = False
    skip: frozenset[str] = frozenset()
    #: seconds a phase may wait for a worker; 0 scales with the phase's size
    timeout: float = 0.0

    def patience(self, count: int) -> float:
        """Seconds a wait for ``count`` orders may take: 2 min plus 500 orders/s at worst."""
        return self.timeout or 120.0 + count / 500


def run_e2e(options: E2EOptions, echo: Callable[[str], None]) -> list[Row]:
    """Run every phase not skipped; return the table's rows (failed phases say so)."""
    return asyncio.run(_Bench(options, echo).run())


@dataclass
class _Bench:
    options: E2EOptions
    echo: Callable[[str], None]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    tmp: Path = Path()
    broker: EmbeddedBroker | None = None
    workers: list[Worker] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    base: float | None = None  # pass-through msg/s
    preloaded: str | None = None  # topic holding the N seed orders
    fetch_wait_ms: int = 20  # the exchange's, read from the settings at the start

    async def run(self) -> list[Row]:
        self.fetch_wait_ms = Settings(embedded_broker=True).fetch_wait_ms or 20
        self.tmp = Path(tempfile.mkdtemp(prefix="exchange-e2e-"))
        self.broker = EmbeddedBroker("127.0.0.1", free_port(), log_file=self.tmp / "broker.log")
        steps = (self.passthrough, self.bare_faust, self.drain, self.latency, self.restart)
        phases = dict(zip(PHASES, steps, strict=True))
        try:
            self.broker.start()
            self.echo(f"[e2e] broker {self.broker.bootstrap}, files in {self.tmp}")
            for name, phase in phases.items():
                if name not in self.options.skip:
                    try:
                        await phase()
                    except Exception as exc:
                        self.failed(name, exc)
        finally:
            for worker in self.workers:
                worker.stop()
            self.broker.stop()
            if self.options.keep:
                self.echo(f"[e2e] kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return self.rows

    def failed(self, name: str, exc: Exception) -> None:
        """Report a phase that did not finish; stop its workers, go on with the next."""
        if isinstance(exc, PhaseError):
            self.rows.append(Row(exc.phase, f"FAILED ({exc.what})"))
            self.echo(f"[e2e] {exc}")
        else:
            self.rows.append(Row(name, f"FAILED ({exc.__class__.__name__}: {exc})"))
            self.echo(f"[e2e] {name}: {exc!r}")
        for worker in self.workers:  # a stuck worker must not slow the next phase down
            worker.stop()

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    def patience(self, count: int) -> float:
        return self.options.patience(count)

    @property
    def boot_timeout(self) -> float:
        """How long a worker on a fresh app may take to log "Ready"."""
        return self.options.timeout or 120.0

    def ratio(self, rate: float) -> str:
        return f"{rate / self.base:.2f}" if self.base else "-"

    def env(self, name: str, **overrides: str) -> dict[str, str]:
        assert self.broker is not None
        return exchange_env(
            self.broker.url, self.tmp / f"{name}-data", EXCHANGE_EMBEDDED_BROKER="true", **overrides
        )

    async def listed_env(self, name: str) -> dict[str, str]:
        """:meth:`env` of an exchange with the seed's instruments listed before it starts."""
        env = self.env(name)
        listed = listings_of(INSTRUMENTS)
        await list_instruments([self.bootstrap], f"{env['EXCHANGE_APP_ID']}-listings", listed)
        return env

    def worker(self, env: dict[str, str], log: str, command: list[str] | None = None) -> Worker:
        worker = Worker(env, self.tmp / log, command)
        self.workers.append(worker)
        return worker

    async def preload(self, name: str) -> str:
        """Create topic ``name`` and fill it with the N seed orders."""
        await ensure_topics([self.bootstrap], [name], partitions=PARTITIONS)
        orders = seed_orders(clock=stepping_clock(), seed=self.options.seed)
        n = self.options.orders
        await produce(self.bootstrap, name, keyed(itertools.islice(orders, n), PARTITIONS))
        return name

    async def seed_topic(self) -> str:
        if self.preloaded is None:
            self.preloaded = await self.preload(f"e2e-{self.tag}-seed")
        return self.preloaded

    # -- phases ---------------------------------------------------------------------------

    async def passthrough(self) -> None:
        n, phase = self.options.orders, "aiokafka pass-through"
        self.echo(f"[e2e] {phase}: {n:,} orders")
        source = await self.seed_topic()
        target = f"e2e-{self.tag}-copy"
        await ensure_topics([self.bootstrap], [target], partitions=PARTITIONS)
        try:
            seconds = await copy_topic(
                self.bootstrap,
                source,
                target,
                n,
                fetch_wait_ms=self.fetch_wait_ms,
                timeout=self.patience(n),
            )
        except TimeoutError as exc:
            raise PhaseError(phase, str(exc)) from exc
        self.base = n / seconds
        self.rows.append(Row(phase, f"{self.base:,.0f} msg/s", "1.00"))

    async def bare_faust(self) -> None:
        n, phase = self.options.orders, "bare Faust agent"
        self.echo(f"[e2e] {phase}: {n:,} events")
        out = self.tmp / "bare-agent.json"
        env = self.env(
            "bare",
            EXCHANGE_APP_ID=f"bare-{self.tag}",
            BARE_AGENT_TOPIC=await self.seed_topic(),
            BARE_AGENT_EXPECT=str(n),
            BARE_AGENT_OUT=str(out),
        )
        command = [FAUST, "-A", "exchange_app.e2e.bare_agent", "worker", "-l", "info"]
        worker = self.worker(env, "bare-agent.log", command)
        await boot(worker, phase, timeout=self.boot_timeout)
        watch = Watch(phase, f"{n:,} events in the agent", worker, self.patience(n))
        while not out.exists():
            watch.check(None)
            await asyncio.sleep(0.2)
        rate = float(json.loads(out.read_text())["rate"])
        rss = worker.peak_rss_mib()
        worker.stop()
        self.rows.append(Row(phase, f"{rate:,.0f} events/s", self.ratio(rate), rss))

    async def drain(self) -> None:
        n, phase = self.options.orders, "matching drain"
        self.echo(f"[e2e] drain: {n:,} orders preloaded, then one worker")
        env = await self.listed_env("exchange")
        await self.preload(topic(env, "orders"))
        worker = self.worker(env, "exchange.log")
        await boot(worker, phase, timeout=self.boot_timeout)
        first, last = await self.reports(env, worker, phase, n)
        rate = n * 1000 / max(last - first, 1)
        rss = worker.peak_rss_mib()
        self.rows.append(Row(phase, f"{rate:,.0f} orders/s", self.ratio(rate), rss))
        phase = "all-agents drain"
        watch = Watch(phase, "an sma at each instrument's last trade", worker, self.patience(n))
        trades = await TopicReader(self.bootstrap, topic(env, "trades")).start()
        sma = await TopicReader(self.bootstrap, topic(env, "sma")).start()
        try:
            done = await analytics_caught_up(trades, sma, watch)
        finally:
            await trades.stop()
            await sma.stop()
        rss = worker.peak_rss_mib()
        if done is None:
            self.rows.append(Row(phase, "no trades", rss=rss))
        else:
            rate = n * 1000 / max(done - first, 1)
            self.rows.append(Row(phase, f"{rate:,.0f} orders/s", self.ratio(rate), rss))
        worker.stop()

    async def latency(self) -> None:
        """Rounds of the exchange's latency, each followed by the pass-through's at the same
        rate. One round's p99 swings with how busy the broker and the machine are in its last
        seconds, so the rows give the medians of the rounds and every round's p99."""
        rate, seconds = self.options.rate, self.options.latency_seconds
        floor_phase = f"pass-through latency at {rate:,.0f}/s"
        exchange: list[Round] = []
        floor: list[Round] = []
        for number in range(1, self.options.latency_rounds + 1):
            exchange.append(await self.exchange_latency(number))
            # the worker has stopped
            floor.append(await self.passthrough_latency(floor_phase, number))
        title = f"latency at {rate:,.0f}/s for {seconds:g} s"
        rss = max((r.rss for r in exchange if r.rss is not None), default=None)
        self.rows.append(Row(title, rounds_summary(exchange, "trades"), rss=rss))
        self.rows.append(Row(floor_phase, rounds_summary(floor, "copies")))

    async def passthrough_latency(self, phase: str, number: int) -> Round:
        """The floor: orders offered as below, each copied by a bare consumer-producer."""
        rate, seconds = self.options.rate, self.options.latency_seconds
        self.echo(f"[e2e] {phase} for {seconds:g} s, round {number}")
        source = f"e2e-{self.tag}-offered-{number}"
        target = f"{source}-copy"
        await ensure_topics([self.bootstrap], [source, target], partitions=PARTITIONS)
        count = int(rate * seconds)
        copying = asyncio.ensure_future(
            copy_topic(
                self.bootstrap,
                source,
                target,
                count,
                fetch_wait_ms=self.fetch_wait_ms,
                timeout=self.patience(count),
            )
        )
        orders = seed_orders(clock=stepping_clock(EPOCH), seed=self.options.seed + 2)
        sent_at, took = await offer(
            self.bootstrap, source, orders, PARTITIONS, rate=rate, seconds=seconds
        )
        try:
            await copying
        except TimeoutError as exc:
            raise PhaseError(phase, str(exc)) from exc
        copies = await TopicReader(self.bootstrap, target).start()
        try:
            ms = await copy_delays(copies, sent_at)
        finally:
            await copies.stop()
        if not ms:
            raise PhaseError(phase, f"no copies of {len(sent_at):,} orders")
        return Round(ms, len(sent_at) / took)

    async def exchange_latency(self, number: int) -> Round:
        rate, seconds, phase = self.options.rate, self.options.latency_seconds, "latency"
        env = await self.listed_env(f"latency-{number}")
        worker = self.worker(env, f"latency-{number}.log")
        await boot(worker, phase, timeout=self.boot_timeout)
        self.echo(f"[e2e] {phase}: {rate:,.0f} orders/s for {seconds:g} s, round {number}")
        events = await TopicReader(self.bootstrap, topic(env, "events")).start(from_end=True)
        trades = await TopicReader(self.bootstrap, topic(env, "trades")).start(from_end=True)
        try:
            start_id = START_ID + self.options.orders  # after the drain's ids and event times
            clock = stepping_clock(EPOCH + timedelta(seconds=self.options.orders))
            orders = seed_orders(clock=clock, seed=self.options.seed + 1, start_id=start_id)
            sent_at, took = await offer(
                self.bootstrap, topic(env, "orders"), orders, PARTITIONS, rate=rate, seconds=seconds
            )
            count = len(sent_at)
            watch = Watch(phase, f"reports of {count:,} orders", worker, self.patience(count))
            await first_reports(events, start_id, count, watch)
            ms = await trade_delays(trades, sent_at)
        finally:
            await events.stop()
            await trades.stop()
        rss = worker.peak_rss_mib()
        worker.stop()
        if not ms:
            raise PhaseError(phase, f"no trades from {len(sent_at):,} orders", worker)
        return Round(ms, len(sent_at) / took, rss)

    async def restart(self) -> None:
        r, phase = self.options.resting, f"resting drain ({self.options.resting:,} orders)"
        self.echo(f"[e2e] restart: producing {r:,} resting orders")
        env = await self.listed_env("restart")
        await ensure_topics([self.bootstrap], [topic(env, "orders")], partitions=PARTITIONS)
        orders = resting_orders(clock=stepping_clock(), count=r)
        await produce(self.bootstrap, topic(env, "orders"), keyed(orders, PARTITIONS), linger_ms=50)
        worker = self.worker(env, "restart.log")
        await boot(worker, phase, timeout=self.boot_timeout)
        first, last = await self.reports(env, worker, phase, r)
        rate = r * 1000 / max(last - first, 1)
        self.rows.append(Row(phase, f"{rate:,.0f} orders/s", rss=worker.peak_rss_mib()))
        worker.stop(timeout=STOP_SECONDS)
        for phase, wipe in (("restart on local state", False), ("restart from changelog", True)):
            if wipe:
                shutil.rmtree(env["EXCHANGE_DATA_DIR"], ignore_errors=True)
            self.echo(f"[e2e] {phase}")
            base = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
            timeout = self.patience(r)
            ready, healthy = await boot(worker, phase, timeout=timeout, health_url=f"{base}/health")
            served, resting = await books_served(base, worker, phase, timeout)
            if resting != r:
                raise PhaseError(phase, f"the books hold {resting:,} orders, not {r:,}", worker)
            rss = worker.peak_rss_mib()
            worker.stop(timeout=STOP_SECONDS)
            self.rows.append(
                Row(
                    phase,
                    f"Ready {ready:.1f} s, /health 200 {healthy:.1f} s, "
                    f"books served {served:.1f} s",
                    rss=rss,
                )
            )

    # -- readers -----------------------------------------------------------------------------

    async def reports(
        self, env: dict[str, str], worker: Worker, phase: str, count: int
    ) -> tuple[int, int]:
        """``first_reports`` of the ``count`` orders from ``START_ID``, from the topic's start."""
        watch = Watch(phase, f"a report of each of {count:,} orders", worker, self.patience(count))
        events = await TopicReader(self.bootstrap, topic(env, "events"), fetch_wait_ms=100).start()
        try:
            return await first_reports(events, START_ID, count, watch, probe=True)
        finally:
            await events.stop()
