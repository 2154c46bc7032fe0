"""Failed authentication, throttled per client address: one token bucket per address.

A client that presents a key that does not authenticate (malformed, unknown or
revoked) spends a token of its address's bucket; once the bucket is empty its
failures answer 429, with when to retry, instead of 401 until a token has grown
back. A key that authenticates spends nothing, so a trader's requests are never
refused for what others at its address (a NAT, a proxy) get wrong.

A key's secret is 256 random bits: guessing is hopeless whatever the rate. What
the throttle bounds is the work and the log lines a flood of bad keys costs a
worker, and it tells a misconfigured client to stop. Buckets of at most
``max_addresses`` addresses are kept, the least recently failed dropped first,
so clients with many addresses cost bounded memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    """``burst`` failures at once per address, then ``rate`` a second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 65_536,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"expected a rate > 0 and a burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)

    def failed(self, address: str) -> int | None:
        """Count a failure from ``address``: None while within its budget, else the whole
        seconds until its next failure is allowed (the 429's ``Retry-After``)."""
        now = self.clock()
        tokens, then = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = None
        if tokens >= 1:
            tokens -= 1
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[address] = (tokens, now)  # last: the most recently failed
        while len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        return wait
