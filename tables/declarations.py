"""The Faust tables of the exchange (RocksDB stores with changelog topics)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from exchange_app.application import app
from exchange_app.codec import CODEC
from exchange_app.wire import loads

__all__ = [
    "bars_table",
    "inputs_table",
    "matching_table",
    "positions_table",
    "profit_table",
    "tape_table",
]


class DecimalJSONTable(faust.Table):
    """A table of JSON values whose numbers stay ``Decimal`` (keys: JSON strings).

    Faust derives a table's codecs from its key and value types: plain ``json``
    for untyped values, which writes ``Decimal`` as strings.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return CODEC if typ is None else super()._serializer_from_type(typ)

    def stored_items(self) -> Iterator[tuple[str, Any]]:
        """Every key and value of the active partitions, as ``items()`` gives them, faster.

        On RocksDB this decodes the raw items with the project's codec: Faust's
        ``items()`` costs several times more per key, which a worker loading a
        million resting orders at start feels.
        """
        raw = getattr(self.data, "_iteritems", None)
        if raw is None or self.key_serializer != "json" or self.value_serializer != CODEC:
            yield from self.items()
            return
        yield from _decoded(raw())

    def local_partition(self, partition: int) -> tuple[int | None, Iterator[tuple[str, Any]]]:
        """What the local store holds for ``partition``, assigned or not: the changelog
        offset it reached, and its items (RocksDB; other stores hold nothing across runs)."""
        store = self.data
        if not isinstance(store, RocksDBStore):
            return None, iter(())
        offset = self.local_offset(partition)
        db = store._db_for_partition(partition)
        return offset, _decoded(store._visible_items(db))

    def stored_value(self, partition: int, key: str) -> Any:
        """The value of ``key`` in ``partition``'s store, whatever event is current.

        (Faust's ``table[key]`` looks only in the current event's partition.)
        """
        store = self.data
        if not isinstance(store, RocksDBStore):
            return store.get(key)
        serializers = self.app.serializers
        raw = store._db_for_partition(partition).get(
            serializers.dumps_key(self.key_type, key, serializer=self.key_serializer)
        )
        return None if raw is None else loads(raw)

    def local_offset(self, partition: int) -> int | None:
        """The changelog offset the local store of ``partition`` reached."""
        store = self.data
        if not isinstance(store, RocksDBStore):
            return None
        return store.persisted_offset(TP(self.changelog_topic.get_topic_name(), partition))


def _decoded(raw: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, Any]]:
    for key, value in raw:
        yield _json_text(key), _json_text(value) if value[:1] == b'"' else loads(value)


def _json_text(data: bytes) -> Any:
    """A JSON string's text without the JSON parser when nothing is escaped (keys, and
    the resting orders' one-string values): a fifth of the parser's cost."""
    return data[1:-1].decode() if b"\\" not in data else loads(data)


def _table(name: str, help: str) -> DecimalJSONTable:
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
inputs_table = _table("inputs", "Per input topic partition: the next offset its agent processes.")
