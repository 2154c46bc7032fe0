"""Order streams: the original generator's, and a deep book with cancels for benchmarks.

Pure generators of seed-format order dicts; time is injected (``clock``) so a
seeded stream is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .wire import format_seed_time

__all__ = [
    "INSTRUMENTS",
    "START_ID",
    "deep_book_orders",
    "mixed_orders",
    "resting_orders",
    "seed_orders",
    "stepping_clock",
]

INSTRUMENTS = ("RIL", "INFY", "ONGC", "TCS")
START_ID = 1_000_001


def stepping_clock(
    start: datetime = datetime(2023, 3, 12, 9, 15, tzinfo=UTC), step: float = 1.0
) -> Callable[[], datetime]:
    """A clock that advances ``step`` seconds per reading: event time for tests."""
    moments = (start + timedelta(seconds=step * i) for i in range(1 << 62))
    return lambda: next(moments)


def seed_orders(
    *,
    clock: Callable[[], datetime],
    seed: int | None = None,
    instruments: Sequence[str] = INSTRUMENTS,
    start_id: int = START_ID,
    accounts: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """The original order generator's stream: random side, whole quantity 2-5, price 10-20."""
    rng = random.Random(seed)
    order_id = start_id
    while True:
        order: dict[str, Any] = {
            "id": order_id,
            "instrument": rng.choice(instruments),
            "trxn_type": rng.choice(("BUY", "SELL")),
            "quantity": float(rng.randint(2, 5)),
            "price": float(rng.randint(10, 20)),
            "order_timestamp": format_seed_time(clock()),
        }
        if accounts:
            order["account"] = rng.choice(accounts)
        yield order
        order_id += 1


def mixed_orders(
    *,
    clock: Callable[[], datetime],
    seed: int | None = None,
    instruments: Sequence[str] = INSTRUMENTS,
    start_id: int = START_ID,
    accounts: Sequence[str] = ("alice", "bob", "carol", "dave", "erin"),
) -> Iterator[dict[str, Any]]:
    """Every order kind: GTC limits (60%), IOC (10%), FOK (10%), MARKET (8%) and
    cancels of earlier orders by their owners (12%, some of them already filled), with
    accounts."""
    rng = random.Random(seed)
    order_id = start_id
    sent: list[tuple[int, str, str]] = []
    while True:
        roll = rng.random()
        if roll < 0.12 and sent:
            victim, instrument, owner = sent[rng.randrange(len(sent))]
            yield {"action": "CANCEL", "id": victim, "instrument": instrument, "account": owner}
            continue
        instrument = rng.choice(instruments)
        order: dict[str, Any] = {
            "id": order_id,
            "instrument": instrument,
            "trxn_type": rng.choice(("BUY", "SELL")),
            "quantity": rng.randint(1, 10),
            "price": rng.randint(1000, 2000) / 100,
            "order_timestamp": clock().isoformat(),
            "account": rng.choice(accounts),
        }
        if roll < 0.20:
            order["order_type"] = "MARKET"
            del order["price"]
        elif roll < 0.30:
            order["time_in_force"] = "IOC"
        elif roll < 0.40:
            order["time_in_force"] = "FOK"
        else:
            sent.append((order_id, instrument, order["account"]))
        yield order
        order_id += 1


def deep_book_orders(
    *,
    clock: Callable[[], datetime],
    seed: int | None = None,
    instrument: str = "DEEP",
    levels: int = 400,
    depth: int = 5_000,
    start_id: int = START_ID,
) -> Iterator[dict[str, Any]]:
    """A deep book over ``levels`` price levels: ``depth`` resting orders, then a mix
    of passive orders (60%), cancels of resting orders (25%) and aggressive orders
    that sweep a few levels (15%)."""
    rng = random.Random(seed)
    mid = 1000
    resting: list[int] = []
    order_id = start_id

    def new(side: str, price: int, quantity: int) -> dict[str, Any]:
        nonlocal order_id
        order = {
            "id": order_id,
            "instrument": instrument,
            "trxn_type": side,
            "quantity": quantity,
            "price": price / 100,
            "order_timestamp": clock().isoformat(),
        }
        order_id += 1
        return order

    def passive() -> dict[str, Any]:
        side = rng.choice(("BUY", "SELL"))
        offset = rng.randint(1, levels // 2)
        price = mid * 100 - offset if side == "BUY" else mid * 100 + offset
        order = new(side, price, rng.randint(1, 100))
        resting.append(order["id"])
        return order

    for _ in range(depth):
        yield passive()
    while True:
        roll = rng.random()
        if roll < 0.60:
            yield passive()
        elif roll < 0.85 and resting:
            victim = resting.pop(rng.randrange(len(resting)))
            yield {"action": "CANCEL", "id": victim, "instrument": instrument}
        else:
            side = rng.choice(("BUY", "SELL"))
            sweep = rng.randint(1, 5)
            price = mid * 100 + sweep if side == "BUY" else mid * 100 - sweep
            yield new(side, price, rng.randint(50, 400))


def resting_orders(
    *,
    clock: Callable[[], datetime],
    count: int,
    instruments: Sequence[str] = INSTRUMENTS,
    levels: int = 1_000,
    start_id: int = START_ID,
) -> Iterator[dict[str, Any]]:
    """``count`` LIMIT orders that never cross: bids at prices 1..``levels``, asks from
    10,001 up, spread evenly over ``instruments`` and both sides; every one rests."""
    for i in range(count):
        buy = (i // len(instruments)) % 2 == 0
        level = 1 + (i // (2 * len(instruments))) % levels
        yield {
            "id": start_id + i,
            "instrument": instruments[i % len(instruments)],
            "trxn_type": "BUY" if buy else "SELL",
            "quantity": 1,
            "price": level if buy else 10_000 + level,
            "order_timestamp": format_seed_time(clock()),
        }
