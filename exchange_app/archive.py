"""The archive: every public topic as Hive-partitioned Parquet, each record exactly once.

::

    <root>/trades/date=2023-03-12/instrument=TCS/part-successful_trade-p0-00000000000000000000-00000000000000000999.parquet
    <root>/events/date=2023-03-12/account=alice/part-order_events-p2-….parquet
    <root>/_commits/trades/p0/00000000000000000999.json   source partition 0's last commit

``exchange archive`` follows the orders, trades, execution reports, sma,
profit, pnl and DLQ topics and writes, per source partition, a batch of
records (:data:`~Settings.archive_flush_records` or
:data:`~Settings.archive_flush_seconds`, whichever comes first) as one file
per date and instrument (account for reports and P&L, date alone for the
DLQ). Columns are typed: prices and quantities are ``decimal128(28, 8)``
(exact: orders have at most 8 decimals), figures computed from them (VWAP,
SMA, notional, average cost, P&L) ``decimal128(38, 10)``, rounded half-even;
a value a column cannot hold is logged and left null; times are
UTC timestamps; each row also carries its ``kafka_partition``,
``kafka_offset`` and ``kafka_timestamp``.

**Exactly once, by construction.** A batch is committed in three steps:

1. every file is written under a hidden temporary name (``.part-….tmp``,
   which neither pyarrow nor DuckDB reads);
2. a new commit record ``_commits/<dataset>/p<N>/<last offset>.json`` (the
   topic, the offsets and the files) is moved into place: this is the commit
   point (a new name each time: no file is ever written over);
3. the temporary files are renamed to their final names, and older commit
   records of the partition are deleted.

The commit records are also the input offsets: the archiver resumes each
partition after its newest commit, and commits nothing to Kafka. After a
crash it finishes step 3 of the newest commit (renames what is left) and
deletes every temporary file that no commit names, so a kill at any moment
leaves no partial file and no record twice. Files are named after their
topic, source partition and offset range. An archive whose commits are past
a topic's end, or of another topic, is refused (:class:`ArchiveMismatch`):
the topics are another log. Offsets that retention removed before they were
archived are logged and skipped. One archiver per archive root.

**Compaction** (``exchange archive --compact``, daily from the Airflow DAG)
merges the files of one directory and source partition into one, through a
compaction record (``_compactions/<id>.json``) that a crash rolls forward.
A reader that lists the directory in the instant between the merged file's
rename and the removal of its inputs sees those rows twice; de-duplicate on
``(kafka_partition, kafka_offset)`` when reading during a compaction.

The root is ``EXCHANGE_ARCHIVE_URL``: a local path (default
``<data dir>/archive``), ``s3://bucket/prefix`` or ``hdfs://host/path``, through
pyarrow's filesystems.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from .broker.offsets import true_end_offsets
from .connection import client_options
from .engine import InvalidOrder
from .settings import Settings
from .wire import decode_order, encode_order, loads, parse_time

__all__ = [
    "DATASETS",
    "Archive",
    "ArchiveMismatch",
    "Archiver",
    "Dataset",
    "archived_orders",
    "compact",
    "datasets",
    "open_archive",
    "query",
    "records",
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


class Resume(NamedTuple):
    """Where a source partition's archiving goes on: its next offset, and the topic it is
    of (an archive made from another topic is not resumed)."""

    offset: int
    topic: str


class ArchiveMismatch(Exception):
    """The archive was made from another log than the one the topics hold now."""


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


# -- rows ----------------------------------------------------------------------------------


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


def _place(dataset: Dataset, row: dict[str, Any]) -> tuple[str, ...]:
    """The Hive directories of a row: ``date=…`` and, if the dataset has one, its key."""
    moment = row[dataset.when] if dataset.when else None
    moment = moment or row["kafka_timestamp"]
    parts = [f"date={moment.date().isoformat()}"]
    if dataset.key:
        parts.append(f"{dataset.key}={row.get(dataset.key) or NULL_PARTITION}")
    return tuple(parts)


# -- the archive on its filesystem ---------------------------------------------------------


class Archive:
    """The archive root on a pyarrow filesystem, and its commit protocol."""

    def __init__(self, filesystem: pafs.FileSystem, root: str) -> None:
        self.fs = filesystem
        self.root = root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _files(self, *under: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path(*under), recursive=True, allow_not_found=True)
        return [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]

    def _read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open_input_stream(path) as stream:
            return json.loads(stream.read())  # type: ignore[no-any-return]

    def _write_json(self, path: str, data: dict[str, Any]) -> None:
        """Replace ``path`` at once: written beside it, then moved over it."""
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(temporary) as stream:
            stream.write(json.dumps(data).encode())
        self._move(temporary, path)

    def _move(self, source: str, target: str) -> None:
        self.fs.move(source, target)

    def _delete(self, path: str) -> None:
        self.fs.delete_file(path)

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    # -- archiving ------------------------------------------------------------------------

    def commit_path(self, dataset: Dataset, partition: int, last: int) -> str:
        """A commit record's path: a new file per commit, never one written over (a move
        onto an existing file is delete-then-rename on HDFS)."""
        return self.path("_commits", dataset.name, f"p{partition}", f"{last:020d}.json")

    def recover(self) -> dict[tuple[str, int], Resume]:
        """Finish the last commit of every partition, drop uncommitted files and older
        commit records; return where to resume per (dataset, source partition)."""
        records: dict[str, list[str]] = defaultdict(list)
        for info in self._files("_commits"):
            if info.path.endswith(".tmp"):  # a commit record never moved into place
                self._delete(info.path)
            else:
                records[info.path.rsplit("/", 1)[0]].append(info.path)
        committed: set[str] = set()
        resume: dict[tuple[str, int], Resume] = {}
        for paths in records.values():
            newest, *older = sorted(paths, reverse=True)
            commit = self._read_json(newest)
            key = (commit["dataset"], int(commit["partition"]))
            resume[key] = Resume(int(commit["last"]) + 1, commit["topic"])
            for final in commit["files"]:
                temporary = _temporary(final)
                committed.add(temporary)
                if self._exists(temporary):
                    self._move(temporary, final)  # step 3, cut short by a crash
            for path in older:  # their files were renamed before the newest was written
                self._delete(path)
        dropped = 0
        for dataset in DATASETS:
            for info in self._files(dataset.name):
                if info.base_name.startswith(".part-") and info.path not in committed:
                    self._delete(info.path)
                    dropped += 1
        if dropped:
            log.info("archive: removed %s files of batches a crash left uncommitted", dropped)
        return resume

    def write_batch(
        self,
        dataset: Dataset,
        topic: str,
        partition: int,
        rows: list[dict[str, Any]],
        first: int,
        last: int,
        pause: float = 0.0,
    ) -> list[str]:
        """Commit the rows of offsets ``first..last`` of one source partition; the files."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[_place(dataset, row)].append(row)
        name = f"part-{topic}-p{partition}-{first:020d}-{last:020d}.parquet"
        finals = []
        for place, group in sorted(groups.items()):
            directory = self.path(dataset.name, *place)
            self.fs.create_dir(directory, recursive=True)
            final = f"{directory}/{name}"
            table = pa.Table.from_pylist(group, schema=dataset.schema)
            pq.write_table(table, _temporary(final), filesystem=self.fs)
            finals.append(final)
        if pause:
            time.sleep(pause)  # crash tests: kills land between writing and committing
        commit = {
            "dataset": dataset.name,
            "topic": topic,
            "partition": partition,
            "first": first,
            "last": last,
            "files": finals,
        }
        path = self.commit_path(dataset, partition, last)
        self._write_json(path, commit)  # the commit point
        for final in finals:
            self._move(_temporary(final), final)
        for info in self._files("_commits", dataset.name, f"p{partition}"):
            if info.path != path and not info.path.endswith(".tmp"):
                self._delete(info.path)  # older commits: everything they name is in place
        return finals

    # -- reading -----------------------------------------------------------------------------

    def dataset(self, dataset: Dataset) -> ds.Dataset | None:
        """The committed files of ``dataset`` as a pyarrow dataset (None: nothing yet)."""
        if not self._files(dataset.name):
            return None
        fields = [pa.field("date", pa.date32())]
        if dataset.key:
            fields.append(pa.field(dataset.key, pa.string()))
        partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
        columns = [f for f in dataset.schema if f.name != dataset.key]
        return ds.dataset(
            self.path(dataset.name),
            schema=pa.schema([*columns, *fields]),
            format="parquet",
            filesystem=self.fs,
            partitioning=partitioning,
            exclude_invalid_files=False,
        )

    # -- compaction --------------------------------------------------------------------------

    def recover_compactions(self) -> None:
        """Roll forward every compaction a crash cut short, and delete the merged files
        no compaction record names (a crash before the record). Compactions of one archive
        run one at a time (the DAG runs one)."""
        named = set()
        for info in self._files("_compactions"):
            if info.path.endswith(".tmp"):
                self._delete(info.path)
                continue
            record = self._read_json(info.path)
            if not self._exists(record["output"]):
                if not self._exists(record["temporary"]):
                    self._delete(info.path)  # nothing was replaced
                    continue
                self._move(record["temporary"], record["output"])
            for path in record["inputs"]:
                if self._exists(path):
                    self._delete(path)
            self._delete(info.path)
            named.add(record["temporary"])
        for dataset in DATASETS:
            for info in self._files(dataset.name):
                if info.base_name.startswith(".compact-") and info.path not in named:
                    self._delete(info.path)

    def compact(
        self, dataset: Dataset, smaller_than: int, most: int = 256 * 1024 * 1024
    ) -> tuple[int, int]:
        """Merge the files of each directory and source partition under ``smaller_than``
        bytes, in offset order, into files of about ``most`` bytes at most (a merge reads
        its inputs into memory); (files merged, files written)."""
        self.recover_compactions()
        by_place: dict[tuple[str, str, int], list[pafs.FileInfo]] = defaultdict(list)
        for info in self._files(dataset.name):
            parsed = _parse_name(info.base_name)
            if parsed is not None and info.size < smaller_than:
                topic, partition, _, _ = parsed
                by_place[(info.path.rsplit("/", 1)[0], topic, partition)].append(info)
        merged = written = 0
        for (directory, topic, partition), infos in sorted(by_place.items()):
            in_order = sorted(infos, key=lambda i: _parse_name(i.base_name) or ("", 0, 0, 0))
            for group in _runs(in_order, most):
                self._merge(directory, topic, partition, group)
                merged += len(group)
                written += 1
        return merged, written

    def _merge(self, directory: str, topic: str, partition: int, group: list[Any]) -> None:
        ranges = [r for r in (_parse_name(i.base_name) for i in group) if r]
        first, last = min(r[2] for r in ranges), max(r[3] for r in ranges)
        output = f"{directory}/part-{topic}-p{partition}-{first:020d}-{last:020d}.parquet"
        temporary = f"{directory}/.compact-{uuid.uuid4().hex}.tmp"
        inputs = [i.path for i in group]
        table = pa.concat_tables(pq.read_table(p, filesystem=self.fs) for p in inputs)
        pq.write_table(table.sort_by("kafka_offset"), temporary, filesystem=self.fs)
        record = {"inputs": inputs, "output": output, "temporary": temporary}
        self._write_json(self.path("_compactions", f"{uuid.uuid4().hex}.json"), record)
        self.recover_compactions()  # the same steps a restart would take


