"""Live push: ``/stream``, Server-Sent Events from the worker's broadcaster.

Without a key a stream carries market events (trades without who traded,
bars, profits); with a key also the key's own account's reports, fills and
P&L; ``account=`` picks an account the key may read. A worker holds at most
``max_streams`` streams, a key at most ``max_streams_per_key``.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web

from exchange_app.auth import Principal

from .answers import refuse
from .broadcast import Broadcaster, Event
from .gate import ANYONE, Gate, check_read

__all__ = ["KEEPALIVE_SECONDS", "LiveViews"]

KEEPALIVE_SECONDS = 15.0


class LiveViews:
    def __init__(
        self, gate: Gate, broadcaster: Broadcaster, max_streams: int, max_streams_per_key: int
    ) -> None:
        self.gate = gate
        self.broadcaster = broadcaster
        self.max_streams = max_streams
        self.max_streams_per_key = max_streams_per_key
        self._streams = 0
        self._streams_of: Counter[str] = Counter()  # open streams per key id

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= self.max_streams:  # each holds a queue of up to 1,000 events
            raise refuse(503, f"this worker serves {self.max_streams} streams already", 5)
        principal = self.gate.principal(request)
        key = principal.key if principal is not None else ""
        if key and self._streams_of[key] >= self.max_streams_per_key:
            raise refuse(429, f"this key holds {self.max_streams_per_key} streams already", 5)
        self._streams += 1
        self._streams_of[key] += 1
        try:
            return await self._stream(request, principal)
        finally:
            self._streams -= 1
            self._streams_of[key] -= 1
            if not self._streams_of[key]:
                del self._streams_of[key]

    async def _stream(
        self, request: web.Request, principal: Principal | None
    ) -> web.StreamResponse:
        instrument = request.query.get("instrument") or None
        account = request.query.get("account") or None
        if account:
            check_read(principal, account)
        elif principal is not None and principal is not ANYONE:
            account = principal.account  # a key's stream: market events and its own
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        broadcaster = self.broadcaster
        queue = broadcaster.subscribe()  # before reading the ring: nothing falls in between
        try:
            await response.write(b"retry: 2000\n\n")
            backlog = broadcaster.since(last)
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
                    event: Event | None = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:  # too slow: dropped; the client reconnects with its last id
                    break
                if event.id in sent:
                    sent.discard(event.id)
                    continue
                shown = event.shown(instrument, account)
                if shown is not None:
                    await response.write(shown.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            broadcaster.unsubscribe(queue)
        return response
