"""Invariants of price-time matching, checked against a naive reference matcher."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine import Cancel, Order, OrderBook, OrderRejected, policy_named
from tests.factories import cancel, order
from tests.reference import ReferenceMatcher


@st.composite
def flows(draw: st.DrawFn) -> list[Order | Cancel]:
    commands: list[Order | Cancel] = []
    for i in range(1, draw(st.integers(1, 60)) + 1):
        if commands and draw(st.integers(0, 9)) == 0:
            commands.append(cancel(draw(st.integers(1, i))))
            continue
        kind = draw(st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK", "MARKET"]))
        price = None if kind == "MARKET" else draw(st.integers(10, 20))
        commands.append(
            order(
                i,
                draw(st.sampled_from(["BUY", "SELL"])),
                draw(st.integers(1, 9)),
                price,
                type="MARKET" if kind == "MARKET" else "LIMIT",
                tif="IOC" if kind == "MARKET" else kind,
            )
        )
    return commands


@settings(max_examples=300, deadline=None)
@given(flows())
def test_price_time_matches_the_reference(commands: list[Order | Cancel]) -> None:
    book, reference = OrderBook("TCS", policy_named("price-time")), ReferenceMatcher()
    for command in commands:
        if isinstance(command, Cancel):
            try:
                book.cancel(command)
                cancelled = True
            except OrderRejected:
                cancelled = False
            assert cancelled == reference.cancel(command)
            continue
        fills = [(f.maker.id, f.price, f.quantity) for f in book.submit(command).fills]
        assert fills == reference.submit(command)
    assert [(r.order.id, r.remaining) for r in book.resting()] == [
        (r["id"], r["remaining"]) for r in sorted(reference.resting, key=lambda r: r["arrival"])
    ]


@settings(max_examples=300, deadline=None)
@given(flows())
def test_book_invariants(commands: list[Order | Cancel]) -> None:
    book = OrderBook("TCS", policy_named("price-time"))
    next_seq = 1
    for command in commands:
        before = book.resting()
        try:
            execution = (
                book.cancel(command) if isinstance(command, Cancel) else book.submit(command)
            )
        except OrderRejected:
            assert book.resting() == before
            continue
        filled = sum((f.quantity for f in execution.fills), Decimal(0))
        if isinstance(command, Order):
            # quantity is conserved: filled + resting + cancelled == ordered
            assert filled + execution.remaining + execution.cancelled == command.quantity
            if command.order_type == "MARKET" or command.time_in_force in ("IOC", "FOK"):
                assert not execution.rested and command.id not in book
            if command.time_in_force == "FOK" and not execution.fills:
                assert book.resting() == before
        # makers lose exactly what was traded
        for f in execution.fills:
            maker_before = next(r for r in before if r.order.id == f.maker.id)
            assert f.maker_remaining == maker_before.remaining - sum(
                g.quantity for g in execution.fills if g.maker.id == f.maker.id
            )
            assert f.seq == next_seq
            next_seq += 1
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, "the book is crossed at rest"
        for side in (book.bids, book.asks):
            for level in side.depth():
                live = list(level.live_orders())
                assert level.count == len(live) > 0
                assert level.quantity == sum(r.remaining for r in live)
