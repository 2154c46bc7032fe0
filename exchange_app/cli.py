"""The ``exchange`` command line: broker, producers, the whole stack, benchmarks."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from .connection import client_options
from .settings import Settings, get_settings

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
#: Long work (replay, produce, export, compaction) says how far it got this often.
PROGRESS_SECONDS = 5.0


class UserError(click.ClickException):
    """A mistake in what the user asked (bad SQL, a missing archive, a bad date, no key):
    one line on stderr and exit status 2, as click does for a bad option, no traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        super().__init__(" ".join(lines[:1]) or "failed")


def _day(value: str, option: str) -> date:
    """``value`` as a date, or a :class:`UserError` naming ``option``."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option}: expected a day as YYYY-MM-DD, got {value[:40]!r}") from None


def _archive_root(named: str | None) -> str:
    """The archive a reader means (``archive/locating.py``)."""
    from .archive import ArchiveNotFound, locate_archive

    settings = get_settings()
    try:
        return locate_archive(named, settings.archive_url, settings.data_dir / "archive")
    except ArchiveNotFound as exc:
        raise UserError(str(exc)) from None


def _say_which(root: str, named: str | None) -> None:
    """After a reader's work: which archive it read, when it found it by itself."""
    if named is None and get_settings().archive_url is None:
        click.echo(f"(read the archive {root})", err=True)


ARCHIVE_HELP = (
    "The archive to read: a directory or an s3:// or hdfs:// URL  [default: "
    "EXCHANGE_ARCHIVE_URL, else the newest make run archive under <data dir>/archive]"
)


def _say_progress() -> None:
    """Let the modules' INFO lines through to stderr, one line each (not the worker's:
    Faust sets up its own logging)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


@click.group()
def main() -> None:
    """A streaming electronic stock exchange on Kafka and Faust."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9092, show_default=True, type=int)
