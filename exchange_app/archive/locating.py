"""Which archive a reader means: the one named, the configured one, or ``make run``'s newest.

``make run`` starts an empty embedded broker each time, so each run archives into
a directory of its own, ``<data dir>/archive/run-<UTC time>``. A reader
(``exchange query``, ``export --from-archive``, ``replay --archive-date``) in a
shell without ``EXCHANGE_ARCHIVE_URL`` then means the newest of those runs: the
names sort by their time.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RUN_PREFIX",
    "RUN_TIME_FORMAT",
    "ArchiveNotFound",
    "locate_archive",
    "newest_run",
    "run_name",
]

#: The prefix of a ``make run`` run's archive directory; the rest is its start, in UTC.
RUN_PREFIX = "run-"
RUN_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class ArchiveNotFound(LookupError):
    """No archive where one was asked for or expected."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"no archive at {where}: {detail}")
        self.where = where


def run_name(started: str) -> str:
    """The directory name of a run that started at ``started`` (``RUN_TIME_FORMAT``)."""
    return f"{RUN_PREFIX}{started}"


def newest_run(root: Path) -> Path | None:
    """The newest ``run-*`` directory under ``root`` (None: there is none)."""
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(RUN_PREFIX))
    return runs[-1] if runs else None


def locate_archive(named: str | None, configured: str | None, default_root: Path) -> str:
    """The archive to read: ``named`` (an ``--archive`` option) if given, else
    ``configured`` (``EXCHANGE_ARCHIVE_URL``) if set, else the newest run under
    ``default_root``, else ``default_root`` itself.

    A local path must exist: raises :class:`ArchiveNotFound` (a URL is its filesystem's
    to check)."""
    if named is None and configured is None:
        run = newest_run(default_root)
        if run is not None:
            return str(run)
        if not default_root.is_dir():
            raise ArchiveNotFound(
                str(default_root),
                "no archive yet (make run writes one per run under it, `exchange archive` "
                "writes one there); name another with --archive PATH",
            )
        return str(default_root)
    where = named if named is not None else configured
    assert where is not None
    if "://" not in where and not Path(where).is_dir():
        source = "--archive" if named is not None else "EXCHANGE_ARCHIVE_URL"
        raise ArchiveNotFound(where, f"not a directory (from {source})")
    return where
