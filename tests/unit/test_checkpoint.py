"""The checkpoint's order: outputs, then changelog, then the local store; failures stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from faust.serializers.registry import Registry

from exchange_app import checkpoint
from exchange_app.checkpoint import Checkpoint, MemorySink, Pipeline, Record
from tables.transaction import Output, Transaction


class Store:
    def __init__(self) -> None:
        self.applied: list[tuple[Any, Any, int]] = []

    def apply_changelog_batch(self, events: Any, to_key: Any, to_value: Any) -> None:
        self.applied += [(e.key, e.value, e.message.offset) for e in events]


class Table:
    """What the checkpoint needs of a Faust table."""

    key_type = value_type = None
    key_serializer = value_serializer = "json"

    def __init__(self) -> None:
        self.app = SimpleNamespace(serializers=Registry())
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "t-changelog")
        self.data = Store()


class FlakySink(MemorySink):
    """Fails the first ``failures`` deliveries of records of ``topic``; logs every call."""

    def __init__(self, topic: str, failures: int) -> None:
        super().__init__()
        self.topic, self.failures, self.calls = topic, failures, list[str]()

    async def deliver(self, records: Sequence[Record]) -> list[int]:
        self.calls.append(records[0].topic)
        if records[0].topic == self.topic and self.failures:
            self.failures -= 1
            raise ConnectionError("broker went away")
        return await super().deliver(records)


class Stopped(Exception):
    pass


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "BACKOFF_SECONDS", 0.0)

    def stop() -> None:
        raise Stopped

    monkeypatch.setattr(checkpoint, "exit_now", stop)


def batch(table: Table) -> Transaction:
    tx = Transaction()
    tx.send(Output("trades", "TCS", {"seq": 1}, 2))
    tx.write(table, 2, "o:TCS:1", {"remaining": 3})
    tx.write(table, 2, "o:TCS:1", None)  # the last value wins: one tombstone
    tx.write(table, 2, "m:TCS", {"seq": 2})
    return tx


async def test_outputs_then_changelog_then_local_store() -> None:
    table, sink = Table(), FlakySink("none", 0)
    await Checkpoint(sink, {"trades": "trades"}, 4).commit(batch(table))
    assert sink.calls == ["trades", "t-changelog"]
    changelog = sink.records["t-changelog"]
    assert [(r.partition, r.key, r.value) for r in changelog] == [
        (2, b'"o:TCS:1"', None),
        (2, b'"m:TCS"', b'{"seq":2}'),
    ]
    assert table.data.applied == [("o:TCS:1", None, 0), ("m:TCS", {"seq": 2}, 1)]


async def test_a_failed_delivery_is_retried_with_the_same_records() -> None:
    table, sink = Table(), FlakySink("trades", 2)
    await Checkpoint(sink, {"trades": "trades"}, 4).commit(batch(table))
    assert sink.calls == ["trades", "trades", "trades", "t-changelog"]
    assert len(sink.records["trades"]) == 1 and table.data.applied


async def test_a_changelog_that_cannot_be_delivered_stops_before_the_local_store() -> None:
    table, sink = Table(), FlakySink("t-changelog", 100)
    with pytest.raises(Stopped):
        await Checkpoint(sink, {"trades": "trades"}, 4).commit(batch(table))
    assert len(sink.records["trades"]) == 1  # the outputs went first
    assert table.data.applied == []  # local state never ahead of the changelog
    assert sink.calls.count("t-changelog") == checkpoint.ATTEMPTS


class SlowChangelogSink(MemorySink):
    """Holds every changelog delivery until released; records the order of deliveries."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.order: list[tuple[str, Any]] = []

    async def deliver(self, records: Sequence[Record]) -> list[int]:
        if records[0].topic == "t-changelog":
            await self.release.wait()
        self.order += [(r.topic, r.value) for r in records]
        return await super().deliver(records)


