"""The HTTP API and the dashboard, as plain aiohttp handlers over injected services.

JSON views answer for any key from any worker: a request for a key owned by
another worker is proxied there (one signed hop to an allowed peer, ``peers.py``).

=====================================  ========================================
who may call: anyone
``GET /instruments``                   every instrument: last price, volume, best bid/ask
``GET /orderbook/{instrument}``        ``?depth=N`` price levels per side, orders at the top
``GET /trades/{instrument}``           ``?limit=N`` recent trades, newest first
``GET /bars/{instrument}``             recent final bars and the open bar, with every SMA
``GET /profit/{instrument}``           window profit of the open and the last closed bar
``GET /stream``                        Server-Sent Events: market events; with a key, its own
``GET /health``, ``GET /``             readiness (503 until recovered), the trader dashboard
who may call: a key (``Authorization: Bearer``), acting as its account only
``POST /orders``                       order JSON → 202 with its id, or 400 with every reason
``DELETE /orders/{id}?instrument=X``   a CANCEL of the key's account's order → 202
``GET /accounts/{account}``            the key's own account (an admin key: any)
``GET /stream?account=A``              A's events: A's key or an admin key
``GET /whoami``                        the key's account and whether it is an admin key
who may call: an admin key
``GET /metrics``                       Prometheus text; also Faust's ``/table/``, ``/router/``
=====================================  ========================================

Everything else answers 401 without a key, 403 with the wrong one (``auth.py``);
``EXCHANGE_AUTH=off`` lets anyone do anything.

Market data (instruments, order book, trades, bars, profit) shows no account
and no order id: the orders at the top of the book are quantities and times,
and trades are prices and sizes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import token_bucket
from aiohttp import web
from yarl import URL

from exchange_app.auth import KeyRing, Principal
from exchange_app.engine import InvalidOrder
from exchange_app.engine.profit import window_profit
from exchange_app.metrics import CONTENT_TYPE, Metrics
from exchange_app.wire import decode_order, dumps, encode_order, loads, public_trade
from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, pnl_record
from tables.matching import MatchingState
from tables.tape import TAPE_SIZE, TradeTape

from .broadcast import Broadcaster, Event
from .peers import ROUTED, allowed_peer, sign, verify

__all__ = ["ROUTED", "Api", "Services", "install"]

STATIC = Path(__file__).parent / "static"
INSTRUMENT = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,15}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
KEEPALIVE_SECONDS = 15.0
#: The largest answer a worker takes from a peer.
MAX_PEER_ANSWER_BYTES = 4 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The largest request body the API reads (an order is a few hundred bytes): larger is 413.
MAX_BODY_BYTES = 16_384
#: Sent with every answer. The dashboard loads only its own script and style (no inline
#: code), is never framed, and posts only to its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _order_id() -> int:
    return secrets.randbits(52) or 1  # JSON-safe in JavaScript (< 2**53)


#: A client's own order id (``client_order_id``, or the original format's ``id``).
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def exchange_order_id(account: str, client_order_id: str) -> int:
    """The exchange's id of an account's own order id: a retry gets the same one (and the
    book refuses it, ``engine/recent.py``), another account's equal id another one.
    52 bits of BLAKE2b: JSON-safe; two ids meeting in one book's horizon is a reject."""
    digest = hashlib.blake2b(f"{account}\n{client_order_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 12) or 1


@dataclass
class Services:
    """What the views read and do; the worker wires its tables and producer in."""

    matching: MatchingState
    bars: BarsAnalytics
    profits: ProfitAnalytics
    ledger: PnlLedger
    tape: TradeTape
    broadcaster: Broadcaster
    metrics: Metrics
    publish: Callable[[str, bytes], Awaitable[None]]
    #: base URL of the worker owning a key (``"instrument"``/``"account"``), ``None`` if this one
    owner: Callable[[str, str], str | None] = lambda kind, key: None
    #: base URLs of the other workers
    peers: Callable[[], list[str]] = list
    healthy: Callable[[], bool] = lambda: True
    #: the secret every worker signs its hops to the others with; None: no hops
    cluster_secret: bytes | None = None
    #: the hosts a peer's advertised address may name
    peer_hosts: tuple[str, ...] = LOOPBACK
    #: open ``/stream`` connections this worker holds at most
    max_streams: int = 200
    #: the API keys in force; None: authentication is off and everyone is an admin
    keys: KeyRing | None = None
    #: per key: open streams, and requests a second (token bucket: rate and burst)
    max_streams_per_key: int = 5
    key_rate: float = 20.0
    key_burst: int = 40
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_order_id: Callable[[], int] = _order_id


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: dumps(obj).decode())


