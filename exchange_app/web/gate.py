"""Who asks, and what they may do: API keys, per-key rate limits, account checks.

A request names its key as ``Authorization: Bearer <key>`` (``auth.py``). No
key: the public views only. A wrong, revoked or malformed key: 401, and 429 once
its client address has failed too often (``throttle.py``). A key acts
for its own account; an admin key may also read any account and the
operations views. With authentication off everyone is :data:`ANYONE`, an
admin without an account.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import token_bucket
from aiohttp import web
from aiohttp.typedefs import Middleware

from exchange_app.auth import KeyRing, Principal

from .answers import refuse
from .throttle import FailureThrottle

__all__ = ["ADMIN_PATHS", "ANYONE", "Gate"]

#: Paths only an admin key may read: Faust's table and router views, the metrics.
ADMIN_PATHS = ("/table", "/router", "/metrics")
#: Who everyone is when authentication is off.
ANYONE = Principal("", admin=True)


class Gate:
    """Authenticates requests against ``keys`` (None: authentication is off)."""

    def __init__(
        self,
        keys: KeyRing | None,
        key_rate: float,
        key_burst: int,
        is_hop: Callable[[web.Request], bool],
        failure_rate: float = 1.0,
        failure_burst: int = 20,
    ) -> None:
        self.keys = keys
        self.key_rate = key_rate
        self.is_hop = is_hop  # a peer's signed hop: the peer checked the key
        self._buckets = token_bucket.Limiter(key_rate, key_burst, token_bucket.MemoryStorage())
        self.failures = FailureThrottle(failure_rate, failure_burst)

    def principal(self, request: web.Request) -> Principal | None:
        """Who sent ``request``: None if it names no key; a wrong key is refused (401)."""
        if self.keys is None:
            return ANYONE
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise self._failed(request, "Authorization: expected 'Bearer <key>'")
        if not self.keys.ready:
            raise refuse(503, "the API keys are being loaded")
        principal = self.keys.authenticate(key.strip())
        if principal is None:
            raise self._failed(request, "unknown or revoked key")
        if not self._buckets.consume(principal.key):
            wait = max(1, math.ceil(1 / self.key_rate))
            raise refuse(429, f"over {self.key_rate:g} requests a second for this key", wait)
        return principal

    def _failed(self, request: web.Request, reason: str) -> web.HTTPException:
        """A failed authentication: 401 with ``reason``, or 429 once the client's address
        has failed more than its budget."""
        wait = self.failures.failed(request.remote or "")
        if wait is None:
            return refuse(401, reason)
        return refuse(429, "too many failed authentications from this address", wait)

    def require(self, request: web.Request) -> Principal:
        principal = self.principal(request)
        if principal is None:
            raise refuse(401, "this needs a key: Authorization: Bearer <key>")
        return principal

    def may_read(self, request: web.Request, account: str) -> None:
        """Refuse unless the key may read ``account``; a peer's hop was checked by the peer."""
        if not self.is_hop(request):
            check_read(self.principal(request), account)

    def acting_as(self, principal: Principal, named: str | None, verb: str) -> str | None:
        """The account a request acts for: the key's; one naming another account is 403.
        With keys off, the account the request names."""
        if self.keys is None:
            return named
        if named and named != principal.account:
            raise refuse(403, f"account: this key {verb} for {principal.account!r} only")
        return principal.account

    def middleware(self) -> Middleware:
        """Faust's ``/table/``, ``/router/`` and ``/metrics``: an admin key only."""

        @web.middleware
        async def admin_only(request: web.Request, handler: Callable) -> web.StreamResponse:
            guarded = request.path.startswith(ADMIN_PATHS) and not self.is_hop(request)
            if guarded and not self.require(request).admin:
                raise refuse(403, "an admin key is needed")
            return await handler(request)  # type: ignore[no-any-return]

        return admin_only


def check_read(principal: Principal | None, account: str) -> None:
    """Refuse unless ``principal`` may read ``account``: 401 without a key, else 403."""
    if principal is None:
        raise refuse(401, "this needs a key: Authorization: Bearer <key>")
    if not principal.may_read(account):
        raise refuse(403, f"this key may not read account {account!r}")