def _runs(infos: list[Any], most: int) -> list[list[Any]]:
    """Consecutive groups of two or more files of at most ``most`` bytes together."""
    runs: list[list[Any]] = []
    current: list[Any] = []
    size = 0
    for info in infos:
        if current and size + info.size > most:
            runs.append(current)
            current, size = [], 0
        current.append(info)
        size += info.size
    runs.append(current)
    return [run for run in runs if len(run) >= 2]


def _temporary(final: str) -> str:
    directory, _, name = final.rpartition("/")
    return f"{directory}/.{name}.tmp"


def _parse_name(name: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first, last) of a committed file's name."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    stem = name[len("part-") : -len(".parquet")]
    topic, partition, first, last = stem.rsplit("-", 3)
    return topic, int(partition.removeprefix("p")), int(first), int(last)


def open_archive(url: str) -> Archive:
    """The archive at ``url``: a local path, ``s3://…``, ``hdfs://…``, ``file://…``."""
    if "://" not in url:
        local = pafs.LocalFileSystem()
        path = str(Path(url).absolute())
        local.create_dir(path, recursive=True)
        return Archive(local, path)
    filesystem, root = pafs.FileSystem.from_uri(url)
    return Archive(filesystem, root)


# -- the archiver ----------------------------------------------------------------------------


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    first: int
    last: int
    since: float


