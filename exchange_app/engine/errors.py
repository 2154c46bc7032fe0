"""The exchange's domain exceptions: one module, messages that name the culprit."""

from __future__ import annotations

__all__ = [
    "DuplicateOrderId",
    "ExchangeError",
    "InvalidListing",
    "InvalidOrder",
    "OrderRejected",
    "UnknownOrder",
    "UnsupportedOrder",
]


class ExchangeError(Exception):
    """Base class of every error the exchange raises on purpose."""


class InvalidOrder(ExchangeError):
    """A message that is not a valid order; ``reasons`` lists every problem found.

    ``order_id`` and ``instrument`` are set when they could be read, so the
    rejection can be reported to the order's owner instead of the DLQ.
    """

    def __init__(
        self,
        reasons: list[str],
        *,
        order_id: int | None = None,
        instrument: str | None = None,
        account: str | None = None,
    ) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.order_id = order_id
        self.instrument = instrument
        self.account = account


class InvalidListing(ExchangeError):
    """Reference data an instrument cannot be listed with; ``reasons`` lists every problem."""

    def __init__(self, instrument: str, reasons: list[str]) -> None:
        super().__init__(f"listing of {instrument}: " + "; ".join(reasons))
        self.instrument = instrument
        self.reasons = reasons


class OrderRejected(ExchangeError):
    """A well-formed order or cancel that the book refuses."""


class DuplicateOrderId(OrderRejected):
    """An order id the book holds, or one of its recent orders had (``recent.py``): the
    first order stands, the repeat never trades."""

    def __init__(self, order_id: int, instrument: str, *, resting: bool = True) -> None:
        if resting:
            message = f"order id {order_id} is already resting in the {instrument} book"
        else:
            message = f"order id {order_id} was used by a recent {instrument} order"
        super().__init__(f"{message}: the first order stands")


class UnknownOrder(OrderRejected):
    """No order ``order_id`` of the cancel's account rests in the book. An order of another
    account is answered the same way, so a cancel cannot tell whether some id exists."""

    def __init__(self, order_id: int, instrument: str) -> None:
        super().__init__(
            f"cannot cancel order {order_id}: no such order is resting in the {instrument} book"
        )


class UnsupportedOrder(OrderRejected):
    """An order kind the configured matching policy cannot execute."""
