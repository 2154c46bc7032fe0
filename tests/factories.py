"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from exchange_app.engine import Cancel, Order, OrderType, Side, TimeInForce

T0 = datetime(2023, 3, 12, 9, 15, tzinfo=UTC)


def order(
    id: int,
    side: str,
    quantity: float | str | int,
    price: float | str | int | None,
    *,
    instrument: str = "TCS",
    type: str = "LIMIT",
    tif: str = "GTC",
    account: str | None = None,
    at: int | None = None,
) -> Order:
    return Order(
        id,
        instrument,
        Side(side),
        Decimal(str(quantity)),
        None if price is None else Decimal(str(price)),
        T0 + timedelta(seconds=id if at is None else at),
        account,
        OrderType(type),
        TimeInForce(tif),
    )


def cancel(id: int, instrument: str = "TCS", account: str | None = None) -> Cancel:
    return Cancel(id, instrument, account=account)


def handled(adapter: Any, item: dict[str, Any], method: str = "handle") -> list[Any]:
    """One input through a state adapter in a transaction of its own, made durable at once."""
    from tables.transaction import Transaction

    tx = Transaction()
    getattr(adapter, method)(item, 0, tx)
    adapter.flush(tx)
    tx.apply()
    return tx.outputs


def event(value: Any, partition: int, offset: int, topic: str = "t") -> Any:
    """A Faust event as the batched agents read it: its value and its message's position."""
    from types import SimpleNamespace

    from faust.types import TP

    message = SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=None,
        value=value,
        key=None,
        tp=TP(topic, partition),
    )
    return SimpleNamespace(value=value, message=message)


class Stream:
    """What ``exchange_app.agents.batches.batches`` reads of a Faust stream: its topics,
    and the events it takes, here one batch."""

    def __init__(self, events: list[Any], topic: str = "t") -> None:
        from types import SimpleNamespace

        self.channel = SimpleNamespace(topics=(topic,))
        self.events = events

    async def take_events(self, size: int, within: float) -> Any:
        yield self.events


def fail_once(real: Any, message: str = "the worker lost its producer") -> Any:
    """``real`` (a coroutine function) raising ``RuntimeError(message)`` on its first call."""
    calls: list[int] = []

    async def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(message)
        return await real(*args, **kwargs)

    return call


def assert_one_cross(sent: Any) -> None:
    """Order 1 (BUY) rested and order 2 (SELL) crossed it: one trade, three reports, once."""
    [(_, trade, _)] = sent["trades"]
    assert (trade["id"], trade["id_sell"], trade["seq"]) == (1, 2, 1)
    assert [(e["order_id"], e["status"]) for _, e, _ in sent["events"]] == [
        (1, "ACCEPTED"),
        (2, "FILLED"),
        (1, "FILLED"),
    ]
