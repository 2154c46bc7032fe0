"""Requests between workers: signed, to known peers only, with bounded answers.

A worker answers a view for a key another worker owns by asking that worker
(one hop). The hop is marked with ``X-Exchange-Routed: <unix time>.<hmac>``,
an HMAC-SHA256 with the secret every worker shares (``EXCHANGE_CLUSTER_SECRET``)
over the method, the path with its query, the time and the body. A worker
answers a marked request locally only if the mark verifies and is at most
:data:`MAX_SKEW_SECONDS` old; any other mark is ignored, so a client cannot
make a worker skip routing, and nobody without the secret can pose as a peer.

A worker asks only addresses whose host is allowed (``EXCHANGE_PEER_HOSTS``):
a consumer-group member advertises its own URL, and without this check any
member could point the others at any address. It reads at most
:data:`MAX_PEER_ANSWER_BYTES` of an answer and waits at most 10 s.

Faust's partition assignment says which worker holds an instrument's book or
an account's positions (:class:`Cluster`'s ``owner``); the owner answers from
its own state and trusts the signed hop.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from exchange_app.wire import loads

from .answers import error

__all__ = [
    "LOOPBACK",
    "MAX_PEER_ANSWER_BYTES",
    "MAX_SKEW_SECONDS",
    "ROUTED",
    "Cluster",
    "PeerRefused",
    "allowed_peer",
    "sign",
    "verify",
]

ROUTED = "X-Exchange-Routed"
#: How old a signed hop may be (the workers' clocks may differ by a little).
MAX_SKEW_SECONDS = 30
#: The largest answer a worker takes from a peer.
MAX_PEER_ANSWER_BYTES = 4 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _mac(secret: bytes, method: str, path: str, stamp: int, body: bytes) -> str:
    message = b"\n".join((method.upper().encode(), path.encode(), str(stamp).encode(), body))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, path: str, body: bytes, now: float) -> str:
    """The ``X-Exchange-Routed`` value of a hop sent at ``now`` (unix seconds)."""
    stamp = int(now)
    return f"{stamp}.{_mac(secret, method, path, stamp, body)}"


def verify(
    secret: bytes | None, mark: str | None, method: str, path: str, body: bytes, now: float
) -> bool:
    """Whether ``mark`` is a fresh signature of this request with ``secret``."""
    if not secret or not mark:
        return False
    stamp_text, _, mac = mark.partition(".")
    if not stamp_text.isdigit() or len(stamp_text) > 12:
        return False
    stamp = int(stamp_text)
    if abs(now - stamp) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(secret, method, path, stamp, body))


def allowed_peer(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether ``url`` is an http(s) address on one of ``hosts``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in hosts


class PeerRefused(Exception):
    """This worker will not ask that peer."""


class Cluster:
    """This worker's view of the others: who owns a key, and how to ask them."""

    def __init__(
        self,
        owner: Callable[[str, str], str | None],
        peers: Callable[[], list[str]],
        secret: bytes | None,
        peer_hosts: tuple[str, ...],
        clock: Callable[[], datetime],
    ) -> None:
        self.owner = owner
        self.peers = peers
        self.secret = secret
        self.peer_hosts = peer_hosts
        self.clock = clock
        self._client: aiohttp.ClientSession | None = None

    async def routed(
        self,
        request: web.Request,
        kind: str,
        key: str,
        local: Callable[[], Awaitable[web.Response]],
    ) -> web.Response:
        """``local()`` if this worker owns ``key`` (or the request is a hop), else its owner's."""
        if not self.is_hop(request):
            owner = self.owner(kind, key)
            if owner is not None:
                return await self._proxy(request, owner)
        return await local()

    def is_hop(self, request: web.Request) -> bool:
        """Whether ``request`` is a peer's signed hop (any other mark is ignored)."""
        now = self.clock().timestamp()
        mark = request.headers.get(ROUTED)
        return verify(self.secret, mark, request.method, request.raw_path, b"", now)

    async def ask(self, base: str, path: str) -> tuple[int, bytes, str]:
        """GET ``path`` from the peer at ``base``, signed; its status, body and type."""
        if not self.secret:
            raise PeerRefused("workers cannot ask each other: EXCHANGE_CLUSTER_SECRET is not set")
        if not allowed_peer(base, self.peer_hosts):
            raise PeerRefused(f"{base[:80]!r} is not on an allowed peer host (EXCHANGE_PEER_HOSTS)")
        mark = sign(self.secret, "GET", path, b"", self.clock().timestamp())
        client = await self._session()
        url = URL(base.rstrip("/") + path, encoded=True)
        async with client.get(url, headers={ROUTED: mark}, allow_redirects=False) as answer:
            body = await answer.content.read(MAX_PEER_ANSWER_BYTES + 1)
            if len(body) > MAX_PEER_ANSWER_BYTES:
                raise PeerRefused(f"its answer is over {MAX_PEER_ANSWER_BYTES} bytes")
            return answer.status, body, answer.content_type

    async def gather(self, path: str, field: str) -> list[Any]:
        """The ``field`` lists of every peer's JSON answer to ``path``; a peer that does not
        answer contributes nothing."""
        found: list[Any] = []
        for peer in self.peers():
            try:
                status, body, _ = await self.ask(peer, path)
                if status == 200:
                    found += loads(body).get(field, [])
            except (PeerRefused, TimeoutError, aiohttp.ClientError, ValueError):
                continue
        return found

    async def _proxy(self, request: web.Request, base: str) -> web.Response:
        try:
            status, body, content_type = await self.ask(base, request.raw_path)
        except PeerRefused as exc:
            return error(503, f"the worker owning this key cannot be asked: {exc}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return error(503, f"the worker owning this key ({base}) did not answer: {exc}")
        return web.Response(body=body, status=status, content_type=content_type)

    async def _session(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            timeout = aiohttp.ClientTimeout(total=10, sock_connect=2)
            self._client = aiohttp.ClientSession(timeout=timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
