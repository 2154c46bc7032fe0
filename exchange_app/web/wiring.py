"""Wires the serving layer to the running worker: its tables, producer and peers."""

from __future__ import annotations

import logging

from faust.types import TP
from faust.web.drivers import aiohttp as faust_aiohttp

from exchange_app.agents.analytics import bars, ledger, profits, tape
from exchange_app.agents.matching import state
from exchange_app.application import app
from exchange_app.broker.watch import check_broker_epoch
from exchange_app.metrics import metrics
from exchange_app.topics import orders
from tables.declarations import matching_table, positions_table

from .broadcast import Broadcaster
from .views import Services

__all__ = ["ExchangeWeb", "broadcaster", "live_feed", "services", "watch_broker"]

log = logging.getLogger(__name__)
settings = app.settings
broadcaster = Broadcaster()


class ExchangeWeb(faust_aiohttp.Web):
    """Faust's aiohttp web server; ``/`` is the dashboard, not Faust's index page."""

    production_blueprints = []  # type: ignore[assignment]


def _canonical() -> str:
    return str(app.conf.canonical_url).rstrip("/")


def _owner(kind: str, key: str) -> str | None:
    table = matching_table if kind == "instrument" else positions_table
    try:
        url = str(app.assignor.key_store(table.changelog_topic.get_topic_name(), key.encode()))
    except KeyError:  # no assignment yet: answer from here
        return None
    return None if url.rstrip("/") == _canonical() else url


def _peers() -> list[str]:
    hosts = {str(host).rstrip("/") for host in app.assignor.tables_metadata()}
    return sorted(hosts - {_canonical()})


def _healthy() -> bool:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    return recovery.completed.is_set() and not recovery.in_recovery and not app.rebalancing


async def _publish(key: str, raw: bytes) -> None:
    await orders.send(key=key.encode(), value=raw)


def _lag() -> dict[tuple[str, int], tuple[int | None, int]]:
    lag: dict[tuple[str, int], tuple[int | None, int]] = {}
    for (topic, partition), offset in list(metrics.processed.items()):
        try:
            highwater = app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned here any more
            continue
        lag[(topic, partition)] = (highwater, offset)
    for partition, position in list(metrics.intake.items()):
        lag[(settings.orders_topic, partition)] = position
    return lag


metrics.lag_source = _lag


def services() -> Services:
    return Services(
        matching=state,
        bars=bars,
        profits=profits,
        ledger=ledger,
        tape=tape,
        broadcaster=broadcaster,
        metrics=metrics,
        publish=_publish,
        owner=_owner,
        peers=_peers,
        healthy=_healthy,
    )


@app.timer(interval=5.0)
async def watch_broker() -> None:
    """Stop for a restart when the memory-only broker lost its topics (``broker/watch.py``)."""
    await check_broker_epoch(app)


@app.task
async def live_feed() -> None:
    """Feed the SSE ring from the output topics (all partitions, from their end now)."""
    await broadcaster.feed(
        settings.bootstrap_servers,
        {
            settings.trades_topic: "trade",
            settings.events_topic: "order",
            settings.sma_topic: "bar",
            settings.profit_topic: "profit",
            settings.pnl_topic: "pnl",
        },
        settings.fetch_wait_ms,
    )
