"""The Parquet archive: typed rows, Hive layout, and a crash at any step of a commit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from aiokafka.structs import ConsumerRecord

from exchange_app.archive import (
    DATASETS,
    Archive,
    Resume,
    open_archive,
    query,
    records,
    to_row,
)
from exchange_app.wire import dumps

TRADES = next(d for d in DATASETS if d.name == "trades")
SMA = next(d for d in DATASETS if d.name == "sma")
EVENTS = next(d for d in DATASETS if d.name == "events")


def message(offset: int, value: dict[str, Any], partition: int = 0) -> ConsumerRecord:
    return ConsumerRecord(
        "t", partition, offset, 1_678_600_000_000 + offset, 0, None, dumps(value), None, 0, 0, []
    )


def trade(seq: int, instrument: str = "TCS", day: int = 12) -> dict[str, Any]:
    return {
        "id": 10 + seq, "id_sell": 20 + seq, "instrument": instrument,
        "quantity": Decimal("5.0"), "price": Decimal("15.12345678"),
        "update_timestamp": f"2023/03/{day}, 10:00:00", "trade_id": f"{instrument}-{seq}",
        "seq": seq, "buy_order_id": 10 + seq, "sell_order_id": 20 + seq, "buyer": "alice",
        "seller": None, "aggressor": "BUY", "timestamp": f"2023-03-{day}T10:00:00+00:00",
    }  # fmt: skip


def rows(values: list[dict[str, Any]], dataset=TRADES, start: int = 0) -> list[dict[str, Any]]:
    return [to_row(dataset, v, message(start + i, v)) for i, v in enumerate(values)]


def test_rows_are_typed_and_amounts_exact() -> None:
    [row] = rows([trade(1)])
    assert row["price"] == Decimal("15.12345678") and row["quantity"] == 5
    assert row["timestamp"] == datetime(2023, 3, 12, 10, tzinfo=UTC)
    assert (row["kafka_partition"], row["kafka_offset"]) == (0, 0)
    vwap = Decimal("11.14285714285714285714285714")
    bar = {"instrument": "TCS", "bar_start": "2023-03-12T10:00:00+00:00", "vwap": vwap,
           "sma": {"2": Decimal("1.5"), "3": None}}  # fmt: skip
    [row] = rows([bar], SMA)
    assert row["vwap"] == Decimal("11.1428571429")  # 10 places, half-even
    assert row["sma"] == [("2", Decimal("1.5")), ("3", None)]


def test_huge_values_are_rounded_exactly_and_what_does_not_fit_is_null(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notional = Decimal("123456789012345678901.123456789")  # 30 digits: more than 28 by default
    bar = {"instrument": "TCS", "bar_start": "2023-03-12T10:00:00+00:00", "notional": notional,
           "volume": Decimal("1e21")}  # fmt: skip
    [row] = rows([bar], SMA)
    assert row["notional"] == Decimal("123456789012345678901.1234567890")
    assert row["volume"] is None and "volume is left null" in caplog.text  # over 1e20
    assert row["instrument"] == "TCS" and row["kafka_offset"] == 0


def test_a_batch_lands_in_hive_directories_named_by_its_offsets(tmp_path: Path) -> None:
    archive = open_archive(str(tmp_path))
    batch = rows([trade(1), trade(2, "RIL"), trade(3, day=13)])
    files = archive.write_batch(TRADES, "trades-topic", 0, batch, 0, 2)
    relative = sorted(str(Path(f).relative_to(tmp_path)) for f in files)
    name = "part-trades-topic-p0-00000000000000000000-00000000000000000002.parquet"
    assert relative == [
        f"trades/date=2023-03-12/instrument=RIL/{name}",
        f"trades/date=2023-03-12/instrument=TCS/{name}",
        f"trades/date=2023-03-13/instrument=TCS/{name}",
    ]
    back = records(archive, TRADES)
    assert [r["seq"] for r in back] == [1, 2, 3]
    assert [r["seq"] for r in records(archive, TRADES, date(2023, 3, 13))] == [3]
    assert back[0]["price"] == Decimal("15.12345678") and str(back[0]["quantity"]) == "5"
    assert pq.read_schema(files[0]).field("price").type.scale == 8
    assert pq.read_schema(files[0]).field("price").type.precision == 28
    assert archive.recover() == {("trades", 0): Resume(3, "trades-topic")}


def test_rows_without_a_key_go_to_hives_null_partition(tmp_path: Path) -> None:
    archive = open_archive(str(tmp_path))
    source = {"topic": "o", "partition": 1, "offset": 7}
    report = {"order_id": 1, "instrument": "TCS", "account": None, "status": "REJECTED",
              "reasons": ["bad"], "source": source}  # fmt: skip
    archive.write_batch(EVENTS, "events-topic", 0, rows([report], EVENTS), 0, 0)
    [back] = records(archive, EVENTS)
    assert back["account"] is None and back["source"] == {"topic": "o", "partition": 1, "offset": 7}


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["writing", "committing", "renaming"])
def test_a_crash_at_any_step_leaves_each_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    archive = open_archive(str(tmp_path))
    archive.write_batch(TRADES, "tt", 0, rows([trade(1)]), 0, 0)
    second = rows([trade(2), trade(3, "RIL")], start=1)
    calls = {"n": 0}
    real_write, real_json, real_move = pq.write_table, Archive._write_json, Archive._move

    def write_table(*args: Any, **kwargs: Any) -> None:
        real_write(*args, **kwargs)
        if step == "writing":
            raise Crash  # after the first file: the batch is half written

    def write_json(self: Archive, *args: Any) -> None:
        if step == "committing":
            raise Crash
        real_json(self, *args)

    def move(self: Archive, source: str, target: str) -> None:
        if step == "renaming" and source.endswith(".parquet.tmp"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash  # one file renamed, the other not
        real_move(self, source, target)

    monkeypatch.setattr(pq, "write_table", write_table)
    monkeypatch.setattr(Archive, "_write_json", write_json)
    monkeypatch.setattr(Archive, "_move", move)
    with pytest.raises(Crash):
        archive.write_batch(TRADES, "tt", 0, second, 1, 2)
    assert list(tmp_path.rglob(".*.tmp"))  # the kill left a partial batch
    monkeypatch.undo()

    restarted = open_archive(str(tmp_path))
    resume = restarted.recover()
    assert not list(tmp_path.rglob("*.tmp"))
    assert len(list((tmp_path / "_commits").rglob("*.json"))) == 1  # the newest only
    seqs = [r["seq"] for r in records(restarted, TRADES)]
    if step == "renaming":  # committed: rolled forward
        assert resume == {("trades", 0): Resume(3, "tt")} and seqs == [1, 2, 3]
    else:  # not committed: dropped, archived again from offset 1
        assert resume == {("trades", 0): Resume(1, "tt")} and seqs == [1]
        restarted.write_batch(TRADES, "tt", 0, second, 1, 2)
        assert [r["seq"] for r in records(restarted, TRADES)] == [1, 2, 3]


def test_compaction_merges_small_files_and_survives_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = open_archive(str(tmp_path))
    for offset in range(5):
        archive.write_batch(
            TRADES, "tt", 0, rows([trade(offset + 1)], start=offset), offset, offset
        )
    before = records(archive, TRADES)
    real_delete = Archive._delete

    def delete(self: Archive, path: str) -> None:
        if path.endswith(".parquet"):
            raise Crash  # the merged file is in place, its inputs are not gone yet
        real_delete(self, path)

    monkeypatch.setattr(Archive, "_delete", delete)
    with pytest.raises(Crash):
        archive.compact(TRADES, smaller_than=1 << 30)
    monkeypatch.undo()
    restarted = open_archive(str(tmp_path))
    restarted.recover_compactions()
    files = list((tmp_path / "trades").rglob("*.parquet"))
    assert [f.name for f in files] == [
        "part-tt-p0-00000000000000000000-00000000000000000004.parquet"
    ]
    assert records(restarted, TRADES) == before
    assert restarted.compact(TRADES, smaller_than=1 << 30) == (0, 0)


def test_compaction_merges_in_offset_order_into_bounded_files(tmp_path: Path) -> None:
    archive = open_archive(str(tmp_path))
    for at in range(6):
        archive.write_batch(TRADES, "tt", 0, rows([trade(at + 1)], start=at), at, at)
    size = next((tmp_path / "trades").rglob("*.parquet")).stat().st_size
    orphan = tmp_path / "trades" / ".compact-0123.tmp"  # a merge killed before its record
    orphan.write_bytes(b"partial")
    assert archive.compact(TRADES, smaller_than=1 << 30, most=3 * size) == (6, 2)
    names = sorted(f.name for f in (tmp_path / "trades").rglob("*.parquet"))
    assert names == [
        "part-tt-p0-00000000000000000000-00000000000000000002.parquet",
        "part-tt-p0-00000000000000000003-00000000000000000005.parquet",
    ]
    assert not orphan.exists()
    assert [r["seq"] for r in records(archive, TRADES)] == [1, 2, 3, 4, 5, 6]


def test_query_sees_every_dataset_as_a_view(tmp_path: Path) -> None:
    archive = open_archive(str(tmp_path))
    archive.write_batch(TRADES, "tt", 0, rows([trade(1), trade(2), trade(3, "RIL")]), 0, 2)
    frame = query(
        archive,
        "SELECT instrument, sum(price * quantity) / sum(quantity) AS vwap, count(*) AS n "
        "FROM trades GROUP BY ALL ORDER BY instrument",
    )
    assert frame.to_dict("records") == [
        {"instrument": "RIL", "vwap": pytest.approx(15.12345678), "n": 1},
        {"instrument": "TCS", "vwap": pytest.approx(15.12345678), "n": 2},
    ]


class FakeConsumer:
    def __init__(self, beginnings: dict[Any, int]) -> None:
        self.beginnings, self.positions = beginnings, {}

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.beginnings[tp] for tp in tps}

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[tp] = offset


async def test_an_archive_of_another_log_is_refused_and_retention_gaps_are_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka.structs import TopicPartition

    from exchange_app.archive import ArchiveMismatch, Archiver
    from exchange_app.settings import Settings

    settings = Settings(trades_topic="tt")
    archiver = Archiver(settings, open_archive(str(tmp_path)), names=["trades"])
    tp0, tp1 = TopicPartition("tt", 0), TopicPartition("tt", 1)
    consumer = FakeConsumer({tp0: 5, tp1: 0})
    resume = {("trades", 0): Resume(3, "tt")}
    await archiver._seek(consumer, [tp0, tp1], resume, {tp0: 9, tp1: 4})  # type: ignore[arg-type]
    assert consumer.positions == {tp0: 5, tp1: 0}
    assert "offsets 3..4 were removed by retention" in caplog.text
    for other in ({("trades", 0): Resume(30, "tt")}, {("trades", 0): Resume(3, "old")}):
        with pytest.raises(ArchiveMismatch, match="another log"):
            await archiver._seek(consumer, [tp0], other, {tp0: 9})  # type: ignore[arg-type]
