"""What the archive holds: one dataset per public topic, its typed columns and its rows.

Prices and quantities are ``decimal128(28, 8)`` (exact: orders have at most 8
decimals); figures computed from them (VWAP, SMA, notional, average cost, P&L)
``decimal128(38, 10)``, rounded half-even. A value a column cannot hold is
logged and left null: its row is still archived, once.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa
from aiokafka.structs import ConsumerRecord

from ..engine import InvalidOrder
from ..settings import Settings
from ..wire import decode_order, encode_order, loads, parse_time

__all__ = [
    "AMOUNT",
    "COMPUTED",
    "DATASETS",
    "KAFKA_FIELDS",
    "NULL_PARTITION",
    "TS",
    "Dataset",
    "datasets",
    "place",
    "to_row",
]

log = logging.getLogger(__name__)

#: Prices and quantities, and sums of them (at most 8 decimals, ``wire.py``; up to 1e20):
#: exact, and SQL can still multiply two of them (DuckDB: DECIMAL(38,16)).
AMOUNT = pa.decimal128(28, 8)
#: Figures computed from them (VWAP, SMA, notional, average cost, P&L), up to 1e28:
#: rounded half-even to 10 places.
COMPUTED = pa.decimal128(38, 10)
#: Enough digits to round any JSON decimal the exchange writes without losing its integer part.
_CONTEXT = decimal.Context(prec=80)
TS = pa.timestamp("us", tz="UTC")
#: Hive's name for a partition value that is null (pyarrow and DuckDB read it as null).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
KAFKA_FIELDS = [
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp", TS),
]
_SOURCE = pa.struct(
    [
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
    ]
)


@dataclass(frozen=True)
class Dataset:
    """One archived topic: its directory, the Hive column after ``date`` and its columns."""

    name: str
    setting: str  # the Settings field naming the topic
    key: str | None  # "instrument", "account" or None (date only)
    when: str | None  # the field dating a record; None: its Kafka timestamp
    columns: pa.Schema
    decode: Callable[[bytes], dict[str, Any] | None] = loads

    def topic(self, settings: Settings) -> str:
        return str(getattr(settings, self.setting))

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([*self.columns, *KAFKA_FIELDS])


def _order(raw: bytes) -> dict[str, Any] | None:
    """A valid order or cancel as the exchange understood it; None for what went to the DLQ."""
    try:
        command = encode_order(decode_order(raw))
    except InvalidOrder:
        return None
    command.setdefault("action", "NEW")
    return command


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in fields])


DATASETS = (
    Dataset(
        "orders",
        "orders_topic",
        "instrument",
        "order_timestamp",
        _schema(
            ("id", pa.int64()),
            ("action", pa.string()),
            ("instrument", pa.string()),
            ("trxn_type", pa.string()),
            ("quantity", AMOUNT),
            ("price", AMOUNT),
            ("order_timestamp", TS),
            ("account", pa.string()),
            ("order_type", pa.string()),
            ("time_in_force", pa.string()),
        ),
        _order,
    ),
    Dataset(
        "trades",
        "trades_topic",
        "instrument",
        "timestamp",
        _schema(
            ("id", pa.int64()),
            ("id_sell", pa.int64()),
            ("instrument", pa.string()),
            ("quantity", AMOUNT),
            ("price", AMOUNT),
            ("update_timestamp", pa.string()),
            ("trade_id", pa.string()),
            ("seq", pa.int64()),
            ("buy_order_id", pa.int64()),
            ("sell_order_id", pa.int64()),
            ("buyer", pa.string()),
            ("seller", pa.string()),
            ("aggressor", pa.string()),
            ("timestamp", TS),
        ),
    ),
    Dataset(
        "events",
        "events_topic",
        "account",
        "timestamp",
        _schema(
            ("order_id", pa.int64()),
            ("instrument", pa.string()),
            ("account", pa.string()),
            ("side", pa.string()),
            ("status", pa.string()),
            ("filled_quantity", AMOUNT),
            ("leaves_quantity", AMOUNT),
            ("cancelled_quantity", AMOUNT),
            ("trade_ids", pa.list_(pa.string())),
            ("reasons", pa.list_(pa.string())),
            ("source", _SOURCE),
            ("timestamp", TS),
        ),
    ),
    Dataset(
        "sma",
        "sma_topic",
        "instrument",
        "bar_start",
        _schema(
            ("instrument", pa.string()),
            ("bar_start", TS),
            ("bar_end", TS),
            ("open", AMOUNT),
            ("high", AMOUNT),
            ("low", AMOUNT),
            ("close", AMOUNT),
            ("volume", AMOUNT),
            ("vwap", COMPUTED),
            ("notional", COMPUTED),
            ("price_sum", AMOUNT),
            ("trade_count", pa.int64()),
            ("sma", pa.map_(pa.string(), COMPUTED)),
            ("final", pa.bool_()),
            ("last_seq", pa.int64()),
        ),
    ),
    Dataset(
        "profit",
        "profit_topic",
        "instrument",
        "bar_start",
        _schema(
            ("instrument", pa.string()),
            ("bar_start", TS),
            ("window", pa.int32()),
            ("opening_price", COMPUTED),
            ("closing_price", COMPUTED),
            ("profit", COMPUTED),
            ("final", pa.bool_()),
            ("last_seq", pa.int64()),
        ),
    ),
    Dataset(
        "pnl",
        "pnl_topic",
        "account",
        None,
        _schema(
            ("account", pa.string()),
            ("instrument", pa.string()),
            ("position", AMOUNT),
            ("average_cost", COMPUTED),
            ("cost_basis", COMPUTED),
            ("realized", COMPUTED),
            ("unrealized", COMPUTED),
            ("total", COMPUTED),
            ("mark_price", AMOUNT),
            ("trade_id", pa.string()),
            ("seq", pa.int64()),
        ),
    ),
    Dataset(
        "dlq",
        "dlq_topic",
        None,
        None,
        _schema(
            ("reason", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("source", _SOURCE),
            ("key", pa.string()),
            ("value", pa.string()),
            ("truncated", pa.bool_()),
            ("size", pa.int64()),
        ),
    ),
)


def datasets(names: Iterable[str] | None = None) -> list[Dataset]:
    wanted = set(names) if names is not None else None
    return [d for d in DATASETS if wanted is None or d.name in wanted]


def _value(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_decimal(kind):
        exact = _CONTEXT.create_decimal(value)
        rounded = exact.quantize(Decimal(1).scaleb(-kind.scale), ROUND_HALF_EVEN, _CONTEXT)
        if rounded and rounded.adjusted() >= kind.precision - kind.scale:
            raise ValueError(f"{value} does not fit {kind}")
        return rounded
    if pa.types.is_timestamp(kind):
        return parse_time(value)
    if pa.types.is_map(kind):
        return [(str(k), _value(v, kind.item_type)) for k, v in value.items()]
    if pa.types.is_list(kind):
        return [_value(v, kind.value_type) for v in value]
    if pa.types.is_struct(kind):
        return {f.name: _value(value.get(f.name), f.type) for f in kind}
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else str(value)
    return value


def to_row(dataset: Dataset, record: dict[str, Any], message: ConsumerRecord) -> dict[str, Any]:
    """The typed row of one topic record. A value its column cannot hold is logged and left
    null: the row is still archived, once, with its position."""
    row = {}
    for column in dataset.columns:
        try:
            row[column.name] = _value(record.get(column.name), column.type)
        except (ValueError, TypeError, ArithmeticError) as exc:
            log.error(
                "archive: %s@%s/%s: %s is left null: %r",
                dataset.name,
                message.partition,
                message.offset,
                column.name,
                exc,
            )
            row[column.name] = None
    row["kafka_partition"] = message.partition
    row["kafka_offset"] = message.offset
    row["kafka_timestamp"] = datetime.fromtimestamp(message.timestamp / 1000, UTC)
    return row


def place(dataset: Dataset, row: dict[str, Any]) -> tuple[str, ...]:
    """The Hive directories of a row: ``date=…`` and, if the dataset has one, its key."""
    moment = row[dataset.when] if dataset.when else None
    moment = moment or row["kafka_timestamp"]
    parts = [f"date={moment.date().isoformat()}"]
    if dataset.key:
        parts.append(f"{dataset.key}={row.get(dataset.key) or NULL_PARTITION}")
    return tuple(parts)