def _error(status: int, *messages: str) -> web.Response:
    return _json({"errors": list(messages)}, status=status)


#: Paths only an admin key may read: Faust's table and router views, the metrics.
ADMIN_PATHS = ("/table", "/router", "/metrics")
#: Who everyone is when authentication is off.
ANYONE = Principal("", admin=True)


_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


def _refuse(status: int, message: str, retry_after: int = 1) -> web.HTTPException:
    """An error answer to raise; a 401 says how to authenticate, 429 and 503 when to retry."""
    headers = {"WWW-Authenticate": 'Bearer realm="exchange"'} if status == 401 else {}
    if status in (429, 503):
        headers["Retry-After"] = str(retry_after)
    return _REFUSALS[status](
        text=dumps({"errors": [message]}).decode(), content_type="application/json", headers=headers
    )


def _check_read(principal: Principal | None, account: str) -> None:
    """Refuse unless ``principal`` may read ``account``: 401 without a key, else 403."""
    if principal is None:
        raise _refuse(401, "this needs a key: Authorization: Bearer <key>")
    if not principal.may_read(account):
        raise _refuse(403, f"this key may not read account {account!r}")


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _refuse(
            400, f"{name}: expected a whole number from {low} to {high}, got {raw[:20]!r}"
        )
    return int(raw)


class PeerRefused(Exception):
    """This worker will not ask that peer."""


