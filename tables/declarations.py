"""The Faust tables of the exchange (RocksDB stores with changelog topics)."""

from __future__ import annotations

import faust

from exchange_app.application import app
from exchange_app.codec import CODEC

__all__ = ["matching_table"]

_json_values: faust.Schema = faust.Schema(
    key_type=str, key_serializer="json", value_serializer=CODEC
)

#: Resting orders, per-instrument metadata and the matching outbox, see ``matching.py``.
matching_table = app.Table(
    "matching",
    default=None,
    schema=_json_values,
    partitions=app.settings.partitions,
)
