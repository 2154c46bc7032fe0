"""The outermost middleware: what no view should have to think about.

* **Absolute-form targets.** ``GET http://host/instruments HTTP/1.1`` is a
  request a server must accept (RFC 9112, 3.2.2). aiohttp routes it by its
  path but keeps the whole target as ``raw_path``, which the views pass on
  (a hop to the owning worker is ``base + raw_path``): the request goes on as
  its origin form, ``/instruments``, so nothing downstream sees a host in it.
* **Refusals in one shape.** aiohttp answers a path no route matches, or a
  method a route does not take, in plain text: they go out as every other
  refusal does, ``{"errors": [reason]}``, with their ``Allow`` header.
* **The last resort.** Client input that a view cannot parse is a 400 with
  a reason, raised where it is parsed; an exception that still escapes a view
  is a bug. It is logged with its traceback and answered as a JSON 500 in the
  shape of every other refusal, instead of aiohttp's text page. A stream that
  has already sent its headers cannot be answered again: its connection is
  closed, as aiohttp does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from .answers import error

__all__ = ["failsafe"]

log = logging.getLogger(__name__)

#: What a refusal's headers tell the client, kept when it is answered as JSON.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def failsafe(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Hand ``handler`` the origin form of the request; turn an escaped exception into a
    logged JSON 500."""
    if not request.raw_path.startswith("/"):
        request = request.clone(rel_url=request.rel_url)  # already without the host
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _as_json(exc)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path[:200])
        if request.writer.output_size:
            raise  # a stream under way: aiohttp closes the connection
        return error(500, "internal error: the request was not processed; it is logged")


def _as_json(refusal: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no such path, a method the path does not take, a body over
    its limit) in the shape of the exchange's: ``{"errors": [...]}``."""
    answer = error(refusal.status, refusal.text or refusal.reason)
    for name in _KEPT_HEADERS:
        if name in refusal.headers:
            answer.headers[name] = refusal.headers[name]
    return answer
