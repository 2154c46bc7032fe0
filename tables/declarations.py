"""The Faust tables of the exchange (RocksDB stores with changelog topics)."""

from __future__ import annotations

from typing import Any

import faust

from exchange_app.application import app
from exchange_app.codec import CODEC

__all__ = ["bars_table", "matching_table", "positions_table", "profit_table", "tape_table"]


class DecimalJSONTable(faust.Table):
    """A table of JSON values whose numbers stay ``Decimal`` (keys: JSON strings).

    Faust derives a table's codecs from its key and value types: plain ``json``
    for untyped values, which writes ``Decimal`` as strings.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return CODEC if typ is None else super()._serializer_from_type(typ)


def _table(name: str, help: str) -> faust.Table:
    table = DecimalJSONTable(
        app, name=name, default=None, key_type=str, partitions=app.settings.partitions, help=help
    )
    app.tables.add(table)
    return table


matching_table = _table("matching", "Resting orders, per-instrument metadata, the matching outbox.")
bars_table = _table("bars", "Per instrument: the open bar and the closed bars the SMAs need.")
profit_table = _table("profit", "Per instrument: the bars of the window-profit computation.")
positions_table = _table("positions", "Per (account, instrument): FIFO lots and realized P&L.")
tape_table = _table("tape", "Per instrument: recent trades, last price, volume, final bars.")
