"""The HTTP API described as OpenAPI 3.1, served at ``GET /openapi.json``.

One description, kept beside the views it describes: every route ``views.install``
adds, its parameters with the bounds the views enforce, who may call it (the
``bearer`` scheme; an admin key where the operation says ``x-admin-key``), and
every status it can answer with its shape. A refusal is always
``{"errors": [reason, ...]}``. The suite runs schemathesis against a live
worker with this description (``tests/integration/test_openapi.py``): any 5xx,
undeclared status, or answer outside its schema fails it.

Faust's own ``/table/`` and ``/router/`` views (admin only) are not described:
they are Faust's, not the exchange's.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from aiohttp import web

from tables.tape import TAPE_SIZE

from .answers import json
from .trading import MAX_BODY_BYTES

__all__ = ["SPEC", "openapi"]

#: The JSON Schema forms of the views' patterns (``answers.py``, ``trading.py``).
INSTRUMENT_PATTERN = "^[A-Z0-9][A-Z0-9._-]{0,15}$"
ACCOUNT_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
CLIENT_ORDER_ID_PATTERN = "^[A-Za-z0-9._:-]{1,64}$"
#: The files the dashboard's pages load (``/static/{file}``).
STATIC_FILES = sorted(path.name for path in (Path(__file__).parent / "static").iterdir())
#: The types the static files are served as: by their names, as aiohttp's file answer
#: guesses them (JavaScript is either name, by the platform's table).
STATIC_TYPES = sorted(
    {mimetypes.guess_type(name)[0] or "application/octet-stream" for name in STATIC_FILES}
    | {"text/javascript", "application/javascript"}
)
#: The largest page a listing answers (``?limit=``).
MAX_PAGE = 1000
#: The largest order-book depth a side (``?depth=``).
MAX_DEPTH = 1000


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


NUMBER = {"type": "number"}
MAYBE_NUMBER = {"type": ["number", "null"]}
TIME = {"type": "string", "description": "ISO 8601, UTC"}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


SCHEMAS: dict[str, Any] = {
    "Errors": _object(
        ["errors"],
        errors={"type": "array", "items": {"type": "string"}, "minItems": 1},
    ),
    "Instrument": _object(
        ["instrument", "last_price", "volume", "best_bid", "best_ask"],
        instrument={"type": "string"},
        last_price=MAYBE_NUMBER,
        volume=NUMBER,
        trades={"type": "integer", "minimum": 0},
        best_bid=MAYBE_NUMBER,
        best_ask=MAYBE_NUMBER,
        resting_orders={"type": "integer", "minimum": 0},
    ),
    "Level": _object(
        ["price", "quantity", "orders"],
        price=NUMBER,
        quantity=NUMBER,
        orders={"type": "integer", "minimum": 1},
    ),
    "TopOrder": {
        **_object(["quantity", "timestamp"], quantity=NUMBER, timestamp=TIME),
        "additionalProperties": False,  # market data: no account, no order id
    },
    "OrderBook": _object(
        ["instrument", "bids", "asks", "top"],
        instrument={"type": "string"},
        best_bid=MAYBE_NUMBER,
        best_ask=MAYBE_NUMBER,
        bids={"type": "array", "items": _ref("Level")},
        asks={"type": "array", "items": _ref("Level")},
        top=_object(
            ["bids", "asks"],
            bids={"type": "array", "items": _ref("TopOrder")},
            asks={"type": "array", "items": _ref("TopOrder")},
        ),
        resting_orders={"type": "integer", "minimum": 0},
        next_seq={"type": "integer", "minimum": 1},
    ),
    "PublicTrade": {
        **_object(
            ["trade_id", "seq", "instrument", "quantity", "price"],
            trade_id={"type": "string"},
            seq={"type": "integer", "minimum": 1},
            instrument={"type": "string"},
            quantity=NUMBER,
            price=NUMBER,
            aggressor={"enum": ["BUY", "SELL"]},
            timestamp=TIME,
            update_timestamp={"type": "string", "description": "%Y/%m/%d, %H:%M:%S"},
        ),
        "additionalProperties": False,  # market data: no account, no order id
    },
    "Bar": _object(
        ["instrument", "bar_start", "bar_end", "open", "high", "low", "close", "volume"],
        instrument={"type": "string"},
        bar_start=TIME,
        bar_end=TIME,
        open=NUMBER,
        high=NUMBER,
        low=NUMBER,
        close=NUMBER,
        volume=NUMBER,
        vwap=MAYBE_NUMBER,
        trade_count={"type": "integer", "minimum": 0},
        sma={"type": "object", "additionalProperties": MAYBE_NUMBER},
        final={"type": "boolean"},
    ),
    "Profit": _object(
        ["bar_start", "opening_price", "closing_price", "profit"],
        bar_start=TIME,
        opening_price=MAYBE_NUMBER,
        closing_price=MAYBE_NUMBER,
        profit=MAYBE_NUMBER,
    ),
    "Position": _object(
        ["account", "instrument", "position", "realized", "unrealized", "total"],
        account={"type": "string"},
        instrument={"type": "string"},
        position=NUMBER,
        average_cost=MAYBE_NUMBER,
        cost_basis=MAYBE_NUMBER,
        realized=NUMBER,
        unrealized=NUMBER,
        total=NUMBER,
        mark_price=MAYBE_NUMBER,
    ),
    "Order": {
        **_object(
            ["instrument", "trxn_type", "quantity"],
            client_order_id={
                "type": "string",
                "pattern": CLIENT_ORDER_ID_PATTERN,
                "description": "the client's own id: a retry with it gets the same order id",
            },
            instrument={"type": "string", "pattern": INSTRUMENT_PATTERN},
            trxn_type={"enum": ["BUY", "SELL"]},
            quantity={
                "oneOf": [
                    {"type": "number", "exclusiveMinimum": 0, "maximum": 1e12},
                    {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,8})?$"},
                ]
            },
            price={
                "oneOf": [
                    {"type": "number", "exclusiveMinimum": 0, "maximum": 1e12},
                    {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,8})?$"},
                ],
                "description": "a LIMIT order's limit; a MARKET order has none",
            },
            order_type={"enum": ["LIMIT", "MARKET"], "default": "LIMIT"},
            time_in_force={"enum": ["GTC", "IOC", "FOK"], "default": "GTC"},
            account={
                "type": "string",
                "pattern": ACCOUNT_PATTERN,
                "description": "the key's own account (another is 403); omit it",
            },
            order_timestamp={
                "type": "string",
                "description": "the client's own time, kept as client_timestamp: the "
                "exchange stamps the order's event time itself",
            },
            id={
                "oneOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": CLIENT_ORDER_ID_PATTERN},
                ],
                "description": "the original format's id: taken as client_order_id when "
                "there is none",
            },
            action={"enum": ["NEW"], "default": "NEW"},
        ),
        # a misspelt field (tif for time_in_force) would silently be a different order
        "additionalProperties": False,
        "description": f"at most {MAX_BODY_BYTES} bytes; any other field is a 400 naming it",
    },
    "Submitted": _object(
        ["id", "instrument", "status"],
        id={"type": "integer", "minimum": 1},
        instrument={"type": "string"},
        status={"enum": ["SUBMITTED", "CANCEL_SUBMITTED"]},
        client_order_id={"type": "string"},
        client_timestamp=TIME,
    ),
}

STEP = {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}
SCHEMAS["Listing"] = _object(
    ["instrument", "tick_size", "lot_size", "band_pct", "status"],
    instrument={"type": "string"},
    tick_size=NUMBER,
    lot_size=NUMBER,
    band_pct=NUMBER,
    status={"enum": ["LISTED", "DELISTED"]},
)
SCHEMAS["ListingSteps"] = {
    **_object(
        ["tick_size", "lot_size", "band_pct"],
        tick_size={**STEP, "description": "a price is a whole number of ticks"},
        lot_size={**STEP, "description": "a quantity is a whole number of lots"},
        band_pct={
            **STEP,
            "description": "how far, in percent, an order's price may be from the last trade",
        },
    ),
    "description": "a JSON number or decimal string each",
}

NEXT_CURSOR = {
    "type": ["string", "null"],
    "description": "the cursor of the next page; null on the last",
}
SCHEMAS["Instruments"] = _object(
    ["instruments"],
    instruments={"type": "array", "items": _ref("Instrument")},
    next_cursor=NEXT_CURSOR,
)
SCHEMAS["Account"] = _object(
    ["account", "positions", "realized", "unrealized", "total"],
    account={"type": "string"},
    positions={"type": "array", "items": _ref("Position")},
    realized=NUMBER,
    unrealized=NUMBER,
    total=NUMBER,
    next_cursor=NEXT_CURSOR,
)


# -- responses ---------------------------------------------------------------------------

_REASONS = {
    400: "a parameter or the body is not what the operation takes; every reason is listed",
    401: "a key is needed, or the one sent is malformed, unknown or revoked",
    403: "the key may not do this (another account's, or not an admin key)",
    404: "no such instrument, account or path",
    405: "the path takes other methods",
    408: "the request's body did not arrive in time",
    413: "the body is too large",
    415: "the body is not application/json",
    429: "too many requests (per key) or failed authentications (per address); see Retry-After",
    503: "the worker is restoring its state, loading its keys, or cannot reach the worker "
    "that owns this key; see Retry-After",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _refusals(*statuses: int) -> dict[str, Any]:
    """Every operation may be refused for a key, a rate, or readiness, or be misrouted."""
    chosen = sorted({401, 404, 405, 429, 503, *statuses})
    return {
        str(status): {"description": _REASONS[status], "content": _json(_ref("Errors"))}
        for status in chosen
    }


def _ok(description: str, schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": _json(schema)}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


INSTRUMENT = _path(
    "instrument",
    {"type": "string", "pattern": INSTRUMENT_PATTERN, "examples": ["TCS"]},
    "an instrument symbol",
)
ACCOUNT = _path(
    "account",
    {"type": "string", "pattern": ACCOUNT_PATTERN, "examples": ["alice"]},
    "an account name",
)
PAGE = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
        "names a page holds",
    ),
    _query(
        "cursor",
        {"type": "string", "maxLength": 128},
        "the next_cursor of the previous page (opaque)",
    ),
]
#: Anyone may call it; a key is checked if one is sent.
ANYONE: list[dict[str, list[str]]] = [{}, {"bearer": []}]
KEY: list[dict[str, list[str]]] = [{"bearer": []}]


def _market(summary: str, schema: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["market data"],
            "security": ANYONE,
            "parameters": [INSTRUMENT, *extra],
            "responses": {**_ok(summary, schema), **_refusals(400)},
        }
    }


PATHS: dict[str, Any] = {
    "/instruments": {
        "get": {
            "summary": "every worker's instruments, a page at a time by name",
            "tags": ["market data"],
            "security": ANYONE,
            "parameters": [
                *PAGE,
                _query("scope", {"enum": ["local"]}, "this worker's instruments only"),
            ],
            "responses": {
                **_ok("instruments: last price, volume, best bid and ask", _ref("Instruments")),
                **_refusals(400),
            },
        }
    },
    "/orderbook/{instrument}": _market(
        "price levels per side, and the orders at the top (quantities and times)",
        _ref("OrderBook"),
        _query(
            "depth",
            {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH, "default": 10},
            "price levels a side",
        ),
    ),
    "/trades/{instrument}": _market(
        "recent trades, newest first, without who traded",
        _object(
            ["instrument", "trades"],
            instrument={"type": "string"},
            trades={"type": "array", "items": _ref("PublicTrade")},
        ),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": TAPE_SIZE, "default": 50},
            "trades at most",
        ),
    ),
    "/bars/{instrument}": _market(
        "recent final bars and the open bar, with every SMA",
        _object(
            ["instrument", "bar_seconds", "windows", "bars", "open"],
            instrument={"type": "string"},
            bar_seconds={"type": "integer", "minimum": 1},
            windows={"type": "array", "items": {"type": "integer", "minimum": 1}},
            bars={"type": "array", "items": _ref("Bar")},
            open=_nullable(_ref("Bar")),
        ),
    ),
    "/profit/{instrument}": _market(
        "window profit of the open and of the last closed bar",
        _object(
            ["instrument", "window", "current", "previous"],
            instrument={"type": "string"},
            window={"type": "integer", "minimum": 1},
            current=_nullable(_ref("Profit")),
            previous=_nullable(_ref("Profit")),
        ),
    ),
    "/accounts/{account}": {
        "get": {
            "summary": "an account's positions and P&L, a page of positions at a time",
            "description": "the key's own account; an admin key may read any",
            "tags": ["accounts"],
            "security": KEY,
            "parameters": [ACCOUNT, *PAGE],
            "responses": {
                **_ok("positions marked to the last prices, and their totals", _ref("Account")),
                **_refusals(400, 403),
            },
        }
    },
    "/whoami": {
        "get": {
            "summary": "the key's account and whether it is an admin key",
            "tags": ["accounts"],
            "security": KEY,
            "responses": {
                **_ok(
                    "who the key is",
                    _object(
                        ["account", "admin", "auth"],
                        account={"type": ["string", "null"]},
                        admin={"type": "boolean"},
                        auth={"type": "boolean", "description": "false: authentication is off"},
                    ),
                ),
                **_refusals(),
            },
        }
    },
    "/orders": {
        "post": {
            "summary": "send an order for the key's own account",
            "description": "validated like the order stream, checked against its listing, "
            "stamped with the worker's clock and published; the execution reports on "
            "/stream say what it did",
            "tags": ["trading"],
            "security": KEY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _ref("Order"),
                        "example": {
                            "client_order_id": "o-1",
                            "instrument": "TCS",
                            "trxn_type": "BUY",
                            "quantity": 5,
                            "price": 15.25,
                        },
                    }
                },
            },
            "responses": {
                **_ok("sent", _ref("Submitted"), 202),
                **_refusals(400, 403, 408, 413, 415),
            },
        }
    },
    "/orders/{id}": {
        "delete": {
            "summary": "cancel one of the key's account's resting orders",
            "tags": ["trading"],
            "security": KEY,
            "parameters": [
                _path(
                    "id",
                    {"type": "integer", "minimum": 1, "examples": [1]},
                    "the exchange's order id",
                ),
                {
                    **_query(
                        "instrument",
                        {"type": "string", "pattern": INSTRUMENT_PATTERN, "examples": ["TCS"]},
                        "the order's instrument",
                    ),
                    "required": True,
                },
                _query(
                    "account",
                    {"type": "string", "pattern": ACCOUNT_PATTERN},
                    "the key's own account (another is 403); omit it",
                ),
            ],
            "responses": {**_ok("sent", _ref("Submitted"), 202), **_refusals(400, 403)},
        }
    },
    "/listings": {
        "get": {
            "summary": "the listed instruments, a page at a time by symbol",
            "tags": ["reference data"],
            "security": ANYONE,
            "parameters": PAGE,
            "responses": {
                **_ok(
                    "tick size, lot size, price band and status of each",
                    _object(
                        ["listings", "next_cursor"],
                        listings={"type": "array", "items": _ref("Listing")},
                        next_cursor=NEXT_CURSOR,
                    ),
                ),
                **_refusals(400),
            },
        }
    },
    "/listings/{instrument}": {
        "put": {
            "summary": "list an instrument, or change its steps",
            "description": "written to the listings topic; every worker applies it within a fetch",
            "tags": ["reference data"],
            "security": KEY,
            "x-admin-key": True,
            "parameters": [INSTRUMENT],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _ref("ListingSteps"),
                        "example": {"tick_size": 0.05, "lot_size": 1, "band_pct": 10},
                    }
                },
            },
            "responses": {
                **_ok("listed", _ref("Listing")),
                **_refusals(400, 403, 408, 413, 415),
            },
        },
        "delete": {
            "summary": "delist an instrument: no new orders, resting ones may be cancelled",
            "tags": ["reference data"],
            "security": KEY,
            "x-admin-key": True,
            "parameters": [INSTRUMENT],
            "responses": {**_ok("delisted", _ref("Listing")), **_refusals(400, 403)},
        },
    },
    "/stream": {
        "get": {
            "summary": "live events as Server-Sent Events",
            "description": "market events (trades without who traded, bars, profits) to "
            "anyone; with a key also its own account's execution reports, fills and P&L; "
            "account= picks an account the key may read. A stream resumes after "
            "Last-Event-ID, or begins with a reset event when those events are gone.",
            "tags": ["live"],
            "security": ANYONE,
            "parameters": [
                _query(
                    "instrument",
                    {"type": "string", "pattern": INSTRUMENT_PATTERN},
                    "one instrument's events",
                ),
                _query(
                    "account",
                    {"type": "string", "pattern": ACCOUNT_PATTERN},
                    "an account's events (its key or an admin key)",
                ),
                _query("last_event_id", {"type": "string"}, "as the Last-Event-ID header"),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "the id of the last event received",
                },
            ],
            "responses": {
                "200": {
                    "description": "events until the client leaves",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_refusals(400, 403),
            },
        }
    },
    "/health": {
        "get": {
            "summary": "readiness: 200 once the worker has restored its state",
            "tags": ["operations"],
            "security": ANYONE,
            "responses": {
                **_ok("ready", _object(["status"], status={"const": "ok"})),
                "503": {
                    "description": "restoring its state",
                    "content": _json(_object(["status"], status={"const": "recovering"})),
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "tags": ["operations"],
            "security": KEY,
            "x-admin-key": True,
            "responses": {
                "200": {
                    "description": "the Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_refusals(403),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "this description",
            "tags": ["operations"],
            "security": ANYONE,
            "responses": {**_ok("OpenAPI 3.1", {"type": "object"}), **_refusals()},
        }
    },
    "/static/{file}": {
        "get": {
            "summary": "the dashboard's script, style and images",
            "tags": ["dashboard"],
            "security": ANYONE,
            "parameters": [_path("file", {"enum": STATIC_FILES}, "a file of the dashboard")],
            "responses": {
                "200": {
                    "description": "the file",
                    "content": {media: {"schema": {"type": "string"}} for media in STATIC_TYPES},
                },
                **_refusals(),
                # aiohttp's file answer decides as it is sent: no such file is an empty body
                **{
                    str(status): {
                        "description": f"{_REASONS[status]} (an empty body: no such file)",
                        "content": {
                            **_json(_ref("Errors")),
                            "application/octet-stream": {"schema": {"type": "string"}},
                        },
                    }
                    for status in (403, 404)
                },
            },
        }
    },
    "/": {
        "get": {
            "summary": "the trader dashboard",
            "tags": ["dashboard"],
            "security": ANYONE,
            "responses": {
                "200": {
                    "description": "its page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                **_refusals(),
            },
        }
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "exchange",
        "version": "1",
        "description": "A streaming stock exchange: market data to anyone; trading and an "
        'account\'s own views with its API key; a refusal is {"errors": [reason, ...]}.',
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "an API key (exchange keys create): Authorization: Bearer <key>. "
                "Operations marked x-admin-key need an admin key.",
            }
        },
    },
}


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: :data:`SPEC`, to anyone."""
    return json(SPEC)
