"""Requests between workers: signed, single-use, to known peers only, with whole answers.

A worker answers a view for a key another worker owns by asking that worker
(one hop). The hop is marked with ``X-Exchange-Routed: <unix time>.<nonce>.<hmac>``,
an HMAC-SHA256 with the secret every worker shares (``EXCHANGE_CLUSTER_SECRET``)
over the method, the destination (``host:port`` of the worker asked, as it
advertises itself), the path with its query, the time, a random nonce and the
body. A worker answers a marked request locally only if the mark verifies, names
this worker, is at most :data:`MAX_SKEW_SECONDS` old and its nonce is new
(:class:`Nonces`); any other mark is ignored, so a client cannot make a worker
skip routing, nobody without the secret can pose as a peer, and a captured mark
is worth nothing: not at another worker, not twice.

A worker asks only addresses whose host is allowed (``EXCHANGE_PEER_HOSTS``):
a consumer-group member advertises its own URL, and without this check any
member could point the others at any address. It reads a peer's whole answer,
up to :data:`MAX_PEER_ANSWER_BYTES` (beyond that the request is answered 502,
never with a cut body), and waits at most 10 s.

Faust's partition assignment says which worker holds an instrument's book or
an account's positions (:class:`Cluster`'s ``owner``); the owner answers from
its own state and trusts the signed hop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
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
    "MAX_NONCES",
    "MAX_PEER_ANSWER_BYTES",
    "MAX_SKEW_SECONDS",
    "ROUTED",
    "AnswerTooLarge",
    "Cluster",
    "Nonces",
    "PeerRefused",
    "allowed_peer",
    "destination",
    "read_whole",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

ROUTED = "X-Exchange-Routed"
#: How old a signed hop may be (the workers' clocks may differ by a little).
MAX_SKEW_SECONDS = 30
#: The largest answer a worker takes from a peer.
MAX_PEER_ANSWER_BYTES = 4 * 1024 * 1024
#: Hop nonces a worker remembers at most (those of the last MAX_SKEW_SECONDS).
MAX_NONCES = 100_000
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Where a request keeps whether it is a verified hop: a nonce verifies once.
_HOP = web.RequestKey("exchange_hop", bool)


def destination(url: str) -> str:
    """The ``host:port`` a hop to the worker at ``url`` is bound to ("" for no address)."""
    try:
        parsed = URL(url)
        return f"{(parsed.host or '').lower()}:{parsed.port or ''}" if parsed.host else ""
    except (ValueError, TypeError):
        return ""


def _mac(
    secret: bytes, method: str, to: str, path: str, stamp: int, nonce: str, body: bytes
) -> str:
    message = b"\n".join(
        (method.upper().encode(), to.encode(), path.encode(), str(stamp).encode(), nonce.encode())
    )
    return hmac.new(secret, message + b"\n" + body, hashlib.sha256).hexdigest()


def sign(
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    now: float,
    *,
    to: str,
    nonce: str | None = None,
) -> str:
    """The ``X-Exchange-Routed`` value of a hop to ``to`` (a :func:`destination`) at ``now``."""
    stamp = int(now)
    nonce = nonce or secrets.token_hex(16)
    return f"{stamp}.{nonce}.{_mac(secret, method, to, path, stamp, nonce, body)}"


def verify(
    secret: bytes | None,
    mark: str | None,
    method: str,
    path: str,
    body: bytes,
    now: float,
    *,
    to: str,
) -> tuple[int, str] | None:
    """The time and nonce of ``mark`` if it is a fresh signature of this request to ``to``
    with ``secret``; None otherwise. Whether the nonce was seen before is :class:`Nonces`'."""
    if not secret or not mark or not to:
        return None
    stamp_text, _, rest = mark.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (stamp_text.isascii() and stamp_text.isdigit()) or len(stamp_text) > 12:
        return None
    if not 16 <= len(nonce) <= 64 or not nonce.isascii() or not nonce.isalnum():
        return None
    stamp = int(stamp_text)
    if abs(now - stamp) > MAX_SKEW_SECONDS:
        return None
    if not hmac.compare_digest(mac, _mac(secret, method, to, path, stamp, nonce, body)):
        return None
    return stamp, nonce


