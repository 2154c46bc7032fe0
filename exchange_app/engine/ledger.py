"""Positions and P&L of one account in one instrument, with FIFO lots.

A position is a queue of lots, all long or all short. A fill in the lots'
direction adds a lot; a fill against it closes lots oldest first, realizing
``(exit - entry) * quantity`` (sign flipped for shorts), and whatever is left
opens a lot the other way: the position flips through zero. Unrealized P&L
marks the open lots to a given price. With no fees, P&L is zero-sum over all
accounts at one mark price.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from .types import Side

__all__ = ["Lot", "Position"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Lot:
    quantity: Decimal  # positive long, negative short
    price: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    lots: tuple[Lot, ...] = ()
    realized: Decimal = ZERO

    @property
    def quantity(self) -> Decimal:
        return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def average_cost(self) -> Decimal | None:
        """Average entry price of the open lots; ``None`` when flat."""
        size = sum((abs(lot.quantity) for lot in self.lots), ZERO)
        if not size:
            return None
        return sum((abs(lot.quantity) * lot.price for lot in self.lots), ZERO) / size

    @property
    def cost_basis(self) -> Decimal:
        """Exact sum of entry price times signed quantity over the open lots."""
        return sum((lot.price * lot.quantity for lot in self.lots), ZERO)

    def unrealized(self, mark: Decimal) -> Decimal:
        return sum(((mark - lot.price) * lot.quantity for lot in self.lots), ZERO)

    def total(self, mark: Decimal) -> Decimal:
        return self.realized + self.unrealized(mark)

    def fill(self, side: Side, quantity: Decimal, price: Decimal) -> Position:
        """The position after buying or selling ``quantity`` at ``price``."""
        signed = quantity if side is Side.BUY else -quantity
        lots = list(self.lots)
        realized = self.realized
        while signed and lots and (lots[0].quantity > 0) != (signed > 0):
            lot = lots[0]
            closing = min(abs(signed), abs(lot.quantity))
            direction = 1 if lot.quantity > 0 else -1
            realized += (price - lot.price) * closing * direction
            left = lot.quantity - direction * closing
            lots = lots[1:] if not left else [Lot(left, lot.price), *lots[1:]]
            signed += direction * closing
        if signed:
            if lots and lots[-1].price == price:
                lots[-1] = Lot(lots[-1].quantity + signed, price)  # same price: one lot
            else:
                lots.append(Lot(signed, price))
        return replace(self, lots=tuple(lots), realized=realized)