def broker(host: str, port: int) -> None:
    """Run the embedded (memory-only) Kafka-compatible broker in the foreground."""
    from .broker import EmbeddedBroker

    embedded = EmbeddedBroker(host, port)
    embedded.start()
    click.echo(f"embedded broker listening on {embedded.url} (memory only)", err=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    code = 130
    try:
        code = embedded.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()
    sys.exit(code)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _home(instrument: str, settings: Settings) -> int:
    from .routing import home_partition

    return home_partition(instrument, settings.partitions, settings.spread_instruments)


async def _with_broker(work: Any, wait: float = 60.0) -> Any:
    """Run ``work()`` once the broker answers (it may be starting), quietly: aiokafka
    would log every refused connection while it starts."""
    import logging

    deadline = time.monotonic() + wait
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        while True:
            try:
                return await work()
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise click.ClickException(
                        f"broker {get_settings().broker} unreachable: {exc}"
                    ) from exc
                await asyncio.sleep(0.5)
    finally:
        quiet.setLevel(level)


async def _publish(
    orders: Iterable[dict[str, Any] | bytes], rate: float, wait: float, progress: bool = True
) -> int:
    """Send orders keyed by instrument to its home partition, at most ``rate`` a second.

    ``rate`` 0 sends as fast as possible; ``progress``: say how far it got every few seconds.
    """
    from aiokafka import AIOKafkaProducer

    from .broker.admin import ensure_topics
    from .wire import dumps, loads

    settings = get_settings()
    await _with_broker(
        lambda: ensure_topics(
            settings.bootstrap_servers,
            [settings.orders_topic],
            partitions=settings.partitions,
            replication=settings.replication,
        ),
        wait,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_idempotence=False,
        linger_ms=5,
        **client_options(settings),
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    report_at = started + PROGRESS_SECONDS
    try:
        for order in orders:
            if isinstance(order, bytes):
                raw = order
                try:
                    parsed = loads(raw)
                    key = parsed.get("instrument") if isinstance(parsed, dict) else None
                except ValueError:
                    key = None
            else:
                raw, key = dumps(order), order.get("instrument")
            await producer.send(
                settings.orders_topic,
                raw,
                key=key.encode() if isinstance(key, str) else None,
                partition=_home(key, settings) if isinstance(key, str) else None,
            )
            sent += 1
            if rate:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if progress and time.monotonic() >= report_at:
                report_at = time.monotonic() + PROGRESS_SECONDS
                elapsed = time.monotonic() - started
                click.echo(f"sent {sent:,} orders ({sent / elapsed:,.0f}/s)", err=True)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


@main.command()
@click.option("--count", default=0, help="Orders to send; 0 sends until stopped.")
@click.option("--rate", default=10.0, show_default=True, help="Orders per second; 0 = unthrottled.")
@click.option("--instruments", default="RIL,INFY,ONGC,TCS", show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed for a reproducible stream.")
@click.option(
    "--start-id",
    type=int,
    default=None,
    help="The first order id  [default: microseconds since 1970, so that a second run's ids "
    "are new: a book refuses an id one of its recent orders had]",
)
@click.option("--accounts", default="", help="Comma-separated accounts to draw orders from.")
@click.option("--wait", default=60.0, show_default=True, help="Seconds to wait for the broker.")
def produce(
    count: int,
    rate: float,
    instruments: str,
    seed: int | None,
    start_id: int | None,
    accounts: str,
    wait: float,
) -> None:
    """Stream orders in the original generator's format, keyed by instrument."""
    from .orderflow import seed_orders

    if start_id is None:
        start_id = time.time_ns() // 1000  # below 2**53: JSON-safe in a browser

    stream = seed_orders(
        clock=lambda: datetime.now(UTC),
        seed=seed,
        instruments=[i.strip() for i in instruments.split(",") if i.strip()],
        start_id=start_id,
        accounts=[a.strip() for a in accounts.split(",") if a.strip()],
    )
    orders = itertools.islice(stream, count) if count else stream
    try:
        sent = asyncio.run(_publish(orders, rate, wait, progress=count > 0))
    except KeyboardInterrupt:
        return
    click.echo(f"sent {sent} orders", err=True)


@main.command()
@click.argument("file", type=click.File("rb"), required=False)
@click.option(
    "--archive-date",
    default=None,
    help="Replay the orders the archive holds for this day (YYYY-MM-DD) instead of FILE.",
)
@click.option("--archive", "archive_root", default=None, help=ARCHIVE_HELP)
@click.option("--rate", default=0.0, help="Orders per second; 0 = as fast as possible.")
@click.option("--wait", default=60.0, show_default=True, help="Seconds to wait for the broker.")
def replay(
    file: Any, archive_date: str | None, archive_root: str | None, rate: float, wait: float
) -> None:
    """Publish a JSON-lines file of orders (or a day of the archive), in order, keyed by
    instrument, to the orders topic of EXCHANGE_APP_ID's exchange."""
    if archive_date is not None:
        from .archive import archived_orders, open_archive

        day = _day(archive_date, "--archive-date")
        orders: Iterable[dict[str, Any] | bytes] = archived_orders(
            open_archive(_archive_root(archive_root)), day
        )
    elif file is not None:
        lines = (line.rstrip(b"\r\n") for line in file)
        orders = (line for line in lines if line.strip())
    else:
        raise click.UsageError("give a FILE or --archive-date")
    sent = asyncio.run(_publish(orders, rate, wait))
    click.echo(f"sent {sent} orders", err=True)


@main.group()
def keys() -> None:
    """API keys: who may trade and read which account over HTTP (exchange_app/auth.py)."""


def _account(account: str) -> str:
    from .web.answers import ACCOUNT

    if not ACCOUNT.match(account):
        raise click.BadParameter(f"{account!r} is not an account name", param_hint="ACCOUNT")
    return account


@keys.command("add")
@click.argument("account")
@click.option("--admin", is_flag=True, help="May also read every account and the metrics.")
def keys_add(account: str, admin: bool) -> None:
    """Create a key for ACCOUNT and print it: it is shown this once, and stored hashed."""
    from .keystore import add_key

    settings = get_settings()
    topic = settings.keys_topic
    bootstrap = settings.bootstrap_servers
    key = asyncio.run(
        _with_broker(lambda: add_key(bootstrap, topic, _account(account), admin=admin))
    )
    click.echo(key)


@keys.command("revoke")
@click.argument("account")
def keys_revoke(account: str) -> None:
    """Revoke every key of ACCOUNT, on every worker."""
    from .keystore import revoke_keys

    settings = get_settings()
    topic, bootstrap = settings.keys_topic, settings.bootstrap_servers
    count = asyncio.run(_with_broker(lambda: revoke_keys(bootstrap, topic, _account(account))))
    click.echo(f"revoked {count} key(s) of {account}")


@keys.command("list")
def keys_list() -> None:
    """The keys in force: id, account, admin (never the keys)."""
    from .keystore import read_keys

    settings = get_settings()
    ring = asyncio.run(
        _with_broker(lambda: read_keys(settings.bootstrap_servers, settings.keys_topic))
    )
    for key_id, record in sorted(ring.records.items(), key=lambda kv: kv[1]["account"]):
        click.echo(f"{key_id}  {record['account']}{'  admin' if record.get('admin') else ''}")


@main.group()
def instruments() -> None:
    """Listings: which instruments trade, in which steps (exchange_app/listings.py)."""


@instruments.command("list")
def instruments_list() -> None:
    """The listings: symbol, tick size, lot size, price band, status."""
    from .listings import read_listings

    settings = get_settings()
    listings = asyncio.run(
        _with_broker(lambda: read_listings(settings.bootstrap_servers, settings.listings_topic))
    )
    for symbol in listings.symbols():
        item = listings.by_instrument[symbol]
        click.echo(
            f"{symbol:16} tick {item.tick_size}  lot {item.lot_size}  "
            f"band {item.band_pct}%  {item.status.value}"
        )


@instruments.command("add")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--tick", default="0.01", show_default=True, help="Price step.")
@click.option("--lot", default="1", show_default=True, help="Quantity step.")
@click.option(
    "--band-pct", default="10", show_default=True, help="Price band around the last trade, in %."
)
def instruments_add(symbols: tuple[str, ...], tick: str, lot: str, band_pct: str) -> None:
    """List SYMBOLS (or list them again with new steps), on every worker."""
    from .engine import InvalidListing
    from .listings import list_instruments, listing_of

    settings = get_settings()
    steps = {"tick_size": tick, "lot_size": lot, "band_pct": band_pct}
    try:
        listings = [listing_of(symbol, steps) for symbol in symbols]
    except InvalidListing as exc:
        raise click.BadParameter("; ".join(exc.reasons), param_hint=exc.instrument) from exc
    topic, bootstrap = settings.listings_topic, settings.bootstrap_servers
    asyncio.run(_with_broker(lambda: list_instruments(bootstrap, topic, listings)))
    click.echo(f"listed {', '.join(symbols)}")


@instruments.command("remove")
@click.argument("symbol")
def instruments_remove(symbol: str) -> None:
    """Delist SYMBOL: it takes no new orders; its resting orders may still be cancelled."""
    from .listings import delist

    settings = get_settings()
    topic, bootstrap = settings.listings_topic, settings.bootstrap_servers
    if asyncio.run(_with_broker(lambda: delist(bootstrap, topic, symbol))) is None:
        raise click.ClickException(f"{symbol} is not listed")
    click.echo(f"delisted {symbol}")


async def _healthy(url: str, deadline: float) -> bool:
    """Whether ``url``'s ``/health`` answers 200 before ``deadline`` (time.monotonic())."""
    import aiohttp

    while time.monotonic() < deadline:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(f"{url}/health") as answer,
            ):
                if answer.status == 200:
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(1.0)
    return False


def _demo_keys(settings: Settings, url: str) -> None:
    """Once the worker is healthy, create a key per demo trader and an admin key, print
    them in a block that stands out and write them to ``<data dir>/demo-keys.env``."""
    from .demo import ADMIN_ACCOUNT, KEYS_FILE, TRADER_ACCOUNTS, keys_banner, write_keys
    from .keystore import add_key

    bootstrap, topic = settings.bootstrap_servers, settings.keys_topic

    async def create() -> tuple[list[tuple[str, str]], str]:
        traders = [
            (account, await add_key(bootstrap, topic, account)) for account in TRADER_ACCOUNTS
        ]
        return traders, await add_key(bootstrap, topic, ADMIN_ACCOUNT, admin=True)

    if not asyncio.run(_healthy(url, time.monotonic() + 300)):
        click.echo(f"exchange up: no demo keys: {url}/health did not answer 200", err=True)
        return
    try:
        traders, admin = asyncio.run(_with_broker(create, wait=120.0))
    except click.ClickException as exc:
        click.echo(f"exchange up: no demo keys: {exc.message}", err=True)
        return
    path = write_keys(settings.data_dir / KEYS_FILE, traders, admin)
    click.echo(keys_banner(f"{url}/", traders, admin, path), err=True)


@main.command()
@click.option("--procfile", type=click.Path(exists=True, dir_okay=False), default=None)
def up(procfile: str | None) -> None:
    """Run broker, worker, a demo producer and the archiver together (the Procfile);
    Ctrl-C stops all."""
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    from .archive.locating import RUN_TIME_FORMAT, run_name

    settings = get_settings()
    path = Path(procfile) if procfile else ROOT / "Procfile"
    processes = parse_procfile(path.read_text()).processes
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    # 2-second bars: the dashboard's chart fills within a minute of demo orders (the
    # original's 5-minute bars would show one bar in that time)
    env.setdefault("EXCHANGE_BAR_SECONDS", "2")
    # The embedded broker starts empty each time: its log gets an archive of its own.
    run = run_name(datetime.now(UTC).strftime(RUN_TIME_FORMAT))
    env.setdefault("EXCHANGE_ARCHIVE_URL", str(settings.data_dir / "archive" / run))
    manager = Manager()
    for name, command in processes.items():
        manager.add_process(name, command, env=env, cwd=str(ROOT))
    url = f"http://{settings.web_host}:{settings.web_port}"
    click.echo(
        f"exchange up: web on {url}/ broker {settings.broker}; the demo keys follow once "
        "the worker is ready; Ctrl-C stops everything",
        err=True,
    )
    if settings.auth:
        import threading

        threading.Thread(target=_demo_keys, args=(settings, url), daemon=True).start()
    manager.loop()
    sys.exit(manager.returncode)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("faust_args", nargs=-1, type=click.UNPROCESSED)
def worker(faust_args: tuple[str, ...]) -> None:
    """Run 'faust -A exchange_app worker -l info', again whenever it exits with 75.

    75 means the memory-only broker lost its topics (see exchange_app/broker/watch.py);
    any other exit ends this command with the worker's exit code.
    """
    import subprocess

    from .broker.watch import EX_TEMPFAIL

    command = [str(Path(sys.executable).with_name("faust")), "-A", "exchange_app", "worker"]
    command += list(faust_args) or ["-l", "info"]
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: Any) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        child = subprocess.Popen(command)
        code = child.wait()
        if code != EX_TEMPFAIL:
            sys.exit(code)
        click.echo(
            "exchange worker: the broker lost its topics; starting the worker again", err=True
        )


@main.command()
@click.option(
    "--orders",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="Orders per run  [default: 200,000; with --e2e 30,000]",
)
@click.option("--runs", default=5, show_default=True, help="Runs per engine benchmark.")
@click.option("--seed", default=7, show_default=True, help="Seed of the order streams.")
@click.option(
    "--e2e", is_flag=True, help="Benchmark the whole pipeline on its own broker and workers."
)
@click.option(
    "--rate",
    default=2_000.0,
    type=click.FloatRange(min=1),
    show_default=True,
    help="--e2e: latency phase orders/s.",
)
@click.option(
    "--latency-seconds",
    default=20.0,
    type=click.FloatRange(min=0.1),
    show_default=True,
    help="--e2e: how long the latency phase offers orders.",
)
@click.option(
    "--latency-rounds",
    default=3,
    type=click.IntRange(min=1),
    show_default=True,
    help="--e2e: latency rounds, each on a fresh worker; the table gives their medians.",
)
@click.option(
    "--resting",
    default=1_000_000,
    type=click.IntRange(min=1),
    show_default=True,
    help="--e2e: orders in the restart phase.",
)
@click.option(
    "--skip",
    multiple=True,
    metavar="PHASE[,PHASE]",
    help="--e2e: phases to leave out: passthrough, faust, drain, latency, restart.",
)
@click.option(
    "--timeout",
    default=0.0,
    type=click.FloatRange(min=0),
    help="--e2e: seconds a phase may wait; 0 = by its size.",
)
@click.option("--keep", is_flag=True, help="--e2e: keep the temporary directory and the logs.")
def bench(
    count: int | None,
    runs: int,
    seed: int,
    e2e: bool,
    rate: float,
    latency_seconds: float,
    latency_rounds: int,
    resting: int,
    skip: tuple[str, ...],
    timeout: float,
    keep: bool,
) -> None:
    """Measure the pure matching engine in orders/s (seed stream and a deep book).

    With --e2e: the exchange on an embedded broker next to a bare aiokafka
    pass-through and a bare Faust agent (see the README, "End-to-end benchmark").
    """
    if e2e:
        _bench_e2e(count, seed, rate, latency_seconds, latency_rounds, resting, skip, timeout, keep)
        return
    from .bench import run_benchmarks

    click.echo(f"matching engine, {runs} runs each, Python {sys.version.split()[0]}")
    for result in run_benchmarks(count or 200_000, runs, seed):
        click.echo(result.line())


def _bench_e2e(
    count: int | None,
    seed: int,
    rate: float,
    latency_seconds: float,
    latency_rounds: int,
    resting: int,
    skip: tuple[str, ...],
    timeout: float,
    keep: bool,
) -> None:
    from .broker import BrokerStartError
    from .e2e import PHASES, E2EOptions, render, run_e2e

    skipped = frozenset(p.strip() for part in skip for p in part.split(",") if p.strip())
    if unknown := sorted(skipped - set(PHASES)):
        raise click.BadParameter(f"unknown phase {', '.join(unknown)}", param_hint="--skip")
    options = E2EOptions(
        orders=count or 30_000,
        rate=rate,
        latency_seconds=latency_seconds,
        latency_rounds=latency_rounds,
        resting=resting,
        seed=seed,
        keep=keep,
        skip=skipped,
        timeout=timeout,
    )
    parts = [f"{options.orders:,} seed orders (seed {seed})"]
    if "latency" not in skipped:
        parts.append(
            f"latency at {rate:,.0f} orders/s for {latency_seconds:g} s, {latency_rounds} rounds"
        )
    if "restart" not in skipped:
        parts.append(f"{resting:,} resting orders")
    click.echo(
        f"end to end: {', '.join(parts)}; 4 partitions, embedded broker, "
        f"Python {sys.version.split()[0]}"
    )
    try:
        rows = run_e2e(options, lambda line: click.echo(line, err=True))
    except BrokerStartError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render(rows))
    if any(row.failed for row in rows):
        sys.exit(1)


