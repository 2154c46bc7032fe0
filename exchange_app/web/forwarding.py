"""Faust's own forwarding (``/table/{name}/{key}/``), to allowed peers only.

Faust answers ``GET /table/{name}/{key}/`` for a key another worker holds by
repeating the request, with every header the client sent (an admin's
``Authorization`` among them), to the URL that worker advertised to the
consumer group. Any group member can advertise any URL, so unchecked this
hands the admin's key to whatever address a member names. The exchange's
router sends it on only to an address on ``EXCHANGE_PEER_HOSTS``, as the
exchange's own hops do (``peers.py``), and answers 503 for any other.
"""

from __future__ import annotations

from faust.app.router import Router
from faust.exceptions import SameNode
from faust.types.web import Request, Response, Web
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from .peers import allowed_peer

__all__ = ["PeerRouter"]


class PeerRouter(Router):
    """``app.router``: Faust's, asking only peers on the allowed hosts."""

    async def _route_req(self, dest_url: URL, web: Web, request: Request) -> Response:
        if self._urlident(dest_url) == self._urlident(self.app.conf.canonical_url):
            raise SameNode()
        hosts = self.app.settings.peer_hosts  # type: ignore[attr-defined]
        if not allowed_peer(str(dest_url), hosts):
            raise ServiceUnavailable(
                f"the worker holding this key advertises {str(dest_url)[:80]!r}, "
                "which is not on an allowed peer host (EXCHANGE_PEER_HOSTS)"
            )
        return await super()._route_req(dest_url, web, request)
