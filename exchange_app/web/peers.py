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
member could point the others at any address.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

__all__ = ["MAX_SKEW_SECONDS", "ROUTED", "allowed_peer", "sign", "verify"]

ROUTED = "X-Exchange-Routed"
#: How old a signed hop may be (the workers' clocks may differ by a little).
MAX_SKEW_SECONDS = 30


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