async def _errors(response: Any) -> list[str]:
    """The reasons of a refusal (``{"errors": [...]}``), or its text."""
    text = await response.text()
    try:
        from .wire import loads

        return [str(reason) for reason in loads(text)["errors"]]
    except (ValueError, KeyError, TypeError):
        return [text[:200]]


async def _stream_latency(url: str, count: int, instrument: str, key: str) -> list[float]:
    import aiohttp

    from .wire import loads

    delays: list[float] = []
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        stream = await session.get(f"{url}/stream?instrument={instrument}")
        await asyncio.sleep(0.2)
        for i in range(count):
            for side in ("SELL", "BUY"):
                order = {
                    "instrument": instrument,
                    "trxn_type": side,
                    "quantity": 1,
                    "price": 10 + i,
                }
                while True:  # past the key's request rate, wait as told
                    started = time.perf_counter()
                    async with session.post(f"{url}/orders", json=order) as response:
                        if response.status >= 400 and response.status != 429:
                            raise UserError(
                                f"{url}/orders answered {response.status}: "
                                + "; ".join(await _errors(response))
                            )
                        if response.status != 429:
                            break
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            while True:  # until this pair's trade arrives
                line = await asyncio.wait_for(stream.content.readline(), 30)
                if line.startswith(b"data: "):
                    data = loads(line[6:])
                    if data.get("price") == 10 + i and "trade_id" in data:
                        delays.append(time.perf_counter() - started)
                        break
        stream.close()
    return delays


