"""The Faust tables of the exchange (RocksDB stores with changelog topics)."""

from __future__ import annotations

import faust

from exchange_app.application import app
from exchange_app.codec import CODEC

__all__ = ["bars_table", "matching_table", "positions_table", "profit_table"]

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

#: Per instrument: the open bar and the closed bars the SMA windows need.
bars_table = app.Table(
    "bars", default=None, schema=_json_values, partitions=app.settings.partitions
)

#: Per instrument: the bars of the window-profit computation.
profit_table = app.Table(
    "profit", default=None, schema=_json_values, partitions=app.settings.partitions
)

#: Per (account, instrument): FIFO lots and realized P&L.
positions_table = app.Table(
    "positions", default=None, schema=_json_values, partitions=app.settings.partitions
)
