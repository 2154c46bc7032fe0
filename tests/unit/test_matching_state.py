"""The matching state adapter: effects applied once per input, batches, crashes, over a dict."""

from __future__ import annotations

import copy
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine import Cancel, Order, RestingOrder
from exchange_app.wire import dumps, loads
from tables.matching import MatchingState, Source, decode_resting, encode_resting
from tables.transaction import Output, Transaction
from tests.factories import cancel, order
from tests.reference import ReferenceExchange, message_of, reports_by_key


def step(state: MatchingState, command: Order | Cancel, source: Source) -> list[Output]:
    """One input in a transaction of its own, made durable at once."""
    tx = Transaction()
    state.handle(command, source, 0, tx)
    state.seal(tx)
    tx.apply()
    return tx.outputs


def feed(state: MatchingState, commands: list[Order | Cancel], start: int = 0) -> list[Output]:
    outputs = []
    for offset, command in enumerate(commands[start:], start):
        outputs += step(state, command, Source(0, offset))
    return outputs


FLOW = [
    order(1, "BUY", 5, 15, account="alice"),
    order(2, "SELL", 3, 14, account="bob"),
    order(3, "SELL", 4, 15, account="carol"),
    cancel(3, account="carol"),
    cancel(3, account="carol"),
    order(4, "BUY", 1, 15, tif="IOC"),
    order(5, "BUY", 1, 10),
]


def test_outputs_of_a_flow() -> None:
    table: dict = {}
    outputs = feed(MatchingState(table, "price-time"), FLOW)
    trades = [o.value for o in outputs if o.stream == "trades"]
    assert [(t["id"], t["id_sell"], t["quantity"], t["seq"]) for t in trades] == [
        (1, 2, 3, 1),
        (1, 3, 2, 2),
    ]
    reports = [o.value for o in outputs if o.stream == "events"]
    statuses = [(r["order_id"], r["status"]) for r in reports]
    assert statuses == [
        (1, "ACCEPTED"),
        (2, "FILLED"),
        (1, "PARTIALLY_FILLED"),
        (3, "PARTIALLY_FILLED"),
        (1, "FILLED"),
        (3, "CANCELLED"),
        (3, "REJECTED"),
        (4, "CANCELLED"),
        (5, "ACCEPTED"),
    ]
    assert "no such order" in reports[6]["reasons"][0]
    assert set(table) == {"m:TCS", "o:TCS:5", "r:TCS:1"}
    assert table["m:TCS"]["seq"] == 3


def test_an_order_id_used_again_is_rejected_also_after_a_restart() -> None:
    table: dict = {}
    feed(MatchingState(table, "price-time"), FLOW)  # order 2 filled, order 3 was cancelled
    for offset in (50, 51):  # a restarted worker each time: the ids come from the table
        state = MatchingState(table, "price-time")
        [report] = [o.value for o in step(state, order(2, "BUY", 9, 20), Source(0, offset))]
        assert report["status"] == "REJECTED" and report["duplicate"] is True
        assert "order id 2 was used by a recent TCS order" in report["reasons"][0]
    assert table["m:TCS"]["seq"] == 3  # nothing traded


def test_forgotten_ids_leave_the_table() -> None:
    table: dict = {}
    state = MatchingState(table, "price-time", recent_orders=1)
    chunk = state.book("TCS").recent.chunk
    feed(state, [order(i, "BUY", 1, 10, tif="IOC") for i in range(1, 3 * chunk + 1)])
    assert sorted(k for k in table if k.startswith("r:")) == ["r:TCS:2", "r:TCS:3"]
    restarted = MatchingState(table, "price-time", recent_orders=1)
    assert (
        step(restarted, order(1, "BUY", 1, 10, tif="IOC"), Source(0, 10**6))[0].value["status"]
        == "CANCELLED"
    )
    [report] = [
        o.value for o in step(restarted, order(3 * chunk, "BUY", 1, 10), Source(0, 10**6 + 1))
    ]
    assert report["status"] == "REJECTED"


def test_replayed_input_changes_nothing_and_sends_nothing() -> None:
    table: dict = {}
    feed(MatchingState(table, "price-time"), FLOW)
    before = copy.deepcopy(table)
    # a restarted worker replays everything: its outputs were delivered before its state
    assert feed(MatchingState(table, "price-time"), FLOW) == []
    assert table == before


def test_duplicate_forward_at_a_new_position_is_dropped() -> None:
    table: dict = {}
    state = MatchingState(table, "price-time")
    step(state, FLOW[0], Source(2, 40))
    before = copy.deepcopy(table)
    # the re-partition step forwarded the same source offset again after a crash
    assert step(state, FLOW[0], Source(2, 40)) == []
    assert table == before


def test_sources_are_tracked_per_partition() -> None:
    state = MatchingState({}, "price-time")
    step(state, order(1, "BUY", 1, 10), Source(1, 100))
    outputs = step(state, order(2, "BUY", 1, 10), Source(2, 5))
    assert outputs[0].value["status"] == "ACCEPTED"


