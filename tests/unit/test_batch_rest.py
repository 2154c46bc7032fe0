"""An agent's rest between batches: its partitions paused in Faust's consumer, then resumed."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from exchange_app.agents import batches
from exchange_app.application import app

READ = "ex-trades-batched"
OTHER = "ex-routed"
BATCH = 5


class Consumer(faust_aiokafka.Consumer):
    """Faust's consumer with its own pause and resume, and an assignment given."""

    def __init__(self, assigned: set[TP]) -> None:  # no transport, no thread
        self.assigned = assigned
        self._active_partitions = None
        self._paused_partitions = set()
        self._buffered_partitions = set()
        self.calls: list[tuple[str, set[TP], float]] = []

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def pause_partitions(self, tps: Any) -> None:
        raise AssertionError("Faust's pause_partitions drops records of a fetch under way")

    def resume_partitions(self, tps: Any) -> None:
        super().resume_partitions(tps)
        self.calls.append(("resume", set(tps), time.monotonic()))

    @property
    def paused(self) -> set[TP]:
        return self.assigned - self._get_active_partitions()


def assigned() -> set[TP]:
    return {TP(READ, 0), TP(READ, 2), TP(OTHER, 0), TP(OTHER, 1)}


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "rebalancing_count", 0)


async def _rest(consumer: Consumer, topics: frozenset[str], seconds: float) -> float:
    """Start a rest of ``seconds``; the loop's time it ends."""
    until = asyncio.get_running_loop().time() + seconds
    batches.rest(consumer, topics, until)
    return until


async def past(moment: float) -> None:
    """Return once the loop ran every callback due at ``moment`` (a rest's end): a timer of
    the same moment is taken with them, and this task wakes only after that round."""
    loop = asyncio.get_running_loop()
    reached = loop.create_future()
    loop.call_at(moment, reached.set_result, None)
    await reached


async def test_pauses_only_the_agents_topics_until_the_time_then_resumes_them() -> None:
    consumer = Consumer(assigned())
    until = await _rest(consumer, frozenset({READ}), 0.05)
    assert consumer.paused == {TP(READ, 0), TP(READ, 2)}
    await past(until - 0.01)
    assert consumer.calls == []  # still resting just before the time
    await past(until)
    ((resume, resumed, _),) = consumer.calls
    assert (resume, resumed) == ("resume", {TP(READ, 0), TP(READ, 2)})
    assert consumer.paused == set()


def test_a_fetch_under_way_keeps_the_records_of_partitions_paused_meanwhile() -> None:
    """Faust's getmany filters a fetch's records by the active set it read before."""
    consumer = Consumer(assigned())
    under_way = consumer._get_active_partitions()
    batches.pause(consumer, {TP(READ, 0)})
    assert TP(READ, 0) in under_way
    assert TP(READ, 0) not in consumer._get_active_partitions()
    consumer.resume_partitions({TP(READ, 0)})
    assert consumer._get_active_partitions() == assigned()


async def test_a_time_already_past_resumes_at_once() -> None:
    consumer = Consumer(assigned())
    await past(await _rest(consumer, frozenset({READ}), -1.0))
    assert [call for call, _, _ in consumer.calls] == ["resume"]
    assert consumer.paused == set()


async def test_resumes_only_what_is_still_assigned() -> None:
    consumer = Consumer(assigned())
    until = await _rest(consumer, frozenset({READ}), 0.05)
    consumer.assigned.discard(TP(READ, 2))
    await past(until)
    assert consumer.calls[-1][:2] == ("resume", {TP(READ, 0)})


@pytest.mark.parametrize("rebalance", ["under way", "happened"])
async def test_a_rebalance_meanwhile_leaves_the_partitions_to_faust(
    rebalance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust's recovery resumes every stream partition it assigns, once tables are ready:
    resuming them earlier would let the agent read before its state is restored."""
    consumer = Consumer(assigned())
    until = await _rest(consumer, frozenset({READ}), 0.05)
    if rebalance == "under way":
        monkeypatch.setattr(app, "rebalancing", True)
    else:  # begun and ended
        monkeypatch.setattr(app, "rebalancing_count", 1)
    await past(until)
    assert consumer.calls == []
    assert consumer.paused == {TP(READ, 0), TP(READ, 2)}


async def test_nothing_is_paused_during_a_rebalance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its recovery may have resumed the partitions already: a pause now would last."""
    monkeypatch.setattr(app, "rebalancing", True)
    consumer = Consumer(assigned())
    await past(await _rest(consumer, frozenset({READ}), 0.01))
    assert consumer.paused == set()
    assert consumer.calls == []


class Stream:
    """A stream whose batches are given: what ``batches`` needs of a Faust stream."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.channel = SimpleNamespace(topics=(READ,))

    async def take_events(self, max_: int, within: float) -> Any:
        for size in self.sizes:
            yield [object()] * min(size, max_)


@pytest.mark.parametrize(
    ("sizes", "rests"),
    [([1], 1), ([3, 3], 2), ([BATCH], 0), ([BATCH, 2, BATCH, BATCH, 1], 2)],
)
async def test_only_a_batch_smaller_than_the_batch_size_is_followed_by_a_rest(
    sizes: list[int], rests: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full batch means the agent is behind: it takes the next one at once."""
    rested: list[frozenset[str]] = []

    def rest(consumer: Any, topics: frozenset[str], until: float) -> None:
        rested.append(topics)

    monkeypatch.setattr(batches, "rest", rest)
    monkeypatch.setattr(batches, "positions", Admitting())
    settings = batches.settings.model_copy(update={"batch_size": BATCH})
    monkeypatch.setattr(batches, "settings", settings)
    taken = [len(b) async for b in batches.batches(Stream(sizes), every_ms=100)]  # type: ignore[arg-type]
    assert taken == sizes
    assert rested == [frozenset({READ})] * rests


async def test_without_an_interval_no_batch_rests(monkeypatch: pytest.MonkeyPatch) -> None:
    def rest(consumer: Any, topics: frozenset[str], until: float) -> None:
        raise AssertionError("rested")

    monkeypatch.setattr(batches, "rest", rest)
    monkeypatch.setattr(batches, "positions", Admitting())
    assert [len(b) async for b in batches.batches(Stream([1, 2]))] == [1, 2]  # type: ignore[arg-type]


class Admitting:
    """Positions that admit every event."""

    def admit(self, events: list[Any]) -> tuple[list[Any], int, list[TP]]:
        return list(events), 0, []
