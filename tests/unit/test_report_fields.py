"""Execution reports in one shape: a cancel's report carries the cancel's time, and a
refusal carries the fill fields every other report has."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from exchange_app.engine import Cancel
from tables.matching import MatchingState, Source
from tests.factories import T0, order
from tests.unit.test_matching_state import step

FILL_FIELDS = ("filled_quantity", "leaves_quantity", "cancelled_quantity", "trade_ids")


def test_a_cancelled_report_carries_the_time_of_the_cancel() -> None:
    state = MatchingState({}, "price-time")
    step(state, order(1, "BUY", 5, 15, account="alice"), Source(0, 0))
    later = T0 + timedelta(hours=2)
    [report] = [
        o.value
        for o in step(state, Cancel(1, "TCS", later, "alice"), Source(0, 1))
        if o.stream == "events"
    ]
    assert report["status"] == "CANCELLED" and report["side"] == "BUY"
    assert report["timestamp"] == later.isoformat()
    assert report["cancelled_quantity"] == Decimal(5)


def test_a_refused_cancel_has_every_field_of_a_report() -> None:
    state = MatchingState({}, "price-time")
    accepted = next(
        o.value
        for o in step(state, order(1, "BUY", 5, 15, account="alice"), Source(0, 0))
        if o.stream == "events"
    )
    later = T0 + timedelta(hours=2)
    # another account's order is answered as an unknown id: its side must not show
    [refused] = [
        o.value
        for o in step(state, Cancel(1, "TCS", later, "mallory"), Source(0, 1))
        if o.stream == "events"
    ]
    assert refused["status"] == "REJECTED" and refused["side"] is None
    assert set(accepted) <= set(refused)
    assert [refused[name] for name in FILL_FIELDS] == [0, 0, 0, []]
    assert refused["timestamp"] == later.isoformat()


def test_a_refused_order_has_its_side_and_time() -> None:
    state = MatchingState({}, "price-time")
    step(state, order(1, "BUY", 5, 15), Source(0, 0))
    [duplicate] = [o.value for o in step(state, order(1, "SELL", 2, 15), Source(0, 1))]
    assert duplicate["status"] == "REJECTED" and duplicate["side"] == "SELL"
    assert [duplicate[name] for name in FILL_FIELDS] == [0, 0, 0, []]
    assert duplicate["timestamp"] == (T0 + timedelta(seconds=1)).isoformat()
