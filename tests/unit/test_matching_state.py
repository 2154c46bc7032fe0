"""The matching state adapter: exactly-once effects and re-sent outputs over a plain dict."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine import Cancel, Order
from tables.matching import MatchingState, Position, Source
from tests.factories import cancel, order


class Crash(Exception):
    pass


class CrashingDict(dict):
    """A table that dies after ``budget`` writes, like a worker killed mid-event."""

    def __init__(self, data: dict, budget: int) -> None:
        super().__init__(data)
        self.budget = budget

    def _spend(self) -> None:
        if self.budget == 0:
            raise Crash
        self.budget -= 1

    def __setitem__(self, key: str, value: Any) -> None:
        self._spend()
        super().__setitem__(key, value)

    def pop(self, key: str, default: Any = None) -> Any:
        self._spend()
        return super().pop(key, default)


def feed(state: MatchingState, commands: list[Order | Cancel], start: int = 0) -> list:
    outputs = []
    for offset, command in enumerate(commands[start:], start):
        outputs += state.handle(command, Source(0, offset), Position("orders", 0, offset))
    return outputs


def durable(table: dict) -> dict:
    """The table without the outbox: the state that must match a clean run."""
    return {k: v for k, v in table.items() if not k.startswith("x:")}


FLOW = [
    order(1, "BUY", 5, 15, account="alice"),
    order(2, "SELL", 3, 14, account="bob"),
    order(3, "SELL", 4, 15, account="carol"),
    cancel(3),
    cancel(3),
    order(4, "BUY", 1, 15, tif="IOC"),
    order(2, "BUY", 1, 10),
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
        (2, "ACCEPTED"),
    ]
    assert "no such order" in reports[6]["reasons"][0]
    assert set(durable(table)) == {"m:TCS", "o:TCS:2"}
    assert table["m:TCS"]["seq"] == 3


def test_replayed_input_resends_identical_outputs_and_changes_nothing() -> None:
    table: dict = {}
    state = MatchingState(table, "price-time")
    first = feed(state, FLOW)
    before = copy.deepcopy(table)
    again = feed(MatchingState(table, "price-time"), FLOW)  # a restarted worker replays all
    assert again == first
    assert table == before


def test_duplicate_forward_at_a_new_position_is_dropped() -> None:
    table: dict = {}
    state = MatchingState(table, "price-time")
    state.handle(FLOW[0], Source(2, 40), Position("routed", 0, 0))
    before = copy.deepcopy(table)
    # the re-partition step forwarded the same source offset again after a crash
    assert state.handle(FLOW[0], Source(2, 40), Position("routed", 0, 1)) == []
    assert durable(table) == durable(before)


def test_sources_are_tracked_per_partition() -> None:
    state = MatchingState({}, "price-time")
    state.handle(order(1, "BUY", 1, 10), Source(1, 100), Position("routed", 0, 0))
    outputs = state.handle(order(2, "BUY", 1, 10), Source(2, 5), Position("routed", 0, 1))
    assert outputs[0].value["status"] == "ACCEPTED"


def test_rebuild_from_the_table_restores_books_and_sequences() -> None:
    table: dict = {}
    feed(MatchingState(table, "price-time"), FLOW)
    restarted = MatchingState(table, "price-time")
    out = restarted.handle(order(9, "SELL", 1, 10), Source(0, 100), Position("orders", 0, 100))
    trade = next(o.value for o in out if o.stream == "trades")
    assert (trade["id"], trade["seq"]) == (2, 3)


@pytest.mark.parametrize("budget", range(0, 12))
def test_crash_mid_event_is_finished_on_replay(budget: int) -> None:
    flow = [order(1, "SELL", 2, 15), order(2, "SELL", 2, 15), order(3, "BUY", 3, 15)]
    clean: dict = {}
    expected = feed(MatchingState(clean, "price-time"), flow)

    table: dict = {}
    feed(MatchingState(table, "price-time"), flow[:2])
    crashing = CrashingDict(table, budget)
    with contextlib.suppress(Crash):
        feed(MatchingState(crashing, "price-time"), flow, start=2)
    restarted = MatchingState(dict(crashing), "price-time")
    replayed = feed(restarted, flow, start=2)
    assert replayed == feed(MatchingState(clean, "price-time"), flow, start=2)
    assert durable(restarted.table) == durable(clean)
    assert [o for o in expected if o.stream == "trades"][-2:] == [
        o for o in replayed if o.stream == "trades"
    ]


@st.composite
def crashing_runs(draw: st.DrawFn) -> tuple[list[Order | Cancel], list[int]]:
    commands: list[Order | Cancel] = []
    for i in range(1, draw(st.integers(2, 40))):
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
    crashes = draw(st.lists(st.integers(0, 200), max_size=4))
    return commands, crashes


@settings(max_examples=150, deadline=None)
@given(crashing_runs())
def test_crashes_anywhere_give_the_clean_run(run: tuple[list[Order | Cancel], list[int]]) -> None:
    commands, crashes = run
    clean: dict = {}
    expected = feed(MatchingState(clean, "price-time"), commands)

    table: dict = {}
    delivered: list = []
    committed = 0
    for budget in [*crashes, None]:
        crashing = CrashingDict(table, budget if budget is not None else 10**9)
        state = MatchingState(crashing, "price-time")
        # replay from the last committed offset, like Faust after a restart
        for offset in range(committed, len(commands)):
            try:
                delivered += state.handle(
                    commands[offset], Source(0, offset), Position("orders", 0, offset)
                )
            except Crash:
                break
            if offset % 3 == 0:
                committed = offset + 1
        table = dict(crashing)
    assert durable(table) == durable(clean)
    # every expected trade was delivered; extra copies are identical duplicates
    trades: dict = {}
    for output in (o for o in delivered if o.stream == "trades"):
        key = (output.value["instrument"], output.value["seq"])
        assert trades.setdefault(key, output.value) == output.value
    assert trades == {
        (o.value["instrument"], o.value["seq"]): o.value for o in expected if o.stream == "trades"
    }
