"""JSON answers and refusals shared by every view."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from exchange_app.wire import dumps

__all__ = ["ACCOUNT", "INSTRUMENT", "error", "instrument_of", "int_param", "json", "refuse"]

# \Z, not $: "$" also matches before a final newline, so "TCS\n" would pass
INSTRUMENT = re.compile(r"\A[A-Z0-9][A-Z0-9._-]{0,15}\Z")
ACCOUNT = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")

#: A whole-number query parameter as this API takes it.
_WHOLE = re.compile(r"[0-9]{1,12}")

_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


def json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: dumps(obj).decode())


def error(status: int, *messages: str) -> web.Response:
    return json({"errors": list(messages)}, status=status)


def refuse(status: int, message: str, retry_after: int = 1) -> web.HTTPException:
    """An error answer to raise; a 401 says how to authenticate, 429 and 503 when to retry."""
    headers = {"WWW-Authenticate": 'Bearer realm="exchange"'} if status == 401 else {}
    if status in (429, 503):
        headers["Retry-After"] = str(retry_after)
    return _REFUSALS[status](
        text=dumps({"errors": [message]}).decode(), content_type="application/json", headers=headers
    )


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits, and few: str.isdigit() takes "²" and int() refuses it, and int() of
    # thousands of digits raises too
    if not _WHOLE.fullmatch(raw) or not low <= int(raw) <= high:
        raise refuse(400, f"{name}: expected a whole number from {low} to {high}, got {raw[:20]!r}")
    return int(raw)


def instrument_of(request: web.Request) -> str:
    instrument = request.match_info["instrument"]
    if not INSTRUMENT.match(instrument):
        raise refuse(400, f"instrument: {instrument[:20]!r} is not an instrument symbol")
    return instrument
