"""LoopShare: a long task hands the event loop back once its slice is spent, not before."""

from __future__ import annotations

import asyncio

import pytest

from exchange_app.sharing import LoopShare
from tests.harness import runs_alongside


async def _turns(share: LoopShare, count: int) -> None:
    for _ in range(count):
        await share.turn()


@pytest.mark.parametrize(
    ("budget", "ran"),
    [
        (0.0, 10),  # every turn yields once
        (3600.0, 0),  # the slice is never spent: nothing else runs
    ],
)
async def test_turn_yields_only_once_the_slice_is_spent(budget: float, ran: int) -> None:
    assert await runs_alongside(_turns(LoopShare(budget), 10)) == ran


async def test_the_slice_starts_again_after_a_yield() -> None:
    share = LoopShare(0.05)
    await asyncio.sleep(0.06)
    assert await runs_alongside(_turns(share, 3)) == 1  # the first turn yields, not the others
