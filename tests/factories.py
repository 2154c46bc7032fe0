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
