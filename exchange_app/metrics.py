"""Prometheus metrics of a worker: orders in, trades out, rejections, lag, latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics", "metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: ``(topic, partition) -> (high watermark, last processed offset)``
LagSource = Callable[[], dict[tuple[str, int], tuple[int | None, int]]]


class _LagCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "exchange_consumer_lag",
            "Messages not yet processed: high watermark - (last processed offset + 1).",
            labels=["topic", "partition"],
        )
        source = self.metrics.lag_source
        if source is not None:
            for (topic, partition), (highwater, offset) in sorted(source().items()):
                if highwater is not None:
                    gauge.add_metric([topic, str(partition)], max(0, highwater - offset - 1))
        yield gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter(
            "exchange_orders",
            "Order messages taken in, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.trades = Counter("exchange_trades", "Trades produced.", registry=self.registry)
        self.rejections = Counter(
            "exchange_rejections", "Orders rejected with a reason.", registry=self.registry
        )
        self.dlq = Counter("exchange_dlq", "Messages sent to the DLQ.", registry=self.registry)
        self.replayed_inputs = Counter(
            "exchange_replayed_inputs",
            "Internal input messages read again below their partition's stored position.",
            registry=self.registry,
        )
        self.batches = Histogram(
            "exchange_batch_seconds",
            "Time to process one batch of input messages and make its effects durable.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.latency = Histogram(
            "exchange_order_latency_seconds",
            "From an input message's Kafka timestamp to its batch's effects being durable.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.processed: dict[tuple[str, int], int] = {}
        #: orders partition -> its high watermark, as the intake last saw it
        self.orders_highwater: dict[int, int | None] = {}
        self.lag_source: LagSource | None = None
        self.registry.register(_LagCollector(self))

    def observe(self, topic: str, partition: int, offset: int, stamped: float | None) -> None:
        """Record one processed input message (``stamped``: its Kafka timestamp, seconds)."""
        if stamped:
            self.latency.observe(max(0.0, time.time() - stamped))
        self.processed[(topic, partition)] = offset

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def outputs(self, outputs: list[Any]) -> None:
        for output in outputs:
            if output.stream == "trades":
                self.trades.inc()
            elif output.value.get("status") == "REJECTED":
                self.rejections.inc()


metrics = Metrics()
