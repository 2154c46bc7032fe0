"""How long a client may take to send a request: the web server's timeouts and limits.

A connection that sends half a request and waits holds a socket and a slot of
the worker's loop for as long as the server lets it (slowloris). Two clocks
bound that:

* **Headers**: aiohttp has no timeout of its own for a request's headers, but
  its keep-alive timer is armed when a connection opens and after each answer,
  and closes a connection that has not delivered a whole request by then; a
  half-sent header does not restart it. So ``header_timeout`` is passed as
  aiohttp's ``keepalive_timeout``: a request's headers must arrive within it of
  the connection opening (or of the previous answer), and an idle kept-alive
  connection is closed then too.
* **Body**: a view reads its request's body itself, whole (:func:`read_body`:
  one read returns only what has arrived, so a body sent in pieces would be
  cut); :func:`body_deadline` gives it ``body_timeout`` seconds from the
  headers' arrival. A body still incomplete then is answered 408 and the
  connection closed.

Request lines and header fields keep aiohttp's limits (8,190 bytes each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Middleware

from .answers import error

__all__ = ["body_deadline", "read_body", "server_options"]

#: The longest request line and header field (aiohttp's default): longer is 400.
MAX_LINE_BYTES = 8_190


def server_options(header_timeout: float) -> dict[str, Any]:
    """Keyword arguments for aiohttp's ``AppRunner`` (its request handler)."""
    return {
        "keepalive_timeout": header_timeout,
        "max_line_size": MAX_LINE_BYTES,
        "max_field_size": MAX_LINE_BYTES,
    }


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body whole, or its first ``limit + 1`` bytes if it is longer (the
    caller answers 413)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:  # the end of the body
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class BodyTimeout(Exception):
    """A request's body did not arrive in time; raised from the view's read."""


def _expire(body: StreamReader, timeout: float) -> None:
    if not body.is_eof():
        body.set_exception(BodyTimeout(f"body: not received within {timeout:g} s"))


def body_deadline(timeout: float) -> Middleware:
    """A request's body must arrive within ``timeout`` seconds: 408 and the connection
    closed if the view is still waiting for it then."""

    @web.middleware
    async def deadline(request: web.Request, handler: Callable) -> web.StreamResponse:
        body = request.content
        if body.is_eof():  # no body, or all of it here already
            return await handler(request)  # type: ignore[no-any-return]
        timer = asyncio.get_running_loop().call_later(timeout, _expire, body, timeout)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except BodyTimeout as exc:
            # Answered and closed here: aiohttp would otherwise read on after the answer.
            response = error(408, str(exc))
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
            return response
        finally:
            timer.cancel()

    return deadline
