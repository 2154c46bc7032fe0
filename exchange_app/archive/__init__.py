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

from .archiver import ArchiveMismatch, Archiver
from .locating import ArchiveNotFound, locate_archive, newest_run
from .reading import archived_orders, query, records
from .schema import DATASETS, Dataset, datasets, to_row
from .store import Archive, Resume, compact, open_archive

__all__ = [
    "DATASETS",
    "Archive",
    "ArchiveMismatch",
    "ArchiveNotFound",
    "Archiver",
    "Dataset",
    "Resume",
    "archived_orders",
    "compact",
    "datasets",
    "locate_archive",
    "newest_run",
    "open_archive",
    "query",
    "records",
    "to_row",
]
