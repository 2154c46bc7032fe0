"""A limit order book for one instrument: sorted price levels with FIFO queues.

::

    asks  keys = +price   [15] -> deque(o7, o9)     best ask = keys[0]
          (SortedList)    [16] -> deque(o3)
    bids  keys = -price   [-14] -> deque(o2)        best bid = keys[0]
                          [-12] -> deque(o1, o4)

Each side stores its levels under a signed key so that the best level is always
the first one and one code path serves bids and asks. Cancelled orders are
marked dead and skipped when they reach the front of their queue, so adding,
cancelling and taking cost O(log levels) at most and never scan the book.

The book is a state machine: ``submit`` and ``cancel`` apply one event and
return an :class:`Execution`; which fills happen is decided by the pluggable
matching policy (see ``matching.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from sortedcontainers import SortedList

from .errors import DuplicateOrderId, UnknownOrder
from .recent import RECENT_ORDERS, RecentIds
from .types import (
    Cancel,
    Execution,
    Fill,
    Order,
    OrderType,
    RestingOrder,
    Side,
    Status,
    TimeInForce,
)

if TYPE_CHECKING:
    from .matching import MatchingPolicy

__all__ = ["BookSide", "Level", "OrderBook"]

ZERO = Decimal(0)
INFINITY = Decimal("Infinity")
# Enum member lookups cost ~80 ns each on CPython 3.11: bind them once.
_BUY, _LIMIT, _GTC = Side.BUY, OrderType.LIMIT, TimeInForce.GTC
_FILLED, _PARTIAL, _ACCEPTED, _CANCELLED = (
    Status.FILLED,
    Status.PARTIALLY_FILLED,
    Status.ACCEPTED,
    Status.CANCELLED,
)


class _Resting:
    """A live order in a queue; mutable so a partial fill costs no allocation."""

    __slots__ = ("arrival", "live", "order", "remaining")

    def __init__(self, order: Order, remaining: Decimal, arrival: int) -> None:
        self.order = order
        self.remaining = remaining
        self.arrival = arrival
        self.live = True

    def snapshot(self) -> RestingOrder:
        return RestingOrder(self.order, self.remaining, self.arrival)


class Level:
    """The orders at one price in arrival order; ``quantity``/``count`` are live totals."""

    __slots__ = ("count", "price", "quantity", "queue")

    def __init__(self, price: Decimal) -> None:
        self.price = price
        self.queue: deque[_Resting] = deque()
        self.quantity = ZERO
        self.count = 0

    def live_orders(self) -> Iterator[_Resting]:
        return (resting for resting in self.queue if resting.live)


class BookSide:
    """The resting orders of one side, best price first."""

    __slots__ = ("keys", "levels", "negate", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.negate = side is _BUY  # bids: the highest price is the best
        self.keys: SortedList = SortedList()
        self.levels: dict[Decimal, Level] = {}

    def key(self, price: Decimal) -> Decimal:
        return -price if self.negate else price

    def limit_key(self, order: Order) -> Decimal:
        """The worst key of this side that ``order`` (of the other side) may take."""
        if order.price is None:
            return INFINITY
        return order.price if not self.negate else -order.price

    def add(self, resting: _Resting) -> None:
        price = resting.order.price
        assert price is not None, "only priced orders rest"
        key = -price if self.negate else price
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(price)
            self.keys.add(key)
        level.queue.append(resting)
        level.quantity += resting.remaining
        level.count += 1

    def remove(self, resting: _Resting) -> None:
        """Take a live order out of its level (lazily: its queue entry goes dead)."""
        price = resting.order.price
        assert price is not None
        key = -price if self.negate else price
        level = self.levels[key]
        resting.live = False
        level.quantity -= resting.remaining
        level.count -= 1
        if not level.count:
            self.keys.remove(key)
            del self.levels[key]

    def available(self, limit_key: Decimal, wanted: Decimal) -> bool:
        """Whether at least ``wanted`` rests at keys up to ``limit_key``."""
        total = ZERO
        for key in self.keys.irange(maximum=limit_key):
            total += self.levels[key].quantity
            if total >= wanted:
                return True
        return False

    def best(self) -> Level | None:
        return self.levels[self.keys[0]] if self.keys else None

    def depth(self, n: int | None = None) -> list[Level]:
        keys = self.keys if n is None else self.keys.islice(0, n)
        return [self.levels[key] for key in keys]


class OrderBook:
    """The book of one instrument plus the counters that make its output deterministic.

    ``next_seq`` numbers trades (gapless from 1) and ``next_arrival`` orders
    resting orders in time; both are part of the persisted state.
    """

    def __init__(
        self,
        instrument: str,
        policy: MatchingPolicy,
        *,
        next_seq: int = 1,
        next_arrival: int = 1,
        recent_orders: int = RECENT_ORDERS,
    ) -> None:
        self.instrument = instrument
        self.policy = policy
        self.next_seq = next_seq
        self.next_arrival = next_arrival
        #: the ids of the last ``recent_orders`` orders at least: none of them is taken again
        self.recent = RecentIds(recent_orders)
        self._recent_ids = self.recent.ids  # the same set for the book's life
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self._index: dict[int, _Resting] = {}

    # -- events -------------------------------------------------------------

    def submit(self, order: Order) -> Execution:
        """Match ``order`` against the book; rest, cancel or fill what is left."""
        if order.id in self._index:
            raise DuplicateOrderId(order.id, self.instrument)
        if order.id in self._recent_ids:
            raise DuplicateOrderId(order.id, self.instrument, resting=False)
        fills, remaining = self.policy.match(self, order)
        self.recent.add(order.id)
        cancelled = ZERO
        if not remaining:
            status = _FILLED
        elif order.order_type is _LIMIT and order.time_in_force is _GTC:
            self._rest(order, remaining)
            status = _PARTIAL if fills else _ACCEPTED
        else:
            status, cancelled, remaining = _CANCELLED, remaining, ZERO
        return Execution(order, status, fills, remaining, cancelled, bool(remaining))

    def cancel(self, cancel: Cancel) -> Execution:
        """Remove a resting order of the cancel's account; raises :class:`UnknownOrder` if
        none is resting (another account's order included: only its owner cancels it)."""
        resting = self._index.get(cancel.id)
        if resting is None or resting.order.account != cancel.account:
            raise UnknownOrder(cancel.id, self.instrument)
        del self._index[cancel.id]
        self.side(resting.order.side).remove(resting)
        return Execution(resting.order, _CANCELLED, [], ZERO, resting.remaining, False)

    def restore(self, orders: Iterable[RestingOrder]) -> None:
        """Load persisted resting orders (any order: they are sorted by arrival)."""
        for snapshot in sorted(orders, key=lambda r: r.arrival):
            resting = _Resting(snapshot.order, snapshot.remaining, snapshot.arrival)
            self._index[snapshot.order.id] = resting
            self.side(snapshot.order.side).add(resting)
            self.policy.on_rest(self, resting)
            self.next_arrival = max(self.next_arrival, snapshot.arrival + 1)

    # -- primitives for matching policies ------------------------------------

    def side(self, side: Side) -> BookSide:
        return self.bids if side is _BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        return self.asks if side is _BUY else self.bids

    def take(
        self, order: Order, opposite: BookSide, limit_key: Decimal
    ) -> tuple[list[Fill], Decimal]:
        """Fill ``order`` from ``opposite``, best price then oldest first, up to ``limit_key``."""
        remaining = order.quantity
        fills: list[Fill] = []
        keys, levels, index = opposite.keys, opposite.levels, self._index
        seq = self.next_seq
        while remaining and keys:
            key = keys[0]
            if key > limit_key:
                break
            level = levels[key]
            queue, price = level.queue, level.price
            while queue:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                left = maker.remaining
                if left <= remaining:
                    quantity, remaining, left = left, remaining - left, ZERO
                    queue.popleft()
                    maker.live = False
                    del index[maker.order.id]
                    level.count -= 1
                else:
                    quantity, left, remaining = remaining, left - remaining, ZERO
                maker.remaining = left
                level.quantity -= quantity
                fills.append(Fill(seq, price, quantity, maker.order, left))
                seq += 1
                if not remaining:
                    break
            if not level.count:
                keys.pop(0)
                del levels[key]
        self.next_seq = seq
        return fills, remaining

    def take_whole(self, maker: _Resting) -> Fill:
        """Fill a resting order completely at its own price (the ``exact`` policy)."""
        self._index.pop(maker.order.id)
        self.side(maker.order.side).remove(maker)
        price = maker.order.price
        assert price is not None
        fill = Fill(self.next_seq, price, maker.remaining, maker.order, ZERO)
        maker.remaining = ZERO
        self.next_seq += 1
        return fill

    def _rest(self, order: Order, remaining: Decimal) -> None:
        resting = _Resting(order, remaining, self.next_arrival)
        self.next_arrival += 1
        self._index[order.id] = resting
        self.side(order.side).add(resting)
        self.policy.on_rest(self, resting)

    # -- inspection ------------------------------------------------------------

    def get(self, order_id: int) -> RestingOrder | None:
        resting = self._index.get(order_id)
        return resting.snapshot() if resting is not None else None

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def __len__(self) -> int:
        return len(self._index)

    def resting(self) -> list[RestingOrder]:
        """Every resting order, oldest first."""
        return sorted((r.snapshot() for r in self._index.values()), key=lambda r: r.arrival)

    def best_bid(self) -> Decimal | None:
        level = self.bids.best()
        return level.price if level else None

    def best_ask(self) -> Decimal | None:
        level = self.asks.best()
        return level.price if level else None
