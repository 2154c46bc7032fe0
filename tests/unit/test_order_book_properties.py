"""Invariants of price-time matching, checked against a naive reference matcher."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_app.engine import Cancel, Order, OrderBook, OrderRejected, Side, policy_named
from tests.factories import cancel, order


class ReferenceMatcher:
    """Price-time priority the obvious way: a list scanned and sorted on every order."""

    def __init__(self) -> None:
        self.resting: list[dict] = []  # {id, side, price, remaining, arrival}
        self.arrival = 0

    def submit(self, o: Order) -> list[tuple[int, Decimal, Decimal]]:
        opposite = [r for r in self.resting if r["side"] != o.side]
        if o.price is not None:
            if o.side is Side.BUY:
                opposite = [r for r in opposite if r["price"] <= o.price]
            else:
                opposite = [r for r in opposite if r["price"] >= o.price]
        sign = 1 if o.side is Side.BUY else -1
        opposite.sort(key=lambda r: (sign * r["price"], r["arrival"]))
        if o.time_in_force == "FOK" and sum(r["remaining"] for r in opposite) < o.quantity:
            return []
        left, fills = o.quantity, []
        for r in opposite:
            if not left:
                break
            q = min(left, r["remaining"])
            fills.append((r["id"], r["price"], q))
            r["remaining"] -= q
            left -= q
        self.resting = [r for r in self.resting if r["remaining"]]
        if left and o.order_type == "LIMIT" and o.time_in_force == "GTC":
            self.arrival += 1
            self.resting.append(
                {
                    "id": o.id,
                    "side": o.side,
                    "price": o.price,
                    "remaining": left,
                    "arrival": self.arrival,
                }
            )
        return fills

    def cancel(self, c: Cancel) -> bool:
        before = len(self.resting)
        self.resting = [r for r in self.resting if r["id"] != c.id]
        return len(self.resting) < before


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
