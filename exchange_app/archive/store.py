"""The archive on its filesystem: the commit protocol, recovery and compaction.

The package's docstring describes the protocol; :class:`Archive` is all of it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .schema import DATASETS, Dataset, place

__all__ = ["Archive", "Resume", "compact", "open_archive"]

log = logging.getLogger(__name__)


class Resume(NamedTuple):
    """Where a source partition's archiving goes on: its next offset, and the topic it is
    of (an archive made from another topic is not resumed)."""

    offset: int
    topic: str


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
            groups[place(dataset, row)].append(row)
        name = f"part-{topic}-p{partition}-{first:020d}-{last:020d}.parquet"
        finals = []
        for where, group in sorted(groups.items()):
            directory = self.path(dataset.name, *where)
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
        root = self.path(dataset.name)
        if self.fs.get_file_info(root).type != pafs.FileType.Directory:
            return None  # one look, not a listing: the dataset lists its files itself
        fields = [pa.field("date", pa.date32())]
        if dataset.key:
            fields.append(pa.field(dataset.key, pa.string()))
        partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
        columns = [f for f in dataset.schema if f.name != dataset.key]
        return ds.dataset(
            root,
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