class Api:
    def __init__(self, services: Services) -> None:
        self.s = services
        self._client: aiohttp.ClientSession | None = None
        self._streams = 0
        self._streams_of: Counter[str] = Counter()  # open streams per key id
        self._buckets = token_bucket.Limiter(
            services.key_rate, services.key_burst, token_bucket.MemoryStorage()
        )

    # -- routing --------------------------------------------------------------------------

    async def _routed(
        self,
        request: web.Request,
        kind: str,
        key: str,
        local: Callable[[], Awaitable[web.Response]],
    ) -> web.Response:
        if not self._is_hop(request):
            owner = self.s.owner(kind, key)
            if owner is not None:
                return await self._proxy(request, owner)
        return await local()

    def _is_hop(self, request: web.Request) -> bool:
        """Whether ``request`` is a peer's signed hop (any other mark is ignored)."""
        now = self.s.clock().timestamp()
        mark = request.headers.get(ROUTED)
        return verify(self.s.cluster_secret, mark, request.method, request.raw_path, b"", now)

    async def _ask(self, base: str, path: str) -> tuple[int, bytes, str]:
        """GET ``path`` from the peer at ``base``, signed; its status, body and type."""
        if not self.s.cluster_secret:
            raise PeerRefused("workers cannot ask each other: EXCHANGE_CLUSTER_SECRET is not set")
        if not allowed_peer(base, self.s.peer_hosts):
            raise PeerRefused(f"{base[:80]!r} is not on an allowed peer host (EXCHANGE_PEER_HOSTS)")
        mark = sign(self.s.cluster_secret, "GET", path, b"", self.s.clock().timestamp())
        client = await self._session()
        url = URL(base.rstrip("/") + path, encoded=True)
        async with client.get(url, headers={ROUTED: mark}, allow_redirects=False) as answer:
            body = await answer.content.read(MAX_PEER_ANSWER_BYTES + 1)
            if len(body) > MAX_PEER_ANSWER_BYTES:
                raise PeerRefused(f"its answer is over {MAX_PEER_ANSWER_BYTES} bytes")
            return answer.status, body, answer.content_type

    async def _proxy(self, request: web.Request, base: str) -> web.Response:
        try:
            status, body, content_type = await self._ask(base, request.raw_path)
        except PeerRefused as exc:
            return _error(503, f"the worker owning this key cannot be asked: {exc}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return _error(503, f"the worker owning this key ({base}) did not answer: {exc}")
        return web.Response(body=body, status=status, content_type=content_type)

    async def _session(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            timeout = aiohttp.ClientTimeout(total=10, sock_connect=2)
            self._client = aiohttp.ClientSession(timeout=timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    # -- who asks ---------------------------------------------------------------------------

    def _principal(self, request: web.Request) -> Principal | None:
        """Who sent ``request``: None if it names no key; a wrong key is refused (401)."""
        keys = self.s.keys
        if keys is None:
            return ANYONE
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _refuse(401, "Authorization: expected 'Bearer <key>'")
        if not keys.ready:
            raise _refuse(503, "the API keys are being loaded")
        principal = keys.authenticate(key.strip())
        if principal is None:
            raise _refuse(401, "unknown or revoked key")
        if not self._buckets.consume(principal.key):
            wait = max(1, math.ceil(1 / self.s.key_rate))
            raise _refuse(429, f"over {self.s.key_rate:g} requests a second for this key", wait)
        return principal

    def _require(self, request: web.Request) -> Principal:
        principal = self._principal(request)
        if principal is None:
            raise _refuse(401, "this needs a key: Authorization: Bearer <key>")
        return principal

    def _may_read(self, request: web.Request, account: str) -> None:
        """Refuse unless the key may read ``account``; a peer's hop was checked by the peer."""
        if not self._is_hop(request):
            _check_read(self._principal(request), account)

    def _acting_as(self, principal: Principal, named: str | None, verb: str) -> str | None:
        """The account a request acts for: the key's; one naming another account is 403.
        With keys off, the account the request names."""
        if self.s.keys is None:
            return named
        if named and named != principal.account:
            raise _refuse(403, f"account: this key {verb} for {principal.account!r} only")
        return principal.account

    async def whoami(self, request: web.Request) -> web.Response:
        principal = self._require(request)
        return _json(
            {
                "account": principal.account or None,
                "admin": principal.admin,
                "auth": self.s.keys is not None,
            }
        )

    def _books(self) -> MatchingState:
        """The matching agent's books, read only; 503 while they are being restored."""
        if self.s.matching.stale:
            raise _refuse(503, "the order books are being restored")
        return self.s.matching

    def _known(self, instrument: str) -> bool:
        return instrument in self._books().books or self.s.tape.head(instrument) is not None

    def _instrument(self, request: web.Request) -> str:
        instrument = request.match_info["instrument"]
        if not INSTRUMENT.match(instrument):
            raise _refuse(400, f"instrument: {instrument[:20]!r} is not an instrument symbol")
        return instrument

    # -- instruments ------------------------------------------------------------------------

    def _local_instruments(self) -> list[dict[str, Any]]:
        state = self._books()
        rows = []
        for instrument in sorted(state.books):
            book = state.books[instrument]
            head = self.s.tape.head(instrument) or {}
            rows.append(
                {
                    "instrument": instrument,
                    "last_price": head.get("last_price"),
                    "volume": head.get("volume", Decimal(0)),
                    "trades": head.get("trades", 0),
                    "best_bid": book.best_bid(),
                    "best_ask": book.best_ask(),
                    "resting_orders": len(book),
                }
            )
        return rows

    async def all_instruments(self, request: web.Request | None = None) -> list[dict[str, Any]]:
        rows = {row["instrument"]: row for row in self._local_instruments()}
        if request is not None and (self._is_hop(request) or request.query.get("scope") == "local"):
            return list(rows.values())
        for peer in self.s.peers():
            try:
                status, body, _ = await self._ask(peer, "/instruments?scope=local")
                for row in loads(body).get("instruments", []) if status == 200 else []:
                    rows.setdefault(row["instrument"], row)
            except (PeerRefused, TimeoutError, aiohttp.ClientError, ValueError):
                continue  # a worker that does not answer contributes nothing
        return [rows[name] for name in sorted(rows)]

    async def instruments(self, request: web.Request) -> web.Response:
        return _json({"instruments": await self.all_instruments(request)})

    # -- per instrument ------------------------------------------------------------------

    async def orderbook(self, request: web.Request) -> web.Response:
        instrument = self._instrument(request)
        depth = _int_param(request, "depth", 10, 1, 1000)

        async def local() -> web.Response:
            book = self._books().books.get(instrument)
            if book is None:
                return _error(404, f"unknown instrument {instrument!r}")

            def side(levels: Any) -> list[dict[str, Any]]:
                return [
                    {"price": lv.price, "quantity": lv.quantity, "orders": lv.count}
                    for lv in levels
                ]

            def top(book_side: Any) -> list[dict[str, Any]]:
                level = book_side.best()
                if level is None:
                    return []
                return [
                    {"quantity": r.remaining, "timestamp": r.order.timestamp.isoformat()}
                    for r in list(level.live_orders())[:10]
                ]

            return _json(
                {
                    "instrument": instrument,
                    "best_bid": book.best_bid(),
                    "best_ask": book.best_ask(),
                    "bids": side(book.bids.depth(depth)),
                    "asks": side(book.asks.depth(depth)),
                    "top": {"bids": top(book.bids), "asks": top(book.asks)},
                    "resting_orders": len(book),
                    "next_seq": book.next_seq,
                }
            )

        return await self._routed(request, "instrument", instrument, local)

    async def _tape_view(
        self, request: web.Request, answer: Callable[[str], dict[str, Any]]
    ) -> web.Response:
        """A view of one instrument's trade-derived state, answered by its owner."""
        instrument = self._instrument(request)

        async def local() -> web.Response:
            if not self._known(instrument):
                return _error(404, f"unknown instrument {instrument!r}")
            return _json({"instrument": instrument, **answer(instrument)})

        return await self._routed(request, "instrument", instrument, local)

    async def trades(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 50, 1, TAPE_SIZE)
        return await self._tape_view(
            request,
            lambda instrument: {
                "trades": [public_trade(t) for t in self.s.tape.recent(instrument, limit)]
            },
        )

    async def bars(self, request: web.Request) -> web.Response:
        def answer(instrument: str) -> dict[str, Any]:
            window = self.s.bars.window(instrument)
            current = window.open_bar
            return {
                "bar_seconds": self.s.bars.bar_seconds,
                "windows": list(self.s.bars.windows),
                "bars": self.s.tape.history(
                    instrument, current.start.isoformat() if current else None
                ),
                "open": None
                if current is None
                else self.s.bars.record(instrument, window, current, False),
            }

        return await self._tape_view(request, answer)

    async def profit(self, request: web.Request) -> web.Response:
        def answer(instrument: str) -> dict[str, Any]:
            window = self.s.profits.window(instrument)
            n = self.s.profits.windows[0]

            def record(bar: Any) -> dict[str, Any] | None:
                if bar is None:
                    return None
                figures = window_profit(window, bar, n)
                return {
                    "bar_start": bar.start.isoformat(),
                    "opening_price": figures.opening_price,
                    "closing_price": figures.closing_price,
                    "profit": figures.profit,
                }

            return {
                "window": n,
                "current": record(window.open_bar),
                "previous": record(window.closed[-1] if window.closed else None),
            }

        return await self._tape_view(request, answer)

    # -- per account -------------------------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        if not ACCOUNT.match(account):
            return _error(400, f"account: {account[:20]!r} is not an account name")
        self._may_read(request, account)

        async def local() -> web.Response:
            instruments = self.s.ledger.instruments(account)
            if not instruments:
                return _error(404, f"unknown account {account!r}")
            prices = {row["instrument"]: row["last_price"] for row in await self.all_instruments()}
            positions, totals = (
                [],
                {"realized": Decimal(0), "unrealized": Decimal(0), "total": Decimal(0)},
            )
            for instrument in instruments:
                position = self.s.ledger.position(account, instrument)
                mark = prices.get(instrument)
                if mark is None:  # the instrument's owner did not answer: last own fill price
                    mark = position.lots[-1].price if position.lots else Decimal(0)
                record = pnl_record(account, instrument, position, Decimal(mark))
                positions.append(record)
                for key in totals:
                    totals[key] += record[key]
            return _json({"account": account, "positions": positions, **totals})

        return await self._routed(request, "account", account, local)

    # -- order entry -------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        principal = self._require(request)
        # A form on another site can post text/plain through a trader's browser, never
        # application/json without a CORS preflight, which this server does not grant.
        if request.content_type != "application/json":
            return _error(415, "Content-Type: expected application/json")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, f"body: over {MAX_BODY_BYTES} bytes")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, f"body: over {MAX_BODY_BYTES} bytes")
        try:
            body = loads(raw)
        except RecursionError:
            return _error(400, "body: not JSON: nested too deeply")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"body: not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, f"body: expected a JSON object, got {type(body).__name__}")
        account = self._acting_as(principal, body.get("account"), "trades")
        if account:
            body["account"] = account
        # The client's id (or none: a random one) is scoped to its account, so that a retry
        # maps to the same order, which the book refuses, and accounts cannot collide.
        client_id = body.pop("client_order_id", body.get("id"))
        if client_id is None:
            body["id"] = self.s.new_order_id()
        elif type(client_id) not in (str, int) or not CLIENT_ORDER_ID.match(str(client_id)):
            return _error(400, "client_order_id: 1 to 64 letters, digits or . _ : -")
        else:
            body["id"] = exchange_order_id(body.get("account") or "", str(client_id))
        body.setdefault("order_timestamp", self.s.clock().isoformat())
        if client_id is None:
            return await self._publish(body, "SUBMITTED")
        return await self._publish(body, "SUBMITTED", client_order_id=str(client_id))

    async def cancel(self, request: web.Request) -> web.Response:
        account = self._acting_as(self._require(request), request.query.get("account"), "cancels")
        body = {
            "action": "CANCEL",
            "id": request.match_info["id"],
            "instrument": request.query.get("instrument"),
            "order_timestamp": self.s.clock().isoformat(),
        }
        if account:  # only the order's owner cancels it (the engine checks)
            body["account"] = account
        return await self._publish(body, "CANCEL_SUBMITTED")

    async def _publish(self, body: dict[str, Any], status: str, **answer: str) -> web.Response:
        """Validate like the order stream does, then publish keyed by instrument; 202 with
        the command's id, instrument, ``status`` and ``answer``."""
        try:
            command = decode_order(body)
        except InvalidOrder as exc:
            return _error(400, *exc.reasons)
        await self.s.publish(command.instrument, dumps(encode_order(command)))
        return _json(
            {"id": command.id, "instrument": command.instrument, "status": status, **answer}, 202
        )

    # -- live push ---------------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= self.s.max_streams:  # each holds a queue of up to 1,000 events
            raise _refuse(503, f"this worker serves {self.s.max_streams} streams already", 5)
        principal = self._principal(request)
        key = principal.key if principal is not None else ""
        if key and self._streams_of[key] >= self.s.max_streams_per_key:
            raise _refuse(429, f"this key holds {self.s.max_streams_per_key} streams already", 5)
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
            _check_read(principal, account)
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
        broadcaster = self.s.broadcaster
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

    # -- operations --------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        if self.s.healthy():
            return _json({"status": "ok"})
        return _json({"status": "recovering"}, status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.s.metrics.text(), headers={"Content-Type": CONTENT_TYPE})

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install(application: web.Application, services: Services) -> Api:
    """Add the exchange's routes to an aiohttp application."""
    api = Api(services)
    application.on_response_prepare.append(_secure)

    @web.middleware
    async def admin_only(request: web.Request, handler: Any) -> web.StreamResponse:
        guarded = request.path.startswith(ADMIN_PATHS) and not api._is_hop(request)
        if guarded and not api._require(request).admin:
            raise _refuse(403, "an admin key is needed")
        return await handler(request)

    application.middlewares.append(admin_only)
    router = application.router
    router.add_get("/instruments", api.instruments)
    router.add_get("/orderbook/{instrument}", api.orderbook)
    router.add_get("/trades/{instrument}", api.trades)
    router.add_get("/bars/{instrument}", api.bars)
    router.add_get("/profit/{instrument}", api.profit)
    router.add_get("/accounts/{account}", api.account)
    router.add_post("/orders", api.submit)
    router.add_delete("/orders/{id}", api.cancel)
    router.add_get("/stream", api.stream)
    router.add_get("/whoami", api.whoami)
    router.add_get("/health", api.health)
    router.add_get("/metrics", api.metrics)
    router.add_get("/", api.dashboard)
    router.add_static("/static/", STATIC)
    application.on_cleanup.append(lambda _: api.close())
    return api
