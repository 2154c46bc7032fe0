"""Live events for Server-Sent Events clients: a ring buffer fed from the output topics.

Every worker reads trades, execution reports, bars, profits and P&L from all
partitions (outside the consumer group: each worker sees everything) and keeps
the last ``size`` events in memory, numbered ``<boot id>-<n>``. A client that
reconnects with ``Last-Event-ID`` gets every event after it that is still in
the ring; when it is not (another worker, or too old) the client is told with
a ``reset`` event and should reload its snapshot views.

A trade is shown to anyone as market data (no account, no order id); to one of
its two accounts with that account's side added (its account and order id),
never the counterparty's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

import token_bucket
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from exchange_app.broker.offsets import true_end_offsets
from exchange_app.connection import client_options
from exchange_app.wire import PUBLIC_TRADE_FIELDS, dumps, loads, public_trade

__all__ = ["Broadcaster", "Event", "own_trade"]

log = logging.getLogger(__name__)


#: Reads the live feed may make at once after a quiet spell (see :meth:`Broadcaster.feed`).
FEED_BURST = 10

#: Event kinds that are market data, pushed to anyone.
MARKET_KINDS = ("trade", "bar", "profit")
#: A trade's fields that name one side: its order id (the seed's and ours) and account.
SIDE_FIELDS = {
    "buyer": ("id", "buy_order_id", "buyer"),
    "seller": ("id_sell", "sell_order_id", "seller"),
}


def own_trade(trade: dict[str, Any], account: str) -> dict[str, Any]:
    """``trade`` as ``account`` sees it: market data and its own side, not the other's."""
    shown = set(PUBLIC_TRADE_FIELDS)
    for side, fields in SIDE_FIELDS.items():
        if trade.get(side) == account:
            shown.update(fields)
    return {name: value for name, value in trade.items() if name in shown}


class Event:
    """One pushed record. Made from a topic's bytes, it is decoded only if a client needs it:
    the feed takes in every output record, most while nobody is watching."""

    __slots__ = ("_data", "_own", "_public", "_raw", "id", "kind")

    def __init__(
        self, id: str, kind: str, data: dict[str, Any] | None = None, raw: bytes | None = None
    ) -> None:
        self.id = id
        self.kind = kind  # trade | order | bar | profit | pnl
        self._data = data
        self._raw = raw
        self._public: Event | None = None  # a trade as market data, made once for all streams
        self._own: dict[str, Event] = {}  # a trade as each of its accounts sees it

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            try:
                data = loads(self._raw or b"")
            except (ValueError, json.JSONDecodeError):
                data = None
            self._data = data if isinstance(data, dict) else {}
            if not self._data:
                self._raw = None  # not one of ours: push it as {}
        return self._data

    def instruments(self) -> set[str]:
        instrument = self.data.get("instrument")
        return {instrument} if instrument else set()

    def accounts(self) -> set[str]:
        keys = ("account", "buyer", "seller")
        return {self.data[k] for k in keys if self.data.get(k)}

    def shown(self, instrument: str | None, account: str | None) -> Event | None:
        """What a stream of ``instrument`` (None: all) for ``account`` shows of this event:
        the account's own events (its trades with its side only), market events (trades
        without who traded, bars, profits) to anyone, nothing else."""
        if instrument and instrument not in self.instruments():
            return None
        if account and account in self.accounts():
            if self.kind != "trade":
                return self
            own = self._own.get(account)
            if own is None:
                own = self._own[account] = Event(
                    self.id, self.kind, data=own_trade(self.data, account)
                )
            return own
        if self.kind == "trade":
            if self._public is None:
                self._public = Event(self.id, self.kind, data=public_trade(self.data))
            return self._public
        return self if self.kind in MARKET_KINDS else None

    def encode(self) -> bytes:
        # our own records go out as the topic has them: compact JSON
        payload = self._raw.decode() if self._raw and self.data else dumps(self.data).decode()
        return f"id: {self.id}\nevent: {self.kind}\ndata: {payload}\n\n".encode()


class Broadcaster:
    def __init__(self, size: int = 10_000, queue_size: int = 1_000) -> None:
        self.boot = uuid.uuid4().hex[:8]
        self.ring: deque[tuple[int, Event]] = deque(maxlen=size)
        self.next = 1
        self.queue_size = queue_size
        self.subscribers: set[asyncio.Queue[Event | None]] = set()

    def publish(
        self, kind: str, data: dict[str, Any] | None = None, raw: bytes | None = None
    ) -> Event:
        """Push a record to every subscriber: ``data``, or the JSON bytes ``raw``."""
        event = Event(f"{self.boot}-{self.next}", kind, data, raw)
        self.ring.append((self.next, event))
        self.next += 1
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a client too slow to keep up is dropped
                self.subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
        return event

    def since(self, last_id: str | None) -> list[Event] | None:
        """Events after ``last_id`` still in the ring; ``None`` if some are lost."""
        if not last_id:
            return []
        boot, _, number = last_id.partition("-")
        # ASCII digits, and few: str.isdigit() takes "²", which int() refuses
        if boot != self.boot or not (number.isascii() and number.isdigit()) or len(number) > 18:
            return None
        after = int(number)
        if self.ring and self.ring[0][0] > after + 1:
            return None
        return [event for n, event in self.ring if n > after]

    def subscribe(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self.queue_size)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self.subscribers.discard(queue)

    def close(self, queue: asyncio.Queue[Event | None]) -> None:
        """End a subscriber's stream now: what is queued for it is dropped, and the
        ``None`` that ends a stream is all it gets next."""
        self.subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    async def feed(
        self,
        bootstrap: list[str],
        topics: dict[str, str],
        fetch_wait_ms: int | None = None,
        interval: float = 0.0,
    ) -> None:
        """Publish every new record of ``topics`` (name -> event kind) until cancelled.

        Reads are paced by a token bucket: one read every ``interval`` seconds
        sustained, with :data:`FEED_BURST` reads at once after a quiet spell. So a
        sporadic event is pushed at once, while under a steady flow the broker
        answers one fetch per interval instead of one per output batch; what
        arrives meanwhile comes with the next read (the consumer holds it)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=fetch_wait_ms or 100,  # push latency: never sit on new events
            **client_options(),
        )
        reads = (
            token_bucket.Limiter(1 / interval, FEED_BURST, token_bucket.MemoryStorage())
            if interval
            else None
        )
        await consumer.start()
        try:
            tps = await self._assign_at_end(consumer, topics)
            log.info("live feed reading %d partitions", len(tps))
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batch.items():
                    for message in messages:
                        if message.value:
                            self.publish(topics[tp.topic], raw=message.value)
                while batch and reads is not None and not reads.consume(b"feed"):
                    await asyncio.sleep(interval / 4)
        finally:
            await consumer.stop()

    async def _assign_at_end(
        self, consumer: AIOKafkaConsumer, topics: Iterable[str]
    ) -> list[TopicPartition]:
        tps: list[TopicPartition] = []
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await asyncio.sleep(0.5)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await true_end_offsets(consumer._client, await consumer.end_offsets(tps))
        for tp in tps:
            consumer.seek(tp, ends[tp])
        return tps
