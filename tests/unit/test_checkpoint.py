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

    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        self.calls.append(records[0].topic)
        if records[0].topic == self.topic and self.failures:
            self.failures -= 1
            raise ConnectionError("broker went away")
        return await super().hand_over(records)


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

    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        if records[0].topic == "t-changelog":
            await self.release.wait()
        self.order += [(r.topic, r.value) for r in records]
        return await super().hand_over(records)


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
    assert stops == ["stop", "stop"]  # by hand_over, then by the pipeline's watch
    assert len(sink.records["trades"]) == 1 and table.data.applied == []


class HeldSink(MemorySink):
    """Takes records at once and delivers them when told: a producer with requests in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[asyncio.Future[list[int]], list[int]]] = []
        self.taken: list[tuple[str, Any]] = []

    async def hand_over(self, records: Sequence[Record]) -> asyncio.Future[list[int]]:
        self.taken += [(r.topic, r.value) for r in records]
        offsets = (await super().hand_over(records)).result()
        delivery: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.held.append((delivery, offsets))
        return delivery

    def deliver_next(self, error: Exception | None = None) -> None:
        delivery, offsets = self.held.pop(0)
        if error is None:
            delivery.set_result(offsets)
        else:
            delivery.set_exception(error)


async def test_a_pipeline_hands_over_the_next_outputs_before_the_last_are_delivered() -> None:
    table, sink = Table(), HeldSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    await pipeline.commit(numbered(table, 1))
    await pipeline.commit(numbered(table, 2))  # returns: tx 1's outputs are still in flight
    assert sink.taken == [("trades", b'{"seq":1}'), ("trades", b'{"seq":2}')]
    assert pipeline.in_flight == 2
    await asyncio.sleep(0)
    assert table.data.applied == []  # no state before its outputs are delivered
    sink.deliver_next()  # tx 1's outputs; then its changelog goes, and is delivered
    while len(sink.held) < 2:
        await asyncio.sleep(0)
    assert sink.taken[-1] == ("t-changelog", b'{"seq":2}')
    sink.deliver_next()  # tx 2's outputs
    sink.deliver_next()  # tx 1's changelog
    while len(sink.held) < 1 or table.data.applied == []:
        await asyncio.sleep(0)
    assert [value for _, value, _ in table.data.applied] == [{"seq": 2}]
    sink.deliver_next()  # tx 2's changelog: only now, after tx 1's tables
    await pipeline.drain()
    assert [value for _, value, _ in table.data.applied] == [{"seq": 2}, {"seq": 3}]
    assert pipeline.in_flight == 0


async def test_a_pipeline_holds_at_most_its_window_of_transactions() -> None:
    table, sink = Table(), HeldSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4), window=2)
    await pipeline.commit(numbered(table, 1))
    await pipeline.commit(numbered(table, 2))
    third = asyncio.ensure_future(pipeline.commit(numbered(table, 3)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done() and len(sink.taken) == 2  # waits: the window is full
    while not third.done():  # deliver whatever is in flight, in order, until it goes
        if sink.held:
            sink.deliver_next()
        await asyncio.sleep(0)
    assert ("trades", b'{"seq":3}') in sink.taken
    assert table.data.applied[0][1] == {"seq": 2}  # it went once tx 1 was complete
    while sink.held or pipeline.in_flight:
        if sink.held:
            sink.deliver_next()
        await asyncio.sleep(0)
    assert [value for _, value, _ in table.data.applied] == [{"seq": n + 1} for n in (1, 2, 3)]


async def test_outputs_lost_after_they_were_handed_over_stop_before_any_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table, sink = Table(), HeldSink()
    pipeline = Pipeline(Checkpoint(sink, {"trades": "trades"}, 4))
    stops: list[str] = []
    monkeypatch.setattr(checkpoint, "exit_now", lambda: stops.append("stop"))
    await pipeline.commit(numbered(table, 1))
    sink.deliver_next(ConnectionError("the producer gave up"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert stops == ["stop"]
    assert table.data.applied == [] and sink.taken == [("trades", b'{"seq":1}')]


class Batch:
    """What a producer's record batch builder does for :class:`KafkaSink`."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object:
        self.records.append((key, value))
        return object()


class Producer:
    """A producer whose record batches are delivered when the test says."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, Batch, asyncio.Future[Any]]] = []

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, future))
        return future


async def test_a_kafka_sink_stops_at_the_first_callback_of_a_lost_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before anything else runs (the producer sending a later batch), the process stops."""
    order: list[str] = []
    monkeypatch.setattr(checkpoint, "exit_now", lambda: order.append("stop"))
    producer = Producer()
    sink = checkpoint.KafkaSink(producer)
    records = [Record("trades", 1, b"k", b"1"), Record("trades", 2, b"k", b"2")]
    delivered = await sink.hand_over(records)
    assert [(t, p, b.records) for t, p, b, _ in producer.sent] == [
        ("trades", 1, [(b"k", b"1")]),
        ("trades", 2, [(b"k", b"2")]),
    ]
    producer.sent[0][3].set_result(SimpleNamespace(offset=7))
    producer.sent[1][3].set_exception(ConnectionError("gave up"))
    # what the producer's sender would run next: scheduled by the same failure
    asyncio.get_running_loop().call_soon(lambda: order.append("next callback"))
    await asyncio.sleep(0)
    assert order == ["stop", "next callback"]  # the batch's own callback: no hop between
    with pytest.raises(ConnectionError):
        await delivered


async def test_a_kafka_sink_returns_each_records_offset() -> None:
    producer = Producer()
    sink = checkpoint.KafkaSink(producer)
    records = [Record("t", 0, None, b"a"), Record("t", 1, None, b"b"), Record("t", 0, None, b"c")]
    delivered = await sink.hand_over(records)
    for offset, (_, _, _, future) in zip((10, 20), producer.sent, strict=True):
        future.set_result(SimpleNamespace(offset=offset))
    assert await delivered == [10, 20, 11]
