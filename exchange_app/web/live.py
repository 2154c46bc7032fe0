"""Live push: ``/stream``, Server-Sent Events from the worker's broadcaster.

Without a key a stream carries market events (trades without who traded,
bars, profits); with a key also the key's own account's reports, fills and
P&L; ``account=`` picks an account the key may read.

A stream holds a queue of up to 1,000 events, so a worker bounds them
(:class:`StreamLimits`): ``max_streams`` in all, ``max_streams_per_key`` per
key, and for clients without a key ``max_streams_per_address`` per client
address and ``anonymous_stream_share`` of ``max_streams`` in all, so that
anonymous clients cannot take the room of the keys. The key is checked before
a stream takes its slot: a refused client holds nothing.

A stream ends when its key is revoked: the key store's follower applies the
tombstone to the :class:`~exchange_app.auth.KeyRing`, which tells this view,
which ends the key's streams at once; nothing queued for them is sent. A
client that went away is found by the heartbeat, a comment written every
``heartbeat`` seconds when nothing else was: a write to a closed connection
fails, and the stream gives its slot back.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from aiohttp import web

from .answers import refuse
from .broadcast import Broadcaster, Event
from .gate import ANYONE, Gate, check_read

__all__ = ["LiveViews", "StreamLimits", "StreamSlots"]

#: Seconds a refused client is told to wait before it asks again.
RETRY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How many streams one worker holds, and for whom."""

    total: int = 200
    per_key: int = 5
    #: streams one client address without a key may hold
    per_address: int = 4
    #: the share of ``total`` streams without a key may take, when keys are in use
    anonymous_share: float = 0.75

    def __post_init__(self) -> None:
        if min(self.total, self.per_key, self.per_address) < 1:
            raise ValueError(f"stream limits: expected counts >= 1, got {self}")
        if not 0 < self.anonymous_share <= 1:
            raise ValueError(
                f"anonymous_share: expected a share in (0, 1], got {self.anonymous_share}"
            )

    @property
    def anonymous(self) -> int:
        """Streams without a key a worker holds at most (at least one)."""
        return max(1, math.floor(self.total * self.anonymous_share))


class StreamSlots:
    """The streams a worker holds, by key and, without a key, by client address.

    ``keys_in_use``: anonymous streams are held to their share; without keys
    (authentication off) everyone is anonymous and may take every slot."""

    def __init__(self, limits: StreamLimits, keys_in_use: bool) -> None:
        self.limits = limits
        self.keys_in_use = keys_in_use
        self.open = 0
        self.anonymous = 0
        self._of_key: Counter[str] = Counter()
        self._of_address: Counter[str] = Counter()

    def take(self, key: str, address: str) -> None:
        """Take a slot for a stream of ``key`` (empty: none) from ``address``, or refuse:
        503 when the worker is full, 429 when the key or the address is."""
        limits = self.limits
        if self.open >= limits.total:
            raise refuse(503, f"this worker serves {limits.total} streams already", RETRY_SECONDS)
        if key:
            if self._of_key[key] >= limits.per_key:
                raise refuse(429, f"this key holds {limits.per_key} streams already", RETRY_SECONDS)
            self._of_key[key] += 1
        else:
            if self._of_address[address] >= limits.per_address:
                raise refuse(
                    429,
                    f"this address holds {limits.per_address} streams without a key already; "
                    "a key has its own",
                    RETRY_SECONDS,
                )
            if self.keys_in_use and self.anonymous >= limits.anonymous:
                raise refuse(
                    503,
                    f"this worker serves {limits.anonymous} streams without a key already; "
                    "the rest are kept for keys",
                    RETRY_SECONDS,
                )
            self._of_address[address] += 1
            self.anonymous += 1
        self.open += 1

    def give_back(self, key: str, address: str) -> None:
        self.open -= 1
        counts, name = (self._of_key, key) if key else (self._of_address, address)
        if not key:
            self.anonymous -= 1
        counts[name] -= 1
        if not counts[name]:
            del counts[name]


class LiveViews:
    def __init__(
        self,
        gate: Gate,
        broadcaster: Broadcaster,
        limits: StreamLimits,
        heartbeat: float = 2.0,
    ) -> None:
        self.gate = gate
        self.broadcaster = broadcaster
        self.heartbeat = heartbeat
        self.slots = StreamSlots(limits, keys_in_use=gate.keys is not None)
        # the queues of the open streams, by key id: what a revocation ends
        self._queues_of: defaultdict[str, set[asyncio.Queue[Event | None]]] = defaultdict(set)
        if gate.keys is not None:
            gate.keys.on_revoke.append(self._revoked)

    def _revoked(self, key_id: str) -> None:
        """End every stream of a key the ring no longer honours."""
        for queue in self._queues_of.pop(key_id, ()):
            self.broadcaster.close(queue)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        principal = self.gate.principal(request)  # a wrong key is refused before a slot
        account = request.query.get("account") or None
        if account:
            check_read(principal, account)
        elif principal is not None and principal is not ANYONE:
            account = principal.account  # a key's stream: market events and its own
        key = principal.key if principal is not None else ""
        address = request.remote or ""
        # From the key's check to the queue's registration nothing is awaited: a
        # revocation applied meanwhile would otherwise miss this stream.
        self.slots.take(key, address)
        queue = self.broadcaster.subscribe()  # before reading the ring: nothing falls between
        if key:
            self._queues_of[key].add(queue)
        try:
            return await self._stream(request, queue, account)
        finally:
            self.broadcaster.unsubscribe(queue)
            if key and key in self._queues_of:
                self._queues_of[key].discard(queue)
                if not self._queues_of[key]:
                    del self._queues_of[key]
            self.slots.give_back(key, address)

    async def _stream(
        self, request: web.Request, queue: asyncio.Queue[Event | None], account: str | None
    ) -> web.StreamResponse:
        instrument = request.query.get("instrument") or None
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            await response.write(b"retry: 2000\n\n")
            backlog = self.broadcaster.since(last)
            sent: set[str] = set()
            if backlog is None:
                await response.write(b"event: reset\ndata: {}\n\n")
                backlog = []
            for old in backlog:
                sent.add(old.id)
                shown = old.shown(instrument, account)
                if shown is not None:
                    await response.write(shown.encode())
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break  # the client went away
                    await response.write(b": keepalive\n\n")  # fails on a closed connection
                    continue
                if event is None:  # too slow, or the key was revoked: the stream ends
                    break
                if event.id in sent:
                    sent.discard(event.id)
                    continue
                shown = event.shown(instrument, account)
                if shown is not None:
                    await response.write(shown.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    @property
    def open_streams(self) -> int:
        return self.slots.open
