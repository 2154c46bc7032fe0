"""The original design's serving-zone CSV files, rebuilt from the topics.

``exchange export --out DIR`` reads ``successful_trade``, ``sma`` and
``profit`` from the earliest offset to their current end and writes:

* ``successful_orders.csv`` — ``id,id_sell,instrument,quantity,price,update_timestamp``
  (one row per trade, re-sent copies dropped);
* ``sma_calc.csv`` — ``instrument,update_timestamp,quantity,price,closing_price,sma``;
* ``profit_calc.csv`` — ``instrument,update_timestamp,price,price_qty_product,quantity,``
  ``closing_price,opening_price,profit``.

One row per bar; ``update_timestamp`` is the bar's start; in ``sma_calc.csv``
``quantity``/``price`` are the bar's sums of quantities and of prices and
``closing_price`` its VWAP; in ``profit_calc.csv`` ``price`` is the bar's
first trade price and ``closing_price`` the SMA.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from .broker.offsets import true_end_offsets
from .connection import client_options
from .settings import Settings
from .wire import SEED_TIME_FORMAT, loads, parse_time

__all__ = [
    "PROFIT_COLUMNS",
    "SMA_COLUMNS",
    "TRADE_COLUMNS",
    "build_frames",
    "export",
    "read_messages",
    "read_topic",
]

log = logging.getLogger(__name__)

TRADE_COLUMNS = ["id", "id_sell", "instrument", "quantity", "price", "update_timestamp"]
SMA_COLUMNS = ["instrument", "update_timestamp", "quantity", "price", "closing_price", "sma"]
PROFIT_COLUMNS = [
    "instrument",
    "update_timestamp",
    "price",
    "price_qty_product",
    "quantity",
    "closing_price",
    "opening_price",
    "profit",
]


async def read_messages(
    bootstrap: list[str], topic: str, timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` with a value, from the earliest offset to its end now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options()
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
        found: list[ConsumerRecord] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=int(timeout * 1000))
            if not batch:
                raise TimeoutError(f"{topic}: no records within {timeout} s, {len(pending)} left")
            for tp, messages in batch.items():
                found += [m for m in messages if m.offset < ends[tp] and m.value]
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        log.info("read %s records of %s", len(found), topic)
        return found
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: list[str], topic: str, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Every JSON record of ``topic`` from the earliest offset to its end now."""
    return [loads(m.value) for m in await read_messages(bootstrap, topic, timeout)]


def _seed_time(iso: str) -> str:
    return parse_time(iso).strftime(SEED_TIME_FORMAT)


def _last_per_bar(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The latest record of each (instrument, bar): the final one, or the open bar's last."""
    frame = pd.DataFrame(records)
    frame = frame.sort_values(["instrument", "bar_start", "last_seq", "final"], kind="stable")
    return frame.drop_duplicates(["instrument", "bar_start"], keep="last").reset_index(drop=True)


def build_frames(
    trades: list[dict[str, Any]],
    sma: list[dict[str, Any]],
    profit: list[dict[str, Any]],
    window: int,
) -> dict[str, pd.DataFrame]:
    """The three files' tables from the topics' records."""
    frames: dict[str, pd.DataFrame] = {}
    trade_frame = pd.DataFrame(trades, columns=[*TRADE_COLUMNS, "trade_id", "seq", "timestamp"])
    trade_frame = trade_frame.drop_duplicates("trade_id").sort_values(
        ["timestamp", "instrument", "seq"], kind="stable"
    )
    frames["successful_orders.csv"] = trade_frame[TRADE_COLUMNS]

    if not sma:
        frames["sma_calc.csv"] = pd.DataFrame(columns=SMA_COLUMNS)
        frames["profit_calc.csv"] = pd.DataFrame(columns=PROFIT_COLUMNS)
        return frames
    bars = _last_per_bar(sma)
    bars["update_timestamp"] = bars["bar_start"].map(_seed_time)
    bars["sma_value"] = bars["sma"].map(lambda smas: smas[str(window)])
    frames["sma_calc.csv"] = (
        bars.rename(columns={"volume": "quantity", "price_sum": "price", "vwap": "closing_price"})
        .drop(columns=["sma"])
        .rename(columns={"sma_value": "sma"})[SMA_COLUMNS]
    )

    profits = (
        _last_per_bar(profit)
        if profit
        else pd.DataFrame(
            columns=["instrument", "bar_start", "opening_price", "closing_price", "profit"]
        )
    )
    joined = bars.merge(
        profits[["instrument", "bar_start", "opening_price", "closing_price", "profit"]],
        on=["instrument", "bar_start"],
        how="inner",
    )
    frames["profit_calc.csv"] = joined.rename(
        columns={"open": "price", "notional": "price_qty_product", "volume": "quantity"}
    )[PROFIT_COLUMNS]
    return frames


async def export(settings: Settings, out: Path | str) -> dict[str, int]:
    """Write the three CSV files into ``out``; return the rows written per file."""
    bootstrap = settings.bootstrap_servers
    trades, sma, profit = [
        await read_topic(bootstrap, name)
        for name in (settings.trades_topic, settings.sma_topic, settings.profit_topic)
    ]
    return _write(build_frames(trades, sma, profit, settings.sma_bars[0]), out)


def export_archive(
    settings: Settings, out: Path | str, day: date | None = None, root: str | None = None
) -> dict[str, int]:
    """The same files from the Parquet archive at ``root`` (default: the settings') instead
    of the topics: the whole archive, or ``day``'s partitions only (trades by time, bars by
    their start)."""
    from .archive import datasets, open_archive, records

    archive = open_archive(root or settings.archive)
    named = {d.name: d for d in datasets()}
    trades, sma, profit = (records(archive, named[n], day) for n in ("trades", "sma", "profit"))
    return _write(build_frames(trades, sma, profit, settings.sma_bars[0]), out)


def _write(frames: dict[str, pd.DataFrame], out: Path | str) -> dict[str, int]:
    """Write ``frames`` as CSV files into ``out``: a directory, or a URL pyarrow knows
    (``s3://…``, ``hdfs://…``), e.g. beside the archive."""
    import pyarrow.fs as pafs

    if "://" in str(out):
        filesystem, root = pafs.FileSystem.from_uri(str(out))
    else:
        filesystem, root = pafs.LocalFileSystem(), str(Path(out).absolute())
    filesystem.create_dir(root, recursive=True)
    rows = {}
    for name, frame in frames.items():
        with filesystem.open_output_stream(f"{root}/{name}") as stream:
            stream.write(frame.to_csv(index=False).encode())
        rows[name] = len(frame)
    return rows
