"""Wires the serving layer to the running worker: its tables, producer and peers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp.web import AppRunner
from faust.types import TP
from faust.web.drivers import aiohttp as faust_aiohttp

from exchange_app.agents.analytics import bars, ledger, profits, tape
from exchange_app.agents.matching import state
from exchange_app.agents.reference import listings
from exchange_app.application import app
from exchange_app.auth import KeyRing
from exchange_app.broker.watch import watch_broker_epoch
from exchange_app.engine import Listing
from exchange_app.keystore import follow_keys
from exchange_app.listings import list_instruments
from exchange_app.metrics import metrics
from exchange_app.routing import home_partition, key_partition
from exchange_app.topics import orders
from tables.declarations import matching_table, positions_table
from tables.query import StateQuery

from .broadcast import Broadcaster
from .server import server_options
from .views import Services

__all__ = [
    "ExchangeWeb",
    "broadcaster",
    "follow_api_keys",
    "keys",
    "live_feed",
    "services",
    "watch_broker",
]

log = logging.getLogger(__name__)
settings = app.settings
broadcaster = Broadcaster()
#: the API keys in force; None when EXCHANGE_AUTH=off
keys = KeyRing() if settings.auth else None


class ExchangeWeb(faust_aiohttp.Web):
    """Faust's aiohttp web server; ``/`` is the dashboard, not Faust's index page. Requests
    must arrive within the configured timeouts (``server.py``)."""

    production_blueprints = []  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner = AppRunner(
            self.web_app, access_log=None, **server_options(settings.header_timeout_seconds)
        )


def _canonical() -> str:
    return str(app.conf.canonical_url).rstrip("/")


def _partition_of(kind: str, key: str) -> int:
    if kind == "instrument":
        return home_partition(key, settings.partitions, settings.spread_instruments)
    return key_partition(key, settings.partitions)


def _owner(kind: str, key: str) -> str | None:
    """The web address of the worker whose tables hold ``key``; None: this one (or unknown)."""
    table = matching_table if kind == "instrument" else positions_table
    changelog = table.changelog_topic.get_topic_name()
    partition = _partition_of(kind, key)
    for url, assignment in app.assignor.table_metadata(changelog).items():
        if partition in assignment.get(changelog, ()):
            return None if str(url).rstrip("/") == _canonical() else str(url)
    return None  # no assignment yet: answer from here


def _peers() -> list[str]:
    hosts = {str(host).rstrip("/") for host in app.assignor.tables_metadata()}
    return sorted(hosts - {_canonical()})


def _healthy() -> bool:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    return recovery.completed.is_set() and not recovery.in_recovery and not app.rebalancing


async def _publish(key: str, raw: bytes) -> None:
    """Order entry: the order goes to its instrument's home partition."""
    await orders.send(key=key.encode(), value=raw, partition=_partition_of("instrument", key))


def _lag() -> dict[tuple[str, int], tuple[int | None, int]]:
    lag: dict[tuple[str, int], tuple[int | None, int]] = {}
    for (topic, partition), offset in list(metrics.processed.items()):
        if topic == settings.orders_topic:  # read by the intake, matched in batches
            highwater = metrics.orders_highwater.get(partition)
        else:
            try:
                highwater = app.consumer.highwater(TP(topic, partition))
            except Exception:  # not assigned here any more
                continue
        lag[(topic, partition)] = (highwater, offset)
    return lag


metrics.lag_source = _lag


def services() -> Services:
    return Services(
        query=StateQuery(state, bars, profits, ledger, tape),
        broadcaster=broadcaster,
        metrics=metrics,
        publish=_publish,
        owner=_owner,
        peers=_peers,
        healthy=_healthy,
        cluster_secret=(
            settings.cluster_secret.get_secret_value().encode() if settings.cluster_secret else None
        ),
        peer_hosts=settings.peer_hosts,
        own_url=_canonical,
        max_page=settings.max_page,
        max_streams=settings.max_streams,
        keys=keys,
        max_streams_per_key=settings.max_streams_per_key,
        max_streams_per_address=settings.max_streams_per_address,
        anonymous_stream_share=settings.anonymous_stream_share,
        stream_heartbeat=settings.stream_heartbeat_ms / 1000,
        auth_failure_rate=settings.auth_failure_rate,
        auth_failure_burst=settings.auth_failure_burst,
        body_timeout=settings.body_timeout_seconds,
        key_rate=settings.key_rate,
        key_burst=settings.key_burst,
        listings=listings,
        write_listings=_write_listings,
    )


async def _write_listings(changed: Sequence[Listing]) -> None:
    """``PUT`` and ``DELETE /listings``: to the listings topic, which every worker follows."""
    await list_instruments(settings.bootstrap_servers, settings.listings_topic, changed)


@app.task
async def watch_broker() -> None:
    """Stop for a restart when the memory-only broker lost its topics (``broker/watch.py``)."""
    await watch_broker_epoch(app)


@app.task
async def follow_api_keys() -> None:
    """Keep this worker's API keys equal to the key store (``keystore.py``)."""
    if keys is None:
        log.warning(
            "EXCHANGE_AUTH=off: ANYONE CAN TRADE, CANCEL AND READ FOR ANY ACCOUNT "
            "through this worker's web server. Never run it so where others can reach it."
        )
        return
    await follow_keys(
        keys, settings.bootstrap_servers, settings.keys_topic, settings.follow_wait_ms or 500
    )


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
        settings.follow_wait_ms,
        settings.live_feed_interval_ms / 1000,
    )