def numbered(table: Table, n: int) -> Transaction:
    tx = Transaction()
    tx.send(Output("trades", "TCS", {"seq": n}, 2))
    tx.write(table, 2, "m:TCS", {"seq": n + 1})
    return tx


async def test_a_pipeline_delivers_the_next_outputs_while_a_changelog_is_in_flight() -> None:
    table, sink = Table(), SlowChangelogSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    await pipeline.commit(numbered(table, 1))
    await pipeline.commit(numbered(table, 2))  # returns: tx 1's changelog still held
    assert [value for topic, value in sink.order] == [b'{"seq":1}', b'{"seq":2}']
    assert table.data.applied == []  # nothing local before its changelog
    sink.release.set()
    await pipeline.drain()
    changelog = [value for topic, value in sink.order if topic == "t-changelog"]
    assert changelog == [b'{"seq":2}', b'{"seq":3}']  # in commit order: last value last
    assert [value for _, value, _ in table.data.applied] == [{"seq": 2}, {"seq": 3}]


async def test_a_pipeline_whose_tables_cannot_be_written_stops_the_process(monkeypatch) -> None:
    table, sink = Table(), FlakySink("t-changelog", 100)
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    stops: list[str] = []
    monkeypatch.setattr(checkpoint, "exit_now", lambda: stops.append("stop"))
    await pipeline.commit(numbered(table, 1))  # the outputs are delivered
    with pytest.raises(AssertionError):  # what runs after exit_now(), which never returns
        await pipeline.drain()
    await asyncio.sleep(0)  # the task's done callback
    assert stops == ["stop", "stop"]  # by deliver, then by the pipeline's watch
    assert len(sink.records["trades"]) == 1 and table.data.applied == []


class GatedSink(MemorySink):
    """Holds every delivery until :meth:`open` lets it through; records when each began."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.began: list[tuple[str, Any]] = []
        self.failures = failures

    async def deliver(self, records: Sequence[Record]) -> list[int]:
        self.began += [(r.topic, r.value) for r in records]
        await self.gate.wait()
        if records[0].topic == "trades" and self.failures:
            self.failures -= 1
            raise ConnectionError("broker went away")
        return await super().deliver(records)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_submit_returns_before_delivery_and_outputs_go_out_one_batch_after_another() -> None:
    table, sink = Table(), GatedSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    first = await pipeline.submit(numbered(table, 1))
    second = await pipeline.submit(numbered(table, 2))
    await settle()
    assert not first.done() and not second.done()
    assert sink.began == [("trades", b'{"seq":1}')]  # batch 2 waits for batch 1's delivery
    sink.gate.set()
    await pipeline.drain()
    assert first.done() and second.done()
    assert [r.value for r in sink.records["trades"]] == [b'{"seq":1}', b'{"seq":2}']
    assert [value for _, value, _ in table.data.applied] == [{"seq": 2}, {"seq": 3}]


async def test_a_failed_delivery_is_retried_before_the_next_batch_is_handed_over() -> None:
    table, sink = Table(), GatedSink(failures=2)
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    await pipeline.submit(numbered(table, 1))
    await pipeline.submit(numbered(table, 2))
    sink.gate.set()
    await pipeline.drain()
    trades = [value for topic, value in sink.began if topic == "trades"]
    assert trades == [b'{"seq":1}', b'{"seq":1}', b'{"seq":1}', b'{"seq":2}']
    assert [r.value for r in sink.records["trades"]] == [b'{"seq":1}', b'{"seq":2}']


async def test_submit_waits_while_depth_transactions_are_queued() -> None:
    table, sink = Table(), GatedSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4), depth=2)
    await pipeline.submit(numbered(table, 1))
    await pipeline.submit(numbered(table, 2))
    third = asyncio.ensure_future(pipeline.submit(numbered(table, 3)))
    await settle()
    assert not third.done()  # two queued: the third waits for room
    sink.gate.set()
    await third
    await pipeline.drain()
    assert [r.value for r in sink.records["trades"]] == [b'{"seq":1}', b'{"seq":2}', b'{"seq":3}']
