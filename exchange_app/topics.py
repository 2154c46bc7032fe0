"""The topics of DESIGN section 2, named by the settings."""

from __future__ import annotations

from faust.types import TopicT

from .application import app
from .codec import CODEC

__all__ = [
    "by_stream",
    "dlq",
    "events",
    "fills",
    "orders",
    "pnl",
    "profit",
    "routed",
    "sma",
    "stream_topics",
    "trade_batches",
    "trades",
]

_settings = app.settings


def _output(name: str) -> TopicT:
    return app.topic(
        name,
        key_type=str,
        key_serializer="raw",
        value_serializer=CODEC,
        partitions=_settings.partitions,
    )


#: Raw order messages. ``internal`` makes Faust create the topic with the
#: configured partition count if it is missing.
orders = app.topic(
    _settings.orders_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=_settings.partitions,
    internal=True,
)


def _batches(name: str) -> TopicT:
    """An internal topic whose messages each pack a batch of records (``packing.py``)."""
    return app.topic(
        name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=_settings.partitions,
        internal=True,
    )


#: Orders forwarded to their instrument's partition, packed per batch.
routed = _batches(_settings.routed_topic)
#: The trades of each matching batch and partition, packed, for the analytics.
trade_batches = _batches(_settings.trade_batches_topic)
trades = _output(_settings.trades_topic)
events = _output(_settings.events_topic)
sma = _output(_settings.sma_topic)
profit = _output(_settings.profit_topic)
pnl = _output(_settings.pnl_topic)
#: Trade fills re-partitioned by account for the P&L agent, a batch per message.
fills = _batches(_settings.fills_topic)
dlq = app.topic(
    _settings.dlq_topic,
    key_serializer="raw",
    value_serializer=CODEC,
    partitions=_settings.partitions,
)

#: Output streams of the state adapters, by name.
by_stream: dict[str, TopicT] = {
    "trades": trades,
    "events": events,
    "sma": sma,
    "profit": profit,
    "pnl": pnl,
    "routed": routed,
    "trade_batches": trade_batches,
    "fills": fills,
    "dlq": dlq,
}


def stream_topics() -> dict[str, str]:
    """Topic names of the output streams."""
    return {name: topic.get_topic_name() for name, topic in by_stream.items()}