def test_load_from_the_table_restores_books_and_sequences() -> None:
    table: dict = {}
    feed(MatchingState(table, "price-time"), FLOW)
    restarted = MatchingState(table, "price-time")
    out = step(restarted, order(9, "SELL", 1, 10), Source(0, 100))
    trade = next(o.value for o in out if o.stream == "trades")
    assert (trade["id"], trade["seq"]) == (5, 3)


def test_a_batch_writes_each_changed_key_once_with_its_last_value() -> None:
    table: dict = {}
    state = MatchingState(table, "price-time")
    tx = Transaction()
    for offset, command in enumerate(FLOW):
        state.handle(command, Source(0, offset), 0, tx)
    state.seal(tx)
    [(written, partition, changes)] = list(tx.tables())
    assert written is table and partition == 0
    # order 3 rested, was filled and cancelled within the batch: one delete; the ids of
    # the batch's orders reach the table once, at the seal
    assert changes == {
        "o:TCS:1": None,
        "m:TCS": {"seq": 3, "arrival": 4, "applied": {"0": 6}},
        "o:TCS:3": None,
        "o:TCS:5": changes["o:TCS:5"],
        "r:TCS:1": "1,2,3,4,5",
    }
    tx.apply()
    assert table == {
        "m:TCS": changes["m:TCS"],
        "o:TCS:5": changes["o:TCS:5"],
        "r:TCS:1": "1,2,3,4,5",
    }


@st.composite
def crashing_runs(draw: st.DrawFn) -> tuple[list[Order | Cancel], int]:
    commands: list[Order | Cancel] = []
    for i in range(1, draw(st.integers(2, 60))):
        if draw(st.integers(0, 6)) == 0:
            commands.append(cancel(draw(st.integers(1, i))))
        else:
            commands.append(
                order(
                    i,
                    draw(st.sampled_from(["BUY", "SELL"])),
                    draw(st.integers(1, 5)),
                    draw(st.integers(10, 13)),
                    tif=draw(st.sampled_from(["GTC", "GTC", "IOC", "FOK"])),
                )
            )
    return commands, draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None)
@given(crashing_runs())
def test_crashes_at_any_checkpoint_step_give_the_clean_run(
    run: tuple[list[Order | Cancel], int],
) -> None:
    """Batches of any size; a crash before, between or after the checkpoint's steps.

    The checkpoint's order: outputs delivered, state written, offsets committed.
    A restart loads the state and replays from the committed offset. The yardstick
    is the reference exchange (``tests/reference.py``): every trade and every order's
    execution reports, a re-sent copy identical to its first.
    """
    commands, seed = run
    rng = random.Random(seed)
    reference = ReferenceExchange().run(message_of(c) for c in commands)
    clean: dict = {}
    expected = feed(MatchingState(clean, "price-time"), commands)
    assert [o.value for o in expected if o.stream == "events"] == reference.reports
    assert [o.value for o in expected if o.stream == "trades"] == reference.trades

    table: dict = {}
    delivered: list[Output] = []
    committed = 0
    state = MatchingState(table, "price-time")
    while committed < len(commands):
        end = min(len(commands), committed + rng.randint(1, 8))
        tx = Transaction()
        for offset in range(committed, end):
            state.handle(commands[offset], Source(0, offset), 0, tx)
        state.seal(tx)
        crash = rng.choice(["none", "none", "before outputs", "before state", "before commit"])
        if crash != "before outputs":
            delivered += tx.outputs
        if crash not in ("before outputs", "before state"):
            tx.apply()
        if crash == "none":
            committed = end
        else:  # the worker restarts: memory is gone, the table stays
            state = MatchingState(table, "price-time")
    assert table == clean
    # every expected trade was delivered; extra copies are identical duplicates
    trades: dict = {}
    for output in (o for o in delivered if o.stream == "trades"):
        key = (output.value["instrument"], output.value["seq"])
        assert trades.setdefault(key, output.value) == output.value
    assert trades == {(t["instrument"], t["seq"]): t for t in reference.trades}
    # every order's reports were delivered: none dropped or changed by a replay
    reports = reports_by_key(o.value for o in delivered if o.stream == "events")
    assert reports == reports_by_key(reference.reports)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 2**53),
    st.sampled_from(["BUY", "SELL"]),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=4),
    st.none() | st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z"),
    st.integers(1, 2**40),
    st.integers(0, 10**9),
)
def test_a_resting_order_round_trips_through_its_stored_form(
    id: int,
    side: str,
    quantity: Decimal,
    price: Decimal,
    account: str | None,
    arrival: int,
    at: int,
) -> None:
    placed = order(id, side, quantity, price, account=account, at=at)
    resting = RestingOrder(placed, quantity, arrival)
    stored = encode_resting(resting)
    assert decode_resting(loads(dumps(stored))) == resting
