"""The HTTP API and the dashboard: the routes, and the services the worker injects.

The views live by concern: ``market.py`` (public market data), ``trading.py``
(order entry), ``accounts.py`` (an account's positions, the key's identity),
``live.py`` (``/stream``), ``peers.py`` (answers from the worker owning a key:
one signed hop to an allowed peer), ``gate.py`` (keys, rate limits, who may
read what). They read the agents' state only through a
:class:`~tables.query.StateQuery`, which answers with plain values: a view
cannot change the books or the analytics.

=====================================  ========================================
who may call: anyone
``GET /instruments``                   instruments by name: last price, volume, best bid/ask;
                                       ``?limit=N&cursor=C`` pages (``next_cursor``)
``GET /orderbook/{instrument}``        ``?depth=N`` price levels per side, orders at the top
``GET /trades/{instrument}``           ``?limit=N`` recent trades, newest first
``GET /bars/{instrument}``             recent final bars and the open bar, with every SMA
``GET /profit/{instrument}``           window profit of the open and the last closed bar
``GET /stream``                        Server-Sent Events: market events; with a key, its own
``GET /health``, ``GET /``             readiness (503 until recovered), the trader dashboard
``GET /openapi.json``                  this API described as OpenAPI 3.1 (``openapi.py``)
``GET /listings``                      the listed instruments: tick size, lot size, price band,
                                       status; paged like ``/instruments``
who may call: a key (``Authorization: Bearer``), acting as its account only
``POST /orders``                       order JSON → 202 with its id, or 400 with every reason
``DELETE /orders/{id}?instrument=X``   a CANCEL of the key's account's order → 202
``GET /accounts/{account}``            the key's own account (an admin key: any), positions
                                       paged like ``/instruments``
``GET /stream?account=A``              A's events: A's key or an admin key
``GET /whoami``                        the key's account and whether it is an admin key
who may call: an admin key
``GET /metrics``                       Prometheus text; also Faust's ``/table/``, ``/router/``
``PUT /listings/{instrument}``         list it: ``tick_size``, ``lot_size``, ``band_pct``
``DELETE /listings/{instrument}``      delist it: no new orders, resting ones may be cancelled
=====================================  ========================================

Everything else answers 401 without a key, 403 with the wrong one (``auth.py``);
``EXCHANGE_AUTH=off`` lets anyone do anything. While the books are being
restored the market and account views answer 503.

Market data (instruments, order book, trades, bars, profit) shows no account
and no order id: the orders at the top of the book are quantities and times,
and trades are prices and sizes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from exchange_app.auth import KeyRing
from exchange_app.listings import Listings
from exchange_app.metrics import CONTENT_TYPE, Metrics
from tables.query import NotReady, StateQuery

from .accounts import AccountViews
from .answers import json, refuse
from .broadcast import Broadcaster
from .failsafe import failsafe
from .gate import Gate
from .listings import ListingViews, WriteListings
from .live import LiveViews, StreamLimits
from .market import MarketViews
from .openapi import openapi
from .pages import MAX_LIMIT
from .peers import LOOPBACK, Cluster
from .server import body_deadline
from .trading import MAX_BODY_BYTES, TradingViews, exchange_order_id, random_id

__all__ = [
    "API",
    "LOOPBACK",
    "MAX_BODY_BYTES",
    "SECURITY_HEADERS",
    "Api",
    "Services",
    "exchange_order_id",
    "install",
]

STATIC = Path(__file__).parent / "static"
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


@dataclass
class Services:
    """What the views read and do; the worker wires its state, producer and peers in."""

    query: StateQuery
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
    #: this worker's web address as it advertises itself: hops are signed for one worker
    own_url: Callable[[], str] = lambda: ""
    #: the largest page (``?limit=``) the listings answer
    max_page: int = MAX_LIMIT
    #: open ``/stream`` connections this worker holds at most
    max_streams: int = 200
    #: the API keys in force; None: authentication is off and everyone is an admin
    keys: KeyRing | None = None
    #: per key: open streams, and requests a second (token bucket: rate and burst)
    max_streams_per_key: int = 5
    key_rate: float = 20.0
    key_burst: int = 40
    #: without a key: open streams per client address, and the share of max_streams
    max_streams_per_address: int = 4
    anonymous_stream_share: float = 0.75
    #: seconds between a stream's heartbeats, which find clients that went away
    stream_heartbeat: float = 2.0
    #: failed authentications per client address: a second, and at once
    auth_failure_rate: float = 1.0
    auth_failure_burst: int = 20
    #: seconds a request's body may take to arrive (``server.py``)
    body_timeout: float = 10.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_order_id: Callable[[], int] = random_id
    #: the listings new orders are checked against (``listings.py``); until ready, 503
    listings: Listings = field(default_factory=Listings)
    #: writes listings to their topic; None: applies them to ``listings`` (views alone)
    write_listings: WriteListings | None = None


class Api:
    """The views of one worker, by concern, over one set of services."""

    def __init__(self, s: Services) -> None:
        self.s = s
        self.cluster = Cluster(s.owner, s.peers, s.cluster_secret, s.peer_hosts, s.clock, s.own_url)
        self.gate = Gate(
            s.keys,
            s.key_rate,
            s.key_burst,
            self.cluster.is_hop,
            s.auth_failure_rate,
            s.auth_failure_burst,
        )
        self.market = MarketViews(s.query, self.cluster, s.max_page)
        self.accounts = AccountViews(s.query, self.gate, self.cluster, self.market, s.max_page)
        self.trading = TradingViews(
            self.gate, s.publish, s.clock, s.new_order_id, listings=s.listings
        )
        self.listings = ListingViews(self.gate, s.listings, s.write_listings, s.max_page)
        limits = StreamLimits(
            s.max_streams,
            s.max_streams_per_key,
            s.max_streams_per_address,
            s.anonymous_stream_share,
        )
        self.live = LiveViews(self.gate, s.broadcaster, limits, s.stream_heartbeat)

    async def health(self, request: web.Request) -> web.Response:
        if self.s.healthy():
            return json({"status": "ok"})
        return json({"status": "recovering"}, status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.s.metrics.text(), headers={"Content-Type": CONTENT_TYPE})

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def _ready(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except NotReady as exc:
        raise refuse(503, str(exc)) from None


#: The views an application serves, once installed.
API = web.AppKey("exchange_api", Api)


def install(application: web.Application, services: Services) -> Api:
    """Add the exchange's routes to an aiohttp application, once: Faust initialises its
    web server more than once (from the command line, and again as it starts), and every
    install would add its middlewares and its revocation listener again."""
    if API in application:
        return application[API]
    api = application[API] = Api(services)
    application.on_response_prepare.append(_secure)
    application.middlewares.insert(0, failsafe)  # outermost: sees what the others raise
    application.middlewares.append(body_deadline(services.body_timeout))
    application.middlewares.append(api.gate.middleware())
    application.middlewares.append(_ready)
    router = application.router
    router.add_get("/instruments", api.market.instruments)
    router.add_get("/orderbook/{instrument}", api.market.orderbook)
    router.add_get("/trades/{instrument}", api.market.trades)
    router.add_get("/bars/{instrument}", api.market.bars)
    router.add_get("/profit/{instrument}", api.market.profit)
    router.add_get("/accounts/{account}", api.accounts.account)
    router.add_get("/whoami", api.accounts.whoami)
    router.add_post("/orders", api.trading.submit)
    router.add_delete("/orders/{id}", api.trading.cancel)
    router.add_get("/listings", api.listings.page)
    router.add_put("/listings/{instrument}", api.listings.put)
    router.add_delete("/listings/{instrument}", api.listings.delete)
    router.add_get("/stream", api.live.stream)
    router.add_get("/health", api.health)
    router.add_get("/openapi.json", openapi)
    router.add_get("/metrics", api.metrics)
    router.add_get("/", api.dashboard)
    router.add_static("/static/", STATIC)
    application.on_cleanup.append(lambda _: api.cluster.close())
    return api