class Archiver:
    """Follows the public topics into an :class:`Archive`."""

    def __init__(self, settings: Settings, archive: Archive, names: Iterable[str] | None = None):
        self.settings = settings
        self.archive = archive
        self.datasets = {d.topic(settings): d for d in datasets(names)}
        self.flush_records = settings.archive_flush_records
        self.flush_seconds = settings.archive_flush_seconds
        self.pause = settings.archive_commit_pause_ms / 1000
        self.pending: dict[TopicPartition, _Pending] = {}
        self.archived = 0

    async def run(self, until_end: bool = False) -> int:
        """Archive until stopped (``until_end``: until the ends the topics had at the start);
        the records archived."""
        resume = self.archive.recover()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="none",  # a position off the log is an error, never a jump
            isolation_level="read_committed",  # never what an aborted transaction wrote
            fetch_max_wait_ms=self.settings.fetch_wait_ms or 500,
            **client_options(self.settings),
        )
        await consumer.start()
        try:
            tps = await self._assign(consumer)
            ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
            await self._seek(consumer, tps, resume, ends)
            log.info("archive: following %s partitions into %s", len(tps), self.archive.root)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=self.flush_records)
                now = time.monotonic()
                for tp, messages in batch.items():
                    self._add(tp, messages, now)
                await self._flush(now)
                if until_end and await self._reached(consumer, tps, ends):
                    await self._flush(None)
                    return self.archived
        finally:
            await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        tps = []
        for topic in self.datasets:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:  # the worker creates the topics: wait for it
                log.info("archive: waiting for topic %s", topic)
                await asyncio.sleep(1.0)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        return tps

    async def _seek(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        resume: dict[tuple[str, int], Resume],
        ends: dict[TopicPartition, int],
    ) -> None:
        """Start each partition after its last commit; refuse an archive of another log."""
        beginnings = await consumer.beginning_offsets(tps)
        for tp in tps:
            found = resume.get((self.datasets[tp.topic].name, tp.partition))
            if found is None:
                consumer.seek(tp, beginnings[tp])
                continue
            if found.topic != tp.topic or found.offset > ends[tp]:
                raise ArchiveMismatch(
                    f"{self.archive.root} holds {found.topic}[{tp.partition}] up to offset "
                    f"{found.offset - 1}, but {tp.topic}[{tp.partition}] ends at {ends[tp]}: "
                    "the topics are another log (a new broker, or topics made again). Give "
                    "this log an archive of its own (EXCHANGE_ARCHIVE_URL)."
                )
            start = found.offset
            if start < beginnings[tp]:
                log.warning(
                    "archive: %s offsets %s..%s were removed by retention before they were "
                    "archived; going on from %s",
                    tp,
                    start,
                    beginnings[tp] - 1,
                    beginnings[tp],
                )
                start = beginnings[tp]
            consumer.seek(tp, start)

    def _add(self, tp: TopicPartition, messages: list[ConsumerRecord], now: float) -> None:
        if not messages:
            return
        dataset = self.datasets[tp.topic]
        pending = self.pending.get(tp)
        if pending is None:
            pending = self.pending[tp] = _Pending([], messages[0].offset, -1, now)
        for message in messages:
            pending.last = message.offset
            if message.value is None:
                continue
            try:
                record = dataset.decode(message.value)
            except (ValueError, UnicodeDecodeError) as exc:
                log.error("archive: %s@%s is not JSON, skipped: %s", tp, message.offset, exc)
                continue
            if record is not None:
                pending.rows.append(to_row(dataset, record, message))

    async def _flush(self, now: float | None) -> None:
        """Commit every partition's batch that is full or old enough (all if ``now`` is None)."""
        for tp, pending in list(self.pending.items()):
            due = now is None or len(pending.rows) >= self.flush_records
            if not due and now is not None and now - pending.since < self.flush_seconds:
                continue
            dataset = self.datasets[tp.topic]
            await asyncio.to_thread(
                self.archive.write_batch,
                dataset,
                tp.topic,
                tp.partition,
                pending.rows,
                pending.first,
                pending.last,
                self.pause,
            )
            self.archived += len(pending.rows)
            del self.pending[tp]

    async def _reached(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict[TopicPartition, int]
    ) -> bool:
        for tp in tps:
            if await consumer.position(tp) < ends[tp]:
                return False
        return True


def compact(
    archive: Archive,
    smaller_than: int = 64 * 1024 * 1024,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, tuple[int, int]]:
    """Compact every dataset; per dataset (files merged, files written), each also told to
    ``progress`` as it is done."""
    done = {}
    for dataset in DATASETS:
        done[dataset.name] = archive.compact(dataset, smaller_than)
        if progress is not None:
            progress(dataset.name, *done[dataset.name])
    return done


# -- reading back ----------------------------------------------------------------------------


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
    found = archive.dataset(orders)
    if found is None:
        return []
    table = found.to_table(filter=ds.field("date") == pa.scalar(day, pa.date32()))
    table = table.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])
    fields = [f.name for f in orders.columns]
    replayed = []
    for row in table.select(fields).to_pylist():
        order = {k: _plain(v) if isinstance(v, Decimal) else v for k, v in row.items()}
        if row["order_timestamp"] is not None:  # a CANCEL may have none
            order["order_timestamp"] = row["order_timestamp"].isoformat()
        replayed.append({k: v for k, v in order.items() if v is not None})
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
