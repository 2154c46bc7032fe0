"""Behaviour of the order book under both matching policies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange_app.engine import (
    DuplicateOrderId,
    OrderBook,
    Status,
    UnknownOrder,
    UnsupportedOrder,
    policy_named,
)
from tests.factories import cancel, order


def book(policy: str = "price-time") -> OrderBook:
    return OrderBook("TCS", policy_named(policy))


def trades(execution) -> list[tuple[int, str, str]]:
    """(maker id, price, quantity) of each fill."""
    return [(f.maker.id, str(f.price), str(f.quantity)) for f in execution.fills]


def test_seed_sample_rests_then_trades_with_matching_sell() -> None:
    b = book()
    first = b.submit(order(1000001, "BUY", 5.0, 15.0))
    assert first.status is Status.ACCEPTED and first.rested
    second = b.submit(order(1000002, "SELL", 5.0, 15.0))
    assert second.status is Status.FILLED
    assert trades(second) == [(1000001, "15.0", "5.0")]
    assert second.fills[0].seq == 1 and len(b) == 0


@pytest.mark.parametrize(
    ("resting", "incoming", "expected_fills", "status"),
    [
        pytest.param(
            [(1, "SELL", 5, 16), (2, "SELL", 5, 15)],
            (3, "BUY", 5, 16),
            [(2, "15", "5")],
            Status.FILLED,
            id="best_price_first",
        ),
        pytest.param(
            [(1, "SELL", 2, 15), (2, "SELL", 2, 15)],
            (3, "BUY", 3, 15),
            [(1, "15", "2"), (2, "15", "1")],
            Status.FILLED,
            id="oldest_first_at_equal_price",
        ),
        pytest.param(
            [(1, "BUY", 5, 14)],
            (2, "SELL", 5, 15),
            [],
            Status.ACCEPTED,
            id="no_cross_rests",
        ),
        pytest.param(
            [(1, "BUY", 2, 15), (2, "BUY", 2, 14)],
            (3, "SELL", 6, 14),
            [(1, "15", "2"), (2, "14", "2")],
            Status.PARTIALLY_FILLED,
            id="sweep_two_levels_then_rest",
        ),
        pytest.param(
            [(1, "SELL", 5, 12)],
            (2, "BUY", 5, 20),
            [(1, "12", "5")],
            Status.FILLED,
            id="trade_at_resting_price",
        ),
    ],
)
def test_price_time_priority(resting, incoming, expected_fills, status) -> None:
    b = book()
    for args in resting:
        b.submit(order(*args))
    execution = b.submit(order(*incoming))
    assert trades(execution) == expected_fills
    assert execution.status is status


def test_partial_fill_leaves_maker_remainder_at_the_front() -> None:
    b = book()
    b.submit(order(1, "SELL", 10, 15))
    b.submit(order(2, "SELL", 10, 15))
    b.submit(order(3, "BUY", 4, 15))
    execution = b.submit(order(4, "BUY", 7, 15))
    assert trades(execution) == [(1, "15", "6"), (2, "15", "1")]
    assert b.get(2).remaining == Decimal(9)
    assert b.get(1) is None


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_immediate_orders_never_rest(tif: str) -> None:
    b = book()
    execution = b.submit(order(1, "BUY", 5, 15, tif=tif))
    assert execution.status is Status.CANCELLED
    assert execution.cancelled == 5 and not execution.rested and len(b) == 0


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    b = book()
    b.submit(order(1, "SELL", 3, 15))
    execution = b.submit(order(2, "BUY", 5, 15, tif="IOC"))
    assert trades(execution) == [(1, "15", "3")]
    assert execution.status is Status.CANCELLED and execution.cancelled == 2
    assert len(b) == 0


def test_fok_leaves_book_untouched_when_short() -> None:
    b = book()
    b.submit(order(1, "SELL", 3, 15))
    b.submit(order(2, "SELL", 3, 17))
    before = b.resting()
    execution = b.submit(order(3, "BUY", 5, 16, tif="FOK"))
    assert execution.fills == [] and execution.status is Status.CANCELLED
    assert b.resting() == before and b.next_seq == 1


def test_fok_fills_completely_across_levels() -> None:
    b = book()
    b.submit(order(1, "SELL", 3, 15))
    b.submit(order(2, "SELL", 3, 16))
    execution = b.submit(order(3, "BUY", 5, 16, tif="FOK"))
    assert trades(execution) == [(1, "15", "3"), (2, "16", "2")]
    assert execution.status is Status.FILLED


def test_market_order_takes_any_price_and_never_rests() -> None:
    b = book()
    b.submit(order(1, "BUY", 2, 11))
    b.submit(order(2, "BUY", 2, 9))
    execution = b.submit(order(3, "SELL", 6, None, type="MARKET"))
    assert trades(execution) == [(1, "11", "2"), (2, "9", "2")]
    assert execution.status is Status.CANCELLED and execution.cancelled == 2
    assert len(b) == 0


def test_cancel_removes_resting_order_and_its_level() -> None:
    b = book()
    b.submit(order(1, "BUY", 5, 15))
    execution = b.cancel(cancel(1))
    assert execution.status is Status.CANCELLED and execution.cancelled == 5
    assert len(b) == 0 and b.best_bid() is None
    # the dead queue entry is never traded against
    assert b.submit(order(2, "SELL", 5, 15)).fills == []


def test_cancel_of_unknown_or_filled_order_is_rejected() -> None:
    b = book()
    with pytest.raises(UnknownOrder, match="order 9"):
        b.cancel(cancel(9))
    b.submit(order(1, "BUY", 5, 15))
    b.submit(order(2, "SELL", 5, 15))
    with pytest.raises(UnknownOrder):
        b.cancel(cancel(1))


@pytest.mark.parametrize(("owner", "canceller"), [("alice", "bob"), ("alice", None), (None, "bob")])
def test_only_the_owner_cancels_and_others_learn_nothing(owner, canceller) -> None:
    b = book()
    b.submit(order(1, "BUY", 5, 15, account=owner))
    with pytest.raises(UnknownOrder) as theirs:
        b.cancel(cancel(1, account=canceller))
    assert b.get(1).remaining == 5 and b.best_bid() == 15  # still resting, untouched
    with pytest.raises(UnknownOrder) as unknown:
        b.cancel(cancel(2, account=canceller))
    assert str(theirs.value) == str(unknown.value).replace("order 2", "order 1")
    assert b.cancel(cancel(1, account=owner)).cancelled == 5


def test_duplicate_resting_id_is_rejected_and_book_unchanged() -> None:
    b = book()
    b.submit(order(1, "BUY", 5, 15))
    with pytest.raises(DuplicateOrderId, match="order id 1"):
        b.submit(order(1, "SELL", 5, 15))
    assert b.get(1).remaining == 5 and b.next_seq == 1


@pytest.mark.parametrize("how", ["filled", "cancelled", "IOC remainder", "partly filled"])
def test_an_id_used_before_never_trades_again(how: str) -> None:
    b = book()
    b.submit(order(1, "SELL", 5, 15))
    if how == "filled":
        b.submit(order(7, "BUY", 5, 15))
    elif how == "cancelled":
        b.submit(order(7, "BUY", 1, 10, account="alice"))
        b.cancel(cancel(7, account="alice"))
    elif how == "IOC remainder":
        b.submit(order(7, "BUY", 9, 15, tif="IOC"))
    else:
        b.submit(order(7, "BUY", 2, 15))
    before = (b.resting(), b.next_seq)
    with pytest.raises(DuplicateOrderId, match=r"order id 7 .*: the first order stands"):
        b.submit(order(7, "SELL", 1, 1))
    with pytest.raises(DuplicateOrderId, match="order id 7"):
        b.submit(order(7, "BUY", 1, 99))
    assert (b.resting(), b.next_seq) == before


def test_recent_ids_are_remembered_for_a_bounded_horizon() -> None:
    b = OrderBook("TCS", policy_named("price-time"), recent_orders=10)
    count = 4 * b.recent.chunk
    for i in range(1, count + 1):
        b.submit(order(i, "BUY", 1, 10, tif="IOC"))  # nothing to take: cancelled at once
    for i in range(count - 9, count + 1):  # the last 10 at least are still known
        with pytest.raises(DuplicateOrderId):
            b.submit(order(i, "BUY", 1, 10, tif="IOC"))
    assert len(b.recent) < 3 * b.recent.chunk
    assert b.submit(order(1, "BUY", 1, 10, tif="IOC")).status is Status.CANCELLED


def test_an_order_the_policy_refuses_does_not_use_up_its_id() -> None:
    b = book("exact")
    with pytest.raises(UnsupportedOrder):
        b.submit(order(1, "BUY", 1, None, type="MARKET", tif="IOC"))
    assert b.submit(order(1, "BUY", 1, 10)).status is Status.ACCEPTED


def test_trade_sequence_is_gapless_across_orders() -> None:
    b = book()
    for i in range(1, 6):
        b.submit(order(i, "SELL", 1, 10 + i))
    seqs = [f.seq for f in b.submit(order(10, "BUY", 3, 20)).fills]
    seqs += [f.seq for f in b.submit(order(11, "BUY", 2, 20)).fills]
    assert seqs == [1, 2, 3, 4, 5]


def test_restore_rebuilds_identical_priorities() -> None:
    b = book()
    for i, (side, price) in enumerate([("SELL", 15), ("SELL", 15), ("SELL", 14), ("BUY", 10)], 1):
        b.submit(order(i, side, 2, price))
    b.submit(order(9, "BUY", 3, 14))  # partially fills order 3
    copy = OrderBook(
        "TCS", policy_named("price-time"), next_seq=b.next_seq, next_arrival=b.next_arrival
    )
    copy.restore(reversed(b.resting()))
    assert copy.resting() == b.resting()
    assert trades(copy.submit(order(20, "BUY", 4, 15))) == trades(b.submit(order(20, "BUY", 4, 15)))


# -- the exact policy (the original match-maker) ------------------------------------


def test_exact_pairs_with_oldest_equal_price_and_quantity() -> None:
    b = book("exact")
    b.submit(order(1, "SELL", 5, 15))
    b.submit(order(2, "SELL", 4, 15))
    b.submit(order(3, "SELL", 5, 15))
    execution = b.submit(order(4, "BUY", 5, 15))
    assert trades(execution) == [(1, "15", "5")]
    assert b.submit(order(5, "BUY", 5, 15)).fills[0].maker.id == 3


@pytest.mark.parametrize(
    ("incoming", "why"),
    [((2, "BUY", 4, 15), "other_quantity"), ((2, "BUY", 5, 16), "better_price_is_not_equal")],
)
def test_exact_rests_without_an_equal_counterpart(incoming, why) -> None:
    b = book("exact")
    b.submit(order(1, "SELL", 5, 15))
    execution = b.submit(order(*incoming))
    assert execution.fills == [] and execution.rested
    assert len(b) == 2  # the seed's book may stay crossed


def test_exact_skips_cancelled_orders() -> None:
    b = book("exact")
    b.submit(order(1, "SELL", 5, 15))
    b.submit(order(2, "SELL", 5, 15))
    b.cancel(cancel(1))
    assert b.submit(order(3, "BUY", 5, 15)).fills[0].maker.id == 2


def test_exact_rejects_market_orders() -> None:
    with pytest.raises(UnsupportedOrder, match="MARKET"):
        book("exact").submit(order(1, "BUY", 5, None, type="MARKET"))
