"""The one Faust application, configured from :mod:`settings`.

Run it with ``faust -A exchange_app worker``.

::

    orders ─► (intake: match_orders) ─┬──────────────────────────────────► trades
                              │     └─► orders-routed ─► [match_routed] ─┘
                              └──► order_events / DLQ
    trades-batched ─► [analyse_trades] ─► sma, profit, fills ─► [compute_pnl] ─► pnl
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ConsistencyError
from faust.types import TransportT
from faust.types.web import Web

from . import codec  # noqa: F401  (registers the exjson codec)
from .broker.admin import ensure_topics
from .broker.epoch import EPOCH_FILE, broker_epoch, reconcile_local_state
from .broker.offsets import Transport
from .broker.restore import restore_changelogs
from .broker.watch import EX_TEMPFAIL, BrokerLost, request_restart
from .connection import faust_credentials
from .settings import Settings, get_settings

__all__ = ["ExchangeApp", "app", "create_app", "faust_options"]

log = logging.getLogger(__name__)
# aiokafka logs every consumer's subscription as a multi-line table at INFO; the intake,
# the live feed and the key store say what they read in one line each.
logging.getLogger("aiokafka.consumer.subscription_state").setLevel(logging.WARNING)


class ExchangeApp(faust.App):
    """``faust.App`` with the end-offset fix and the broker-epoch check of ``broker/``."""

    settings: Settings
    #: the broker epoch this worker's local state belongs to (set at start)
    broker_epoch: str | None = None
    #: called once local state is final for the start (epoch checked, changelogs
    #: restored), before the worker joins its group: a chance to read it early
    on_local_state_ready: list[Callable[[], None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_local_state_ready = []

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)

    def _new_web(self) -> Web:
        from .web.wiring import ExchangeWeb

        return ExchangeWeb(self)

    def on_webserver_init(self, web: Web) -> None:
        from .web import install
        from .web.wiring import services

        install(web.web_app, services())  # type: ignore[attr-defined]

    def _crash(self, reason: BaseException) -> None:
        super()._crash(reason)
        if isinstance(reason, ConsistencyError):
            # Local tables are ahead of their changelogs: the broker lost data.
            log.error(
                "Local state is ahead of the broker's changelogs (%s). Stopping with exit "
                "code %s; the next start discards the local tables and restores them.",
                reason.__class__.__name__,
                EX_TEMPFAIL,
            )
            request_restart(self.conf.appdir / EPOCH_FILE)
        elif isinstance(reason, BrokerLost):
            request_restart()

    async def on_first_start(self) -> None:
        await super().on_first_start()
        settings = self.settings
        counts = await self._ensure_topics_when_reachable(settings)
        for name in (settings.orders_topic, settings.routed_topic):
            if counts.get(name, settings.partitions) != settings.partitions:
                log.error(
                    "Topic %s has %s partitions but EXCHANGE_PARTITIONS is %s: orders are "
                    "routed by instrument over %s partitions, so set EXCHANGE_PARTITIONS=%s.",
                    name,
                    counts[name],
                    settings.partitions,
                    settings.partitions,
                    counts[name],
                )
        # Before any table opens its RocksDB: state from a lost broker must go.
        epoch = await broker_epoch(
            self.settings.bootstrap_servers,
            f"{self.conf.id}-broker-epoch",
            replication=self.settings.replication,
        )
        reconcile_local_state(epoch, self.conf.appdir, self.conf.tabledir)
        self.broker_epoch = epoch
        if settings.bulk_restore:
            await restore_changelogs(
                self.tables.values(),
                settings.bootstrap_servers,
                fetch_wait_ms=settings.fetch_wait_ms or 500,
                partitions=settings.partitions,
            )
        for callback in self.on_local_state_ready:
            callback()

    async def _ensure_topics_when_reachable(
        self, settings: Settings, wait: float = 60.0
    ) -> dict[str, int]:
        """Create our topics, waiting up to ``wait`` s for a broker started alongside."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                return await ensure_topics(
                    settings.bootstrap_servers,
                    settings.topic_names,
                    partitions=settings.partitions,
                    replication=settings.replication,
                )
            except KafkaError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.info("waiting for the broker at %s (%s)", settings.broker, exc)
                await asyncio.sleep(0.5)


def faust_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "broker": settings.broker,
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication,
        "processing_guarantee": settings.processing_guarantee,
        "broker_commit_every": settings.commit_every,
        "consumer_auto_offset_reset": "earliest",
        "web_bind": settings.web_host,
        "web_host": settings.web_advertised_host or settings.web_host,
        "web_port": settings.web_port,
        "web_in_thread": False,
        "table_standby_replicas": 1,
        # Revoke partitions only once every event an agent took is acked: the analytics'
        # in-memory state is dropped on assignment, never while a batch is computed.
        "stream_wait_empty": True,
        "producer_acks": -1,
        # A batch's records for one partition go out as one record batch.
        "producer_max_batch_size": settings.producer_batch_bytes,
        "producer_max_request_size": 4 * settings.producer_batch_bytes,
        # Faust's /table/{name}/{key}/ forwards the caller's headers: to allowed peers only.
        "Router": "exchange_app.web.forwarding:PeerRouter",
    }
    credentials = faust_credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    if settings.embedded_broker:
        # Tansu lets a member join only after about half the session timeout.
        options |= {
            "broker_session_timeout": 6.0,
            "broker_heartbeat_interval": 1.0,
            "broker_rebalance_timeout": 6.0,
        }
    return options


def create_app(settings: Settings | None = None) -> ExchangeApp:
    settings = settings or get_settings()
    new = ExchangeApp(settings.app_id, **faust_options(settings))
    new.settings = settings
    return new


app = create_app()
