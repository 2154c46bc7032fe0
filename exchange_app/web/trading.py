"""Order entry: ``POST /orders`` and ``DELETE /orders/{id}``, for a key's own account.

An order is validated like the order stream validates it, checked against its
instrument's listing (listed, on the tick, in whole lots: ``listings.py``), and
published to its instrument's home partition; the answer (202) says it was sent, the execution
reports on ``/stream`` say what it did.

The worker stamps the order's ``order_timestamp`` (its event time, which
decides the order's bar) with its own clock; a time the client sent is kept
beside it as ``client_timestamp`` and changes nothing.

A client names its order with its own ``client_order_id`` (or the original
format's ``id``). The exchange's order id is made from it and the account, so
a retry gets the same id, which the book refuses (``engine/recent.py``), and
two accounts' equal ids never meet.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from exchange_app.engine import InvalidOrder, Order
from exchange_app.listings import Listings
from exchange_app.wire import ORDER_FIELDS, decode_order, dumps, encode_order, event_time, loads

from .answers import error, json, refuse
from .gate import Gate
from .server import read_body

__all__ = [
    "BODY_FIELDS",
    "CLIENT_ORDER_ID",
    "MAX_BODY_BYTES",
    "TradingViews",
    "exchange_order_id",
    "random_id",
    "unknown_fields",
]

#: The largest request body the API reads (an order is a few hundred bytes): larger is 413.
MAX_BODY_BYTES = 16_384
#: A client's own order id (``client_order_id``, or the original format's ``id``).
CLIENT_ORDER_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")  # \Z: "$" passes "abc\n"


#: The fields a ``POST /orders`` body may have: an order's, and the client's own id.
BODY_FIELDS = ORDER_FIELDS | {"client_order_id"}
#: Unknown fields named in one refusal; more are counted.
NAMED_UNKNOWN = 10


def unknown_fields(body: dict[str, Any]) -> list[str]:
    """A refusal's reasons for the fields of ``body`` no order has (none: an empty list).

    The orders topic ignores unknown fields; a person typing a request deserves to know
    that ``"tif": "IOC"`` was not ``time_in_force``."""
    unknown = sorted(name for name in body if name not in BODY_FIELDS)
    reasons = [f"{name[:64]}: unknown field" for name in unknown[:NAMED_UNKNOWN]]
    if len(unknown) > NAMED_UNKNOWN:
        reasons.append(f"and {len(unknown) - NAMED_UNKNOWN} more unknown fields")
    return reasons


def random_id() -> int:
    return secrets.randbits(52) or 1  # JSON-safe in JavaScript (< 2**53)


def exchange_order_id(account: str, client_order_id: str) -> int:
    """The exchange's id of an account's own order id: a retry gets the same one (and the
    book refuses it, ``engine/recent.py``), another account's equal id another one.
    52 bits of BLAKE2b: JSON-safe; two ids meeting in one book's horizon is a reject."""
    digest = hashlib.blake2b(f"{account}\n{client_order_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 12) or 1


class TradingViews:
    def __init__(
        self,
        gate: Gate,
        publish: Callable[[str, bytes], Awaitable[None]],
        clock: Callable[[], datetime],
        new_order_id: Callable[[], int] = random_id,
        listings: Listings | None = None,
    ) -> None:
        self.gate = gate
        self.publish = publish
        self.clock = clock
        self.new_order_id = new_order_id
        #: what a new order is checked against before it is published (None: not loaded)
        self.listings = listings or Listings()

    async def submit(self, request: web.Request) -> web.Response:
        principal = self.gate.require(request)
        # A form on another site can post text/plain through a trader's browser, never
        # application/json without a CORS preflight, which this server does not grant.
        if request.content_type != "application/json":
            return error(415, "Content-Type: expected application/json")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return error(413, f"body: over {MAX_BODY_BYTES} bytes")
        raw = await read_body(request, MAX_BODY_BYTES)  # whole: it may come in pieces
        if len(raw) > MAX_BODY_BYTES:
            return error(413, f"body: over {MAX_BODY_BYTES} bytes")
        try:
            body = loads(raw)
        except RecursionError:
            return error(400, "body: not JSON: nested too deeply")
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"body: not JSON: {exc}")
        if not isinstance(body, dict):
            return error(400, f"body: expected a JSON object, got {type(body).__name__}")
        if unknown := unknown_fields(body):
            return error(400, *unknown)
        account = self.gate.acting_as(principal, body.get("account"), "trades")
        if account:
            body["account"] = account
        # The client's id (or none: a random one) is scoped to its account, so that a retry
        # maps to the same order, which the book refuses, and accounts cannot collide.
        client_id = body.pop("client_order_id", body.get("id"))
        if client_id is None:
            body["id"] = self.new_order_id()
        elif type(client_id) not in (str, int) or not CLIENT_ORDER_ID.match(str(client_id)):
            return error(400, "client_order_id: 1 to 64 letters, digits or . _ : -")
        else:
            body["id"] = exchange_order_id(body.get("account") or "", str(client_id))
        # Event time is the exchange's: an order's time decides its bar, so a client
        # must not choose it. A client's own time is kept beside it, for its records.
        kept: dict[str, str] = {}
        if body.get("order_timestamp") is not None:
            try:
                kept["client_timestamp"] = event_time(body["order_timestamp"]).isoformat()
            except ValueError as exc:
                return error(400, f"order_timestamp: {exc}")
        body["order_timestamp"] = self.clock().isoformat()
        echo = {} if client_id is None else {"client_order_id": str(client_id)}
        return await self._publish(body, "SUBMITTED", kept, **echo)

    async def cancel(self, request: web.Request) -> web.Response:
        principal = self.gate.require(request)
        account = self.gate.acting_as(principal, request.query.get("account"), "cancels")
        body = {
            "action": "CANCEL",
            "id": request.match_info["id"],
            "instrument": request.query.get("instrument"),
            "order_timestamp": self.clock().isoformat(),
        }
        if account:  # only the order's owner cancels it (the engine checks)
            body["account"] = account
        return await self._publish(body, "CANCEL_SUBMITTED", {})

    async def _publish(
        self, body: dict[str, Any], status: str, kept: dict[str, str], **answer: str
    ) -> web.Response:
        """Validate like the order stream does, then publish keyed by instrument with the
        fields ``kept``; 202 with the command's id, instrument, ``status``, ``kept`` and
        ``answer``."""
        try:
            command = decode_order(body)
        except InvalidOrder as exc:
            return error(400, *exc.reasons)
        if isinstance(command, Order):  # a cancel is the book's to answer, listed or not
            if not self.listings.ready:
                raise refuse(503, "the listings are being loaded")
            if reasons := self.listings.reasons(command):
                return error(400, *reasons)
        await self.publish(command.instrument, dumps({**encode_order(command), **kept}))
        reply = {"id": command.id, "instrument": command.instrument, "status": status}
        return json({**reply, **kept, **answer}, 202)
