"""Every setting of the exchange, read once from ``EXCHANGE_*`` environment variables.

The field names document the variables: ``data_dir`` is ``EXCHANGE_DATA_DIR``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", frozen=True)

    # -- Kafka ---------------------------------------------------------------
    broker: str = Field(
        "kafka://localhost:9092",
        description="Kafka bootstrap URL(s), e.g. kafka://host1:9092;kafka://host2:9092.",
    )
    embedded_broker: bool = Field(
        True,
        description="The broker is the embedded Tansu: use short consumer-group timeouts "
        "(it joins a group only after half the session timeout). Set false on real Kafka.",
    )
    fetch_max_wait_ms: int | None = Field(
        None,
        ge=1,
        description="How long a fetch on the order-to-trade path (the order intake, and "
        "changelog restores) may wait for records; default 20 on the embedded broker (it "
        "answers a fetch only when it next looks, up to half the wait after records arrive) "
        "and Faust's 1500 on Kafka.",
    )
    follow_fetch_wait_ms: int | None = Field(
        None,
        ge=1,
        description="How long the fetches of every other reader may wait: Faust's agents "
        "(analytics, re-routed orders), the live feed, the key store and the archiver; "
        "default 100 on the embedded broker (each fetch it answers costs more the longer the "
        "partition); on Kafka, which answers as soon as records arrive, each client's own.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every client of the exchange (Faust and the plain ones) connects to "
        "the broker: SSL is TLS, SASL_SSL is TLS with a user and password.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)."
    )
    kafka_username: str | None = Field(None, description="SASL user name.")
    kafka_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA certificates (PEM) to check the broker with; default: the system's."
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM), where the broker wants TLS client auth."
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="The client certificate's key (PEM).")
    app_id: str = Field("exchange", description="Faust app id: consumer group and topic prefix.")
    partitions: int = Field(4, ge=1, description="Partitions of every topic the worker creates.")
    replication: int = Field(1, ge=1, description="Replication factor of created topics.")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="exactly_once needs a real Kafka cluster with transactions."
    )

    # -- topics (DESIGN section 2) -------------------------------------------
    orders_topic: str = "stock_exchange_orders"
    trades_topic: str = "successful_trade"
    events_topic: str = "order_events"
    sma_topic: str = "sma"
    profit_topic: str = "profit"
    pnl_topic: str = "pnl"
    dlq_topic: str = "stock_exchange_orders_dlq"

    spread_instruments: Annotated[tuple[str, ...], NoDecode] = Field(
        ("RIL", "INFY", "ONGC", "TCS"),
        description="Comma-separated instruments placed round-robin over the partitions (the "
        "i-th on partition i mod N); others go where murmur2 of the name puts them.",
    )

    bulk_restore: bool = Field(
        True,
        description="At start, read every table changelog partition into the local store "
        "with a plain consumer before Faust's recovery (much faster); false on a cluster "
        "with many workers and partitions, where each worker needs only its own.",
    )

    # -- batches -------------------------------------------------------------
    batch_size: int = Field(
        1_000, ge=1, description="Input messages an agent takes and makes durable at once."
    )
    batch_wait_ms: int = Field(
        5, ge=0, description="How long an agent waits for a batch to fill before processing it."
    )
    analytics_interval_ms: int = Field(
        250,
        ge=0,
        description="While the analytics agents keep up, they take their input at most once "
        "per this interval (Faust's consumer pauses their partitions in between), so bars, "
        "SMA, profit and P&L are published about this often under a steady flow. Each read "
        "and each batch costs the broker and the worker's loop the same however few trades "
        "it carries; 0 reads as often as trades come.",
    )
    pipeline_window: int = Field(
        16,
        ge=1,
        description="Matching batches whose outputs or tables may be in flight at once: the "
        "next batch is matched while earlier ones are delivered. More overlaps more broker "
        "round trips and holds more batches in memory.",
    )
    producer_batch_bytes: int = Field(
        1_048_576,
        ge=16_384,
        description="Bytes of one produced record batch: a batch's changelog records for one "
        "partition must fit, so that they reach the changelog atomically.",
    )

    # -- engine ----------------------------------------------------------------
    matching: Literal["price-time", "exact"] = Field(
        "price-time", description="price-time (continuous auction) or exact (the seed's)."
    )
    max_message_bytes: int = Field(
        65_536, ge=256, description="Order messages larger than this are rejected unread."
    )

    # -- analytics ---------------------------------------------------------------
    bar_seconds: int = Field(300, ge=1, description="Width of an analytics bar, in seconds.")
    sma_bars: Annotated[tuple[int, ...], NoDecode] = Field(
        (2,), description="Comma-separated SMA windows in bars, e.g. 2,5,20."
    )

    store: str = Field(
        "rocksdb://", description="Faust table store: rocksdb:// (RocksDB, rocksdict) or memory://."
    )

    # -- local state and web -------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="RocksDB tables and worker state.")
    web_host: str = Field("127.0.0.1", description="Address the web server binds to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the web server.")
    web_advertised_host: str | None = Field(
        None,
        description="The host other workers reach this one's web server at (its pod or "
        "container name); default web_host. Bind to 0.0.0.0 and advertise a name.",
    )
    auth: bool = Field(
        True,
        description="Require API keys for trading and private views (exchange keys add). "
        "EXCHANGE_AUTH=off lets anyone do anything: for local experiments only.",
    )
    cluster_secret: SecretStr | None = Field(
        None,
        description="The secret every worker of the exchange shares to sign the requests it "
        "proxies to the worker owning a key; unset, workers do not ask each other.",
    )
    peer_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.1", "localhost", "::1"),
        description="Comma-separated hosts a worker may proxy requests to (a peer's "
        "advertised web address must name one).",
    )
    max_page: int = Field(
        1000,
        ge=1,
        description="The largest page (?limit=) of /instruments and of an account's positions.",
    )
    max_streams: int = Field(
        200, ge=1, description="Open /stream (Server-Sent Events) connections a worker holds."
    )
    max_streams_per_key: int = Field(
        5, ge=1, description="Open /stream connections one API key may hold on a worker."
    )
    key_rate: float = Field(
        20.0, gt=0, description="Requests a second one API key may make to a worker, sustained."
    )
    key_burst: int = Field(
        40, ge=1, description="Requests one API key may make at once before key_rate applies."
    )
    max_streams_per_address: int = Field(
        4, ge=1, description="Open /stream connections without a key one client address holds."
    )
    anonymous_stream_share: float = Field(
        0.75,
        gt=0,
        le=1,
        description="The share of max_streams that streams without a key may take: the rest "
        "is kept for keys (with EXCHANGE_AUTH=off everyone may take every stream).",
    )
    stream_heartbeat_ms: int = Field(
        2_000,
        ge=10,
        description="A stream with nothing to send writes a comment this often: a write to a "
        "client that went away fails, and its stream gives its slot back.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request's headers must arrive within this of the connection opening "
        "(or of the previous answer on a kept-alive connection); an idle connection is "
        "closed then too.",
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request's body must arrive within this of its headers: 408 otherwise.",
    )
    auth_failure_rate: float = Field(
        1.0,
        gt=0,
        description="Failed authentications (bad, unknown or revoked keys) a second one client "
        "address may make, sustained; beyond them it is answered 429.",
    )
    auth_failure_burst: int = Field(
        20,
        ge=1,
        description="Failed authentications one client address may make at once before "
        "auth_failure_rate applies.",
    )
    live_feed_interval_ms: int = Field(
        100,
        ge=0,
        description="Under a steady flow the live feed reads the output topics once per this "
        "interval (after a quiet spell, up to 10 reads at once). A reader that fetches as "
        "fast as records come costs the broker one fetch per output batch.",
    )
    archive_url: str | None = Field(
        None,
        description="Where exchange archive writes Parquet: a path, s3://bucket/prefix or "
        "hdfs://host/path; default <data dir>/archive.",
    )
    archive_flush_records: int = Field(
        10_000, ge=1, description="Records of one source partition the archive writes at once."
    )
    archive_flush_seconds: float = Field(
        30.0,
        gt=0,
        description="The longest a record waits before the archive writes it (each write is "
        "a file per directory: shorter means more small files to compact).",
    )
    archive_commit_pause_ms: int = Field(
        0,
        ge=0,
        description="A pause between writing an archive batch and committing it: for crash "
        "tests only, so that a kill lands mid-write.",
    )
    commit_every: int = Field(
        10_000,
        ge=1,
        description="Commit input offsets at least every N messages.",
    )

    @model_validator(mode="after")
    def _kafka_credentials(self) -> Settings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                f"EXCHANGE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "EXCHANGE_KAFKA_USERNAME and EXCHANGE_KAFKA_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("EXCHANGE_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        return self

    @field_validator("spread_instruments", "peer_hosts", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("sma_bars", mode="before")
    @classmethod
    def _split_windows(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("sma_bars")
    @classmethod
    def _positive_windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(n < 1 for n in value):
            raise ValueError(f"SMA windows must be positive bar counts, got {value!r}")
        return tuple(dict.fromkeys(value))  # the first window is the one profit uses

    @property
    def fetch_wait_ms(self) -> int | None:
        """The order intake's fetch wait, ``None`` to keep the client's own."""
        return self._embedded_default(self.fetch_max_wait_ms, 20)

    @property
    def follow_wait_ms(self) -> int | None:
        """The fetch wait of readers off the order-to-trade path, ``None``: the client's."""
        return self._embedded_default(self.follow_fetch_wait_ms, 100)

    def _embedded_default(self, value: int | None, embedded: int) -> int | None:
        """``value`` if set, else ``embedded`` on the embedded broker (None: the client's)."""
        if value is not None:
            return value
        return embedded if self.embedded_broker else None

    @property
    def archive(self) -> str:
        """The archive's URL or path (``archive/``)."""
        return self.archive_url or str(self.data_dir / "archive")

    @property
    def keys_topic(self) -> str:
        """Compacted topic of API key records (``keystore.py``)."""
        return f"{self.app_id}-api-keys"

    @property
    def listings_topic(self) -> str:
        """Compacted topic of the instruments' listings (``listings.py``)."""
        return f"{self.app_id}-listings"

    @property
    def trade_batches_topic(self) -> str:
        """Internal topic of the trades of a matching batch, one message per batch."""
        return f"{self.app_id}-trades-batched"

    @property
    def routed_topic(self) -> str:
        """Internal topic of orders re-partitioned by instrument."""
        return f"{self.app_id}-orders-routed"

    @property
    def fills_topic(self) -> str:
        """Internal topic of trade fills re-partitioned by account."""
        return f"{self.app_id}-fills"

    @property
    def topic_names(self) -> list[str]:
        """Every topic the worker reads or writes (besides Faust's changelogs)."""
        return [
            self.orders_topic,
            self.routed_topic,
            self.trade_batches_topic,
            self.fills_topic,
            self.trades_topic,
            self.events_topic,
            self.sma_topic,
            self.profit_topic,
            self.pnl_topic,
            self.dlq_topic,
        ]

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` list for plain Kafka clients, from :attr:`broker`."""
        servers = []
        for url in self.broker.replace(",", ";").split(";"):
            url = url.strip()
            servers.append(url.split("://", 1)[-1].rstrip("/"))
        return [s for s in servers if s]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
