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
