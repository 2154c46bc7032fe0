"""The topics of DESIGN section 2, named by the settings."""

from __future__ import annotations

from faust.types import TopicT

from .application import app
from .codec import CODEC

__all__ = ["by_stream", "dlq", "events", "orders", "routed", "trades"]

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
#: Orders re-partitioned by instrument, with their source partition and offset.
routed = app.topic(
    _settings.routed_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=_settings.partitions,
    internal=True,
)
trades = _output(_settings.trades_topic)
events = _output(_settings.events_topic)
dlq = app.topic(
    _settings.dlq_topic,
    key_serializer="raw",
    value_serializer=CODEC,
    partitions=_settings.partitions,
)

#: Output streams of the state adapters, by name.
by_stream: dict[str, TopicT] = {"trades": trades, "events": events}