@main.command()
@click.option("--url", default=None, help="A worker's web address (default: this machine's).")
@click.option(
    "--count",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trades to time: each is a SELL and a crossing BUY of one unit.",
)
@click.option(
    "--instrument",
    default="LATENCY",
    show_default=True,
    help="A listed instrument to trade (exchange instruments add LATENCY).",
)
@click.option("--key", envvar="EXCHANGE_KEY", default="", help="API key (or EXCHANGE_KEY).")
def latency(url: str | None, count: int, instrument: str, key: str) -> None:
    """Measure order entry to trade on /stream: POST crossing orders, time the SSE event."""
    import statistics

    import aiohttp

    settings = get_settings()
    url = (url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    if not key and settings.auth:
        raise UserError(
            "no API key: give --key KEY or set EXCHANGE_KEY (exchange keys add ACCOUNT prints one)"
        )
    try:
        delays = asyncio.run(_stream_latency(url, count, instrument, key))
    except aiohttp.ClientConnectionError as exc:
        raise UserError(f"no worker answers at {url}: {exc}") from None
    except aiohttp.ClientResponseError as exc:
        raise UserError(f"{url}/orders answered {exc.status}: {exc.message}") from None
    except TimeoutError:
        raise UserError(f"no trade of {instrument} on {url}/stream within 30 s") from None
    ms = sorted(d * 1000 for d in delays)
    click.echo(
        f"{len(ms)} trades: POST of the crossing order -> trade event on /stream: "
        f"median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms"
    )


@main.command()
@click.option(
    "--out", default="export", show_default=True, help="A directory, or an s3:// or hdfs:// URL."
)
@click.option(
    "--from-archive", is_flag=True, help="Read the Parquet archive instead of the topics."
)
@click.option(
    "--date",
    "day",
    default=None,
    help="With --from-archive: only this day's partitions (YYYY-MM-DD).",
)
@click.option(
    "--archive", "archive_root", default=None, help=f"With --from-archive: {ARCHIVE_HELP}"
)
def export(out: str, from_archive: bool, day: str | None, archive_root: str | None) -> None:
    """Write successful_orders.csv, sma_calc.csv and profit_calc.csv from the topics."""
    from .export import export as export_csv
    from .export import export_archive

    if (day is not None or archive_root is not None) and not from_archive:
        raise UserError("--date and --archive go with --from-archive")
    settings = get_settings()
    if from_archive:
        on = _day(day, "--date") if day else None
        root = _archive_root(archive_root)
        _say_progress()
        written = export_archive(settings, out, on, root)
        if not any(written.values()):
            click.echo(
                f"the archive {root} holds no trades{f' of {on}' if on else ''} yet: the "
                f"archiver writes every {settings.archive_flush_seconds:g} s",
                err=True,
            )
        _say_which(root, archive_root)
    else:
        _say_progress()
        written = asyncio.run(export_csv(settings, out))
    for name, rows in written.items():
        click.echo(f"{out.rstrip('/')}/{name}: {rows} rows")


@main.command()
@click.option("--url", default=None, help="Archive root  [default: EXCHANGE_ARCHIVE_URL]")
@click.option(
    "--until-end", is_flag=True, help="Stop once the topics' ends at the start are archived."
)
@click.option(
    "--compact",
    "compact_files",
    is_flag=True,
    help="Merge small files instead of archiving (daily, from the Airflow DAG).",
)
def archive(url: str | None, until_end: bool, compact_files: bool) -> None:
    """Follow the public topics into Hive-partitioned Parquet, each record once."""
    from .archive import Archiver, compact, open_archive

    _say_progress()
    settings = get_settings()
    target = open_archive(url or settings.archive)
    if compact_files:

        def done(name: str, merged: int, written: int) -> None:
            click.echo(f"{name}: {merged} files merged into {written}", err=True)

        compact(target, progress=done)
        return
    archived = asyncio.run(Archiver(settings, target).run(until_end=until_end))
    click.echo(f"archived {archived} records into {target.root}", err=True)


@main.command()
@click.argument("sql")
@click.option("--archive", "archive_root", default=None, help=ARCHIVE_HELP)
@click.option("--url", "archive_url", default=None, hidden=True)  # the old name of --archive
def query(sql: str, archive_root: str | None, archive_url: str | None) -> None:
    """Run SQL (DuckDB) over the archive: orders, trades, events, sma, profit, pnl, dlq.

    The archive trails the topics by up to EXCHANGE_ARCHIVE_FLUSH_SECONDS (30 s).

    Example: exchange query "SELECT date, instrument, sum(price * quantity) / sum(quantity)
    AS vwap FROM trades GROUP BY ALL ORDER BY ALL"
    """
    import duckdb
    import pandas as pd

    from .archive import DATASETS, open_archive
    from .archive import query as run_query

    archive = open_archive(_archive_root(archive_root or archive_url))
    try:
        frame = run_query(archive, sql)
    except duckdb.Error as exc:
        if not any(archive.dataset(d) is not None for d in DATASETS):
            raise UserError(
                f"the archive {archive.root} holds nothing yet: the archiver writes every "
                f"{get_settings().archive_flush_seconds:g} s"
            ) from None
        raise UserError(str(exc)) from None
    with pd.option_context("display.max_rows", 500, "display.width", 200):
        click.echo(frame.to_string(index=False))
    _say_which(archive.root, archive_root or archive_url)


@main.command()
@click.option(
    "--worker",
    "workers",
    multiple=True,
    help="A worker's web address whose /health must answer 200 (repeatable).",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per check.")
def check(workers: tuple[str, ...], timeout: float) -> None:
    """Start-of-day checks: broker reachable, topics present, workers healthy."""
    from .checks import run_checks

    results = asyncio.run(run_checks(get_settings(), workers, timeout))
    for passed, what in results:
        click.echo(f"{'ok  ' if passed else 'FAIL'} {what}")
    if not all(passed for passed, _ in results):
        raise SystemExit(1)


@main.command()
@click.confirmation_option(prompt="Delete this worker's local state?")
def reset() -> None:
    """Delete the local state (EXCHANGE_DATA_DIR); tables are restored from changelogs.
    A Parquet archive kept there (the default, archive/) is business data: it stays."""
    data_dir = get_settings().data_dir
    kept = data_dir / "archive"
    for path in data_dir.iterdir() if data_dir.is_dir() else ():
        if path == kept:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    note = f"; kept {kept}" if kept.exists() else ""
    click.echo(f"removed the local state in {data_dir}{note}")
