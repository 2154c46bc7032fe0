"""Noticing, while running, that the broker lost its topics, and starting over.

Two signs: the broker's epoch changed (checked every few seconds), or Faust's
recovery finds a changelog shorter than what local state has applied
(``ConsistencyError``, which comes first when the worker rejoins an empty
broker). Either way local state cannot be trusted any more.


A worker checks every few seconds that the broker's epoch (``epoch.py``) is
still the one its state was built on. If it is not, the memory-only broker
restarted: the input offsets, changelogs and committed positions this worker
relies on are gone, and carrying on would skip new orders whose offsets start
again at 0. The worker then stops with exit code 75 (``EX_TEMPFAIL``), after a
clean shutdown; ``exchange worker`` (the Procfile's supervisor) starts it
again, and at start the stale local tables are discarded. Any process
supervisor that restarts on 75 does the same.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
from pathlib import Path

from .epoch import EpochProbe

__all__ = [
    "EX_TEMPFAIL",
    "BrokerLost",
    "check_broker_epoch",
    "exit_now",
    "request_restart",
    "watch_broker_epoch",
]

log = logging.getLogger(__name__)
EX_TEMPFAIL = 75


class BrokerLost(RuntimeError):
    """The broker no longer holds the log this worker's state came from."""


def exit_now() -> None:
    """Stop the process at once with :data:`EX_TEMPFAIL`: no shutdown, no offset commit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EX_TEMPFAIL)


_restart_requested = False


def request_restart(epoch_file: Path | None = None) -> None:
    """Make this process exit with :data:`EX_TEMPFAIL` after Faust's clean shutdown.

    Removing ``epoch_file`` makes the next start discard the local tables.
    """
    global _restart_requested
    if epoch_file is not None:
        epoch_file.unlink(missing_ok=True)
    if not _restart_requested:
        _restart_requested = True
        atexit.register(exit_now)


async def watch_broker_epoch(app: object, interval: float = 5.0) -> None:
    """Check every ``interval`` s that the broker's epoch is the one ``app`` started on."""
    settings = app.settings  # type: ignore[attr-defined]
    probe = EpochProbe(
        settings.bootstrap_servers,
        f"{app.conf.id}-broker-epoch",  # type: ignore[attr-defined]
        replication=settings.replication,
    )
    try:
        while True:
            await asyncio.sleep(interval)
            await check_broker_epoch(app, probe)
    finally:
        await probe.close()


async def check_broker_epoch(app: object, probe: EpochProbe) -> None:
    """Crash ``app`` (a started ``ExchangeApp``) if the broker's epoch changed."""
    recorded = getattr(app, "broker_epoch", None)
    if recorded is None:
        return
    try:
        current = await probe.read(timeout=10.0)
    except Exception as exc:  # unreachable broker: the clients retry on their own
        log.debug("broker epoch check skipped: %r", exc)
        return
    if current == recorded:
        return
    log.error(
        "The broker lost its topics (epoch %s is now %s): it was restarted or replaced. "
        "Stopping this worker with exit code %s so that it starts again on clean state.",
        recorded,
        current,
        EX_TEMPFAIL,
    )
    app.broker_epoch = None  # type: ignore[attr-defined]
    request_restart()
    await app.crash(BrokerLost(f"broker epoch changed from {recorded} to {current}"))  # type: ignore[attr-defined]
