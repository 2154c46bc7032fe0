"""LoopShare: a long task hands the event loop back once its slice is spent, not before."""

from __future__ import annotations

import asyncio

import pytest

from exchange_app.sharing import LoopShare


async def _others_ran(share: LoopShare, turns: int) -> int:
    """How often a task that is ready all along runs while ``turns`` turns are taken."""
    ran = 0
    stop = False

    async def other() -> None:
        nonlocal ran
        while not stop:
            ran += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other())
    for _ in range(turns):
        await share.turn()
    stop = True
    await task
    return ran


@pytest.mark.parametrize(
    ("budget", "ran"),
    [
        (0.0, 10),  # every turn yields once
        (3600.0, 0),  # the slice is never spent: nothing else runs
    ],
)
async def test_turn_yields_only_once_the_slice_is_spent(budget: float, ran: int) -> None:
    assert await _others_ran(LoopShare(budget), 10) == ran


async def test_the_slice_starts_again_after_a_yield() -> None:
    share = LoopShare(0.05)
    await asyncio.sleep(0.06)
    assert await _others_ran(share, 3) == 1  # the first turn yields, the next two do not
