"""Sharing the worker's event loop: long work hands it back every millisecond.

Every agent, the intake, the live feed and the views run on one event loop, so
work that runs for 50 ms without an ``await`` delays every order that arrives
meanwhile by up to 50 ms. The analytics take a quarter of a second of trades at
once (``EXCHANGE_ANALYTICS_INTERVAL_MS``); they and their checkpoint call
:meth:`LoopShare.turn` between small steps, which lets the loop run whatever is
ready (the intake's fetches, matching) once a slice's budget is spent.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["SLICE_SECONDS", "LoopShare"]

#: The longest a sharing task runs before it hands the loop back.
SLICE_SECONDS = 0.001


class LoopShare:
    """A task's share of the loop: :meth:`turn` yields once ``budget`` seconds have run
    since the last yield (or since the share was made)."""

    __slots__ = ("_since", "budget")

    def __init__(self, budget: float | None = None) -> None:
        self.budget = SLICE_SECONDS if budget is None else budget
        self._since = time.perf_counter()

    async def turn(self) -> None:
        if time.perf_counter() - self._since >= self.budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
