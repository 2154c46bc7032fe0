"""Reading the archive back: rows in the topics' record shape, a day's orders, SQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from .schema import DATASETS, Dataset
from .store import Archive

__all__ = ["archived_orders", "query", "records"]


def records(archive: Archive, dataset: Dataset, day: date | None = None) -> list[dict[str, Any]]:
    """Every archived row of ``dataset`` (of ``day`` only, if given) in the topic's record
    shape (maps as dicts, amounts without the trailing zeros of the fixed scale), in
    (partition, offset) order."""
    found = archive.dataset(dataset)
    if found is None:
        return []
    where = None if day is None else ds.field("date") == pa.scalar(day, pa.date32())
    table = found.to_table(filter=where).sort_by(
        [("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    )
    rows = table.to_pylist()
    for row in rows:
        for name, value in row.items():
            if isinstance(value, Decimal):
                row[name] = _plain(value)
            elif name == "sma" and isinstance(value, list):
                row[name] = {k: None if v is None else _plain(v) for k, v in value}
    return rows


def archived_orders(archive: Archive, day: date) -> list[dict[str, Any]]:
    """The orders of ``day`` (by order time) as order JSON objects, in the order each source
    partition had them: what ``exchange replay --archive-date`` sends."""
    orders = next(d for d in DATASETS if d.name == "orders")
    replayed = []
    for row in records(archive, orders, day):
        order = {f.name: row[f.name] for f in orders.columns if row[f.name] is not None}
        if "order_timestamp" in order:  # a CANCEL may have none
            order["order_timestamp"] = order["order_timestamp"].isoformat()
        replayed.append(order)
    return replayed


def _plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros, and never in exponent form (1.5E+3 is 1500)."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def query(archive: Archive, sql: str) -> Any:
    """Run ``sql`` in DuckDB with every archived dataset as a view of its name; the result
    as a pandas DataFrame."""
    import duckdb

    connection = duckdb.connect()
    for dataset in DATASETS:
        found = archive.dataset(dataset)
        if found is not None:
            connection.register(dataset.name, found)
    return connection.sql(sql).df()
