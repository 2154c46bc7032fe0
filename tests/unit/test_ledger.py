"""FIFO positions and P&L, and that P&L is zero-sum across accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine import Side
from exchange_app.engine.ledger import Lot, Position

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def fills(*steps: tuple[Side, int, int]) -> Position:
    position = Position()
    for side, quantity, price in steps:
        position = position.fill(side, D(quantity), D(price))
    return position


@pytest.mark.parametrize(
    ("steps", "lots", "realized"),
    [
        pytest.param([(BUY, 5, 10)], [(5, 10)], 0, id="open_long"),
        pytest.param([(BUY, 5, 10), (BUY, 5, 12)], [(5, 10), (5, 12)], 0, id="add_a_lot"),
        pytest.param([(BUY, 5, 10), (SELL, 3, 13)], [(2, 10)], 9, id="partial_close_long"),
        pytest.param(
            [(BUY, 5, 10), (BUY, 5, 12), (SELL, 7, 11)], [(3, 12)], 3, id="close_fifo_across_lots"
        ),
        pytest.param([(BUY, 5, 10), (SELL, 8, 12)], [(-3, 12)], 10, id="flip_long_to_short"),
        pytest.param([(SELL, 4, 20), (BUY, 1, 15)], [(-3, 20)], 5, id="partial_close_short"),
        pytest.param([(SELL, 4, 20), (BUY, 6, 25)], [(2, 25)], -20, id="flip_short_to_long"),
        pytest.param([(BUY, 2, 10), (SELL, 2, 10)], [], 0, id="flat"),
    ],
)
def test_fifo_lots_and_realized_pnl(steps, lots, realized) -> None:
    position = fills(*steps)
    assert [(lot.quantity, lot.price) for lot in position.lots] == [(D(q), D(p)) for q, p in lots]
    assert position.realized == realized


def test_unrealized_average_cost_and_total() -> None:
    position = fills((BUY, 5, 10), (BUY, 5, 12))
    assert position.average_cost == 11
    assert position.unrealized(D(15)) == 40  # 5 * (15 - 10) + 5 * (15 - 12)
    short = Position((Lot(D(-3), D(20)),), realized=D(4))
    assert short.unrealized(D(18)) == 6 and short.total(D(18)) == 10
    assert Position().average_cost is None


trades = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(1, 50),
        st.integers(1, 400).map(lambda cents: D(cents) / 4),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(trades, st.integers(1, 400).map(lambda cents: D(cents) / 4))
def test_pnl_is_zero_sum_across_accounts(trades, mark) -> None:
    books: dict[str, Position] = {}
    for buyer, seller, quantity, price in trades:
        books[buyer] = books.get(buyer, Position()).fill(BUY, D(quantity), price)
        books[seller] = books.get(seller, Position()).fill(SELL, D(quantity), price)
    assert sum((p.quantity for p in books.values()), D(0)) == 0
    assert sum((p.total(mark) for p in books.values()), D(0)) == 0
