"""Waiting on a worker with a deadline, for the end-to-end benchmark.

Every wait of ``e2e/bench.py`` ends in one of three ways besides success: the
deadline passes, nothing moves for a while, or the worker process dies. Each
raises :class:`PhaseError` naming the phase, what was awaited, how far it got,
and the tail of the worker's log, so a broken worker is diagnosed, not waited on.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from ..processes import Worker, WorkerExited

__all__ = ["STALL_SECONDS", "PhaseError", "Watch", "books_served", "boot"]

#: how long a wait may see no progress before it gives up
STALL_SECONDS = 90.0


class PhaseError(RuntimeError):
    """A benchmark phase did not finish; the message ends with the worker's log tail."""

    def __init__(self, phase: str, what: str, worker: Worker | None = None) -> None:
        self.phase = phase
        self.what = what
        detail = f"{phase}: {what}"
        if worker is not None:
            detail += f"\n--- last lines of {worker.log} ---\n{worker.tail(40)}"
        super().__init__(detail)


class Watch:
    """Deadline, stall and liveness checks of one wait: call :meth:`check` each round."""

    def __init__(
        self,
        phase: str,
        what: str,
        worker: Worker | None,
        timeout: float,
        stall: float = STALL_SECONDS,
    ) -> None:
        self.phase = phase
        self.what = what
        self.worker = worker
        self.timeout = timeout
        self.stall = stall
        self.started = self.moved = time.monotonic()
        self.progress: int | None = None

    def fail(self, why: str) -> PhaseError:
        got = "" if self.progress is None else f"; {self.progress:,} so far"
        return PhaseError(self.phase, f"{why} waiting for {self.what}{got}", self.worker)

    def check(self, progress: int | None) -> None:
        """Raise :class:`PhaseError` if the worker died, time is up or ``progress`` stalled.

        ``None``: there is no measure of progress, only the deadline counts.
        """
        now = time.monotonic()
        if progress != self.progress:
            self.progress, self.moved = progress, now
        process = self.worker.process if self.worker is not None else None
        if self.worker is not None and (process is None or process.poll() is not None):
            code = None if process is None else process.returncode
            raise self.fail(f"the worker exited (code {code})")
        if now - self.started > self.timeout:
            raise self.fail(f"timed out after {self.timeout:.0f} s")
        if progress is not None and now - self.moved > self.stall:
            raise self.fail(f"no progress for {self.stall:.0f} s")


async def boot(
    worker: Worker, phase: str, *, timeout: float, health_url: str | None = None
) -> tuple[float, float]:
    """Start ``worker``; the seconds from process start to "Ready" in its log and (with
    ``health_url``) to that URL answering 200, else 0."""
    worker.launch()
    watch = Watch(phase, "the worker to start", worker, timeout)
    healthy: float | None = None if health_url else 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        while True:
            try:
                ready = worker.ready()
            except WorkerExited as exc:
                code = worker.process.returncode if worker.process else None
                raise PhaseError(
                    phase, f"the worker exited (code {code}) while starting", worker
                ) from exc
            if healthy is None and health_url is not None:
                try:
                    async with session.get(health_url) as response:
                        if response.status == 200:
                            healthy = time.monotonic() - worker.started_at
                except (aiohttp.ClientError, TimeoutError):
                    pass
            if ready and healthy is not None:
                return worker.ready_after or 0.0, healthy
            watch.check(None)
            await asyncio.sleep(0.05)


async def books_served(base: str, worker: Worker, phase: str, timeout: float) -> tuple[float, int]:
    """Seconds from process start until ``/instruments`` answers (the books are loaded:
    it answers 503 before), and the resting orders it shows."""
    watch = Watch(phase, "the books to be served", worker, timeout)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
        while True:
            try:
                async with session.get(f"{base}/instruments?scope=local") as response:
                    if response.status == 200:
                        served = time.monotonic() - worker.started_at
                        rows = (await response.json())["instruments"]
                        return served, sum(int(row["resting_orders"]) for row in rows)
            except (aiohttp.ClientError, TimeoutError):
                pass
            watch.check(None)
            await asyncio.sleep(0.05)