class Nonces:
    """The hop nonces seen in the last :data:`MAX_SKEW_SECONDS`: a mark is good once.

    A nonce is remembered until its mark is too old to verify anyway, so memory
    stays bounded by the hops of one skew window (and by ``limit``: when full,
    a new hop is refused rather than an unexpired nonce forgotten).
    """

    def __init__(self, limit: int = MAX_NONCES) -> None:
        self.limit = limit
        self._seen: OrderedDict[str, int] = OrderedDict()

    def first_use(self, nonce: str, stamp: int, now: float) -> bool:
        """Record ``nonce`` (of a mark made at ``stamp``); False if it was seen before."""
        while self._seen:
            oldest, made = next(iter(self._seen.items()))
            if made >= now - MAX_SKEW_SECONDS:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            return False
        if len(self._seen) >= self.limit:
            log.warning("over %s hops in %s s: refusing this one", self.limit, MAX_SKEW_SECONDS)
            return False
        self._seen[nonce] = stamp
        return True


def allowed_peer(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether ``url`` is an http(s) address on one of ``hosts``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in hosts


async def read_whole(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``answer``, however many reads it takes; :class:`AnswerTooLarge`
    beyond ``limit`` bytes (told by ``Content-Length`` before reading, if it is sent)."""
    if answer.content_length is not None and answer.content_length > limit:
        raise AnswerTooLarge(limit, answer.content_length)
    body = bytearray()
    async for chunk in answer.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(limit, None)
    return bytes(body)


class PeerRefused(Exception):
    """This worker will not ask that peer."""


class AnswerTooLarge(PeerRefused):
    """A peer's answer is longer than this worker takes."""

    def __init__(self, limit: int, length: int | None) -> None:
        told = f" (Content-Length {length})" if length is not None else ""
        super().__init__(f"its answer is over {limit} bytes{told}; ask for a smaller page")


class Cluster:
    """This worker's view of the others: who owns a key, and how to ask them."""

    def __init__(
        self,
        owner: Callable[[str, str], str | None],
        peers: Callable[[], list[str]],
        secret: bytes | None,
        peer_hosts: tuple[str, ...],
        clock: Callable[[], datetime],
        own_url: Callable[[], str] = lambda: "",
        max_answer_bytes: int = MAX_PEER_ANSWER_BYTES,
    ) -> None:
        self.owner = owner
        self.peers = peers
        self.secret = secret
        self.peer_hosts = peer_hosts
        self.clock = clock
        #: this worker's address as it advertises itself: what hops to it are bound to
        self.own_url = own_url
        self.max_answer_bytes = max_answer_bytes
        self.nonces = Nonces()
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
        """Whether ``request`` is a peer's signed hop to this worker, its mark used for the
        first time (any other mark is ignored). Asked again, the same request says the same."""
        known = request.get(_HOP)
        if known is None:
            known = self._verify(request)
            request[_HOP] = known
        return bool(known)

    def _verify(self, request: web.Request) -> bool:
        now = self.clock().timestamp()
        signed = verify(
            self.secret,
            request.headers.get(ROUTED),
            request.method,
            request.raw_path,
            b"",
            now,
            to=destination(self.own_url()),
        )
        return signed is not None and self.nonces.first_use(signed[1], signed[0], now)

    async def ask(self, base: str, path: str) -> tuple[int, bytes, str]:
        """GET ``path`` from the peer at ``base``, signed; its status, whole body and type."""
        if not self.secret:
            raise PeerRefused("workers cannot ask each other: EXCHANGE_CLUSTER_SECRET is not set")
        if not allowed_peer(base, self.peer_hosts):
            raise PeerRefused(f"{base[:80]!r} is not on an allowed peer host (EXCHANGE_PEER_HOSTS)")
        now = self.clock().timestamp()
        mark = sign(self.secret, "GET", path, b"", now, to=destination(base))
        client = await self._session()
        url = URL(base.rstrip("/") + path, encoded=True)
        async with client.get(url, headers={ROUTED: mark}, allow_redirects=False) as answer:
            body = await read_whole(answer, self.max_answer_bytes)
            return answer.status, body, answer.content_type

    async def gather(self, path: str) -> list[dict[str, Any]]:
        """Every peer's JSON object answering ``path``; a peer that does not answer, or not
        with a whole JSON object, contributes nothing (and a log line)."""
        found: list[dict[str, Any]] = []
        for peer in self.peers():
            try:
                status, body, _ = await self.ask(peer, path)
                answer = loads(body) if status == 200 else None
            except (PeerRefused, TimeoutError, aiohttp.ClientError, ValueError) as exc:
                log.warning("peer %s did not answer %s: %s", peer[:80], path[:80], exc)
                continue
            if isinstance(answer, dict):
                found.append(answer)
            else:
                log.warning("peer %s answered %s with status %s", peer[:80], path[:80], status)
        return found

    async def _proxy(self, request: web.Request, base: str) -> web.Response:
        try:
            status, body, content_type = await self.ask(base, request.raw_path)
        except AnswerTooLarge as exc:
            return error(502, f"the worker owning this key ({base}) answered too much: {exc}")
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
