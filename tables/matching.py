"""Matching state: resting orders one table entry each, and per-instrument metadata.

Both kinds of keys are written while processing a batch of partition *p*, so
they live in the changelog partition *p*:

====================================  =============================================
``o:<instrument>:<order id>``         a resting order (``RestingOrder`` snapshot)
``m:<instrument>``                    ``seq``/``arrival`` counters and the highest
                                      source offset applied per source partition
``r:<instrument>:<chunk>``            ids of recent orders (``engine/recent.py``),
                                      comma-separated: a repeated id never trades
====================================  =============================================

The books live in memory between batches and are read from the table only
when partitions move (:meth:`MatchingState.invalidate`). Processing an input
changes the books and records, in a :class:`Transaction`, the outputs and the
last value of every key it touched.

Why this is crash-safe (Faust is at-least-once, DESIGN section 5):

* **Idempotence.** An order is identified by where it entered the system, its
  *source* (orders-topic partition and offset), which a re-partition hop keeps.
  Per instrument and source partition, orders arrive in source-offset order
  (each agent takes its input partitions gap-free, ``agents/batches.py``), so
  an input at or below ``applied[source partition]`` was already applied.
* **Outputs before state.** The checkpoint delivers a batch's outputs, then
  its changelog records, then writes the local store, then lets Faust commit
  the input offsets. So state that says "applied" (in the changelog or on
  disk) implies delivered outputs, and an input whose state was lost is
  matched again from the same state, giving identical outputs (same
  ``trade_id`` and ``seq``) that consumers drop by ``(instrument, seq)``.
* **Atomicity.** The changes of one batch and partition reach the changelog
  as one record batch, so a restore sees all of them or none.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterable, MutableMapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from exchange_app.engine import (
    Cancel,
    DuplicateOrderId,
    Execution,
    Order,
    OrderBook,
    OrderRejected,
    OrderType,
    RestingOrder,
    Side,
    TimeInForce,
    policy_named,
)
from exchange_app.engine.recent import RECENT_ORDERS
from exchange_app.wire import execution_reports, rejection_report, trade_record

from .transaction import Output, Transaction

__all__ = [
    "Books",
    "MatchingState",
    "Source",
    "decode_resting",
    "encode_resting",
]

TRADES, EVENTS = "trades", "events"


class Source(NamedTuple):
    """Where an order entered the exchange: orders-topic partition and offset."""

    partition: int
    offset: int


# A stored resting order is one string, its fields joined by ``|`` in this order:
# id, instrument, side, quantity, price (empty for none), timestamp, order_type,
# time_in_force, remaining, arrival, account (last, absent for none). A restart
# decodes every resting order, and this decodes in a fraction of the time of a
# JSON object; instruments and accounts cannot contain ``|`` (``wire.py``).

_SIDES = {side.value: side for side in Side}
_TYPES = {kind.value: kind for kind in OrderType}
_TIFS = {tif.value: tif for tif in TimeInForce}


def encode_resting(resting: RestingOrder) -> str:
    """The table value of a resting order (the format above)."""
    order = resting.order
    fields = [
        str(order.id),
        order.instrument,
        order.side.value,
        str(order.quantity),
        "" if order.price is None else str(order.price),
        order.timestamp.isoformat(),
        order.order_type.value,
        order.time_in_force.value,
        str(resting.remaining),
        str(resting.arrival),
    ]
    if order.account is not None:
        fields.append(order.account)
    return "|".join(fields)


def decode_resting(value: str) -> RestingOrder:
    fields = value.split("|", 10)
    id, instrument, side, quantity, price, timestamp, kind, tif, remaining, arrival = fields[:10]
    order = Order(
        int(id),
        instrument,
        _SIDES[side],
        Decimal(quantity),
        Decimal(price) if price else None,
        datetime.fromisoformat(timestamp),  # written by encode_resting: ISO 8601, UTC
        fields[10] if len(fields) > 10 else None,
        _TYPES[kind],
        _TIFS[tif],
    )
    return RestingOrder(order, Decimal(remaining), int(arrival))


def order_key(instrument: str, order_id: int) -> str:
    return f"o:{instrument}:{order_id}"


def meta_key(instrument: str) -> str:
    return f"m:{instrument}"


def recent_key(instrument: str, chunk: int) -> str:
    return f"r:{instrument}:{chunk}"


def _report_key(report: dict[str, Any]) -> str:
    # Reports are keyed by account; orders without one stay in instrument order.
    return str(report.get("account") or report.get("instrument") or "")


#: In-memory state of a set of instruments: their books, and per instrument the
#: highest source offset applied per source partition.
Books = tuple[dict[str, OrderBook], dict[str, dict[str, int]]]


class MatchingState:
    """The in-memory books of a worker's partitions and their table entries."""

    def __init__(
        self,
        table: MutableMapping[str, Any],
        policy: str,
        read: Callable[[], Iterable[tuple[str, Any]]] | None = None,
        recent_orders: int = RECENT_ORDERS,
    ) -> None:
        """``read``: the table's items for :meth:`load` (default ``table.items``);
        ``recent_orders``: how many order ids per instrument are never taken again."""
        self.table = table
        self.policy = policy
        self.recent_orders = recent_orders
        self.read = read or table.items
        self.books: dict[str, OrderBook] = {}
        self.applied: dict[str, dict[str, int]] = {}
        self.stale = True
        #: counts invalidations, so that a load begun before one is not installed after it
        self.generation = 0
        #: instruments whose recent order ids changed since :meth:`seal`, and their partition
        self._submitted: dict[str, int] = {}

    def invalidate(self) -> None:
        """Forget the in-memory books: partitions moved or a batch was abandoned."""
        self.stale = True
        self.generation += 1

    def handle(
        self, command: Order | Cancel, source: Source, partition: int, tx: Transaction
    ) -> bool:
        """Apply one input once: outputs and table changes go to ``tx``; False if a replay."""
        if self.stale:
            self.load()
        instrument = command.instrument
        book = self.book(instrument)
        applied = self.applied.setdefault(instrument, {})
        if applied.get(str(source.partition), -1) >= source.offset:
            return False  # applied before a crash; its outputs were delivered first
        try:
            if isinstance(command, Cancel):
                execution = book.cancel(command)
            else:
                execution = book.submit(command)
                self._submitted[instrument] = partition
        except OrderRejected as exc:
            tx.send(_rejection(command, str(exc), duplicate=isinstance(exc, DuplicateOrderId)))
        else:
            cancel = command if isinstance(command, Cancel) else None
            for output in self._outputs_of(execution, partition, cancel):
                tx.send(output)
            self._write_orders(book, execution, partition, tx, cancel=isinstance(command, Cancel))
        applied[str(source.partition)] = source.offset
        meta = {"seq": book.next_seq, "arrival": book.next_arrival, "applied": dict(applied)}
        tx.write(self.table, partition, meta_key(instrument), meta)
        return True

    def refuse(self, command: Order, reasons: list[str], source: Source, tx: Transaction) -> bool:
        """Reject ``command`` for ``reasons`` (its listing refuses it) without touching or
        creating a book; False if a replay of an input applied before a crash."""
        if self.stale:
            self.load()
        applied = self.applied.get(command.instrument, {})
        if applied.get(str(source.partition), -1) >= source.offset:
            return False  # applied when it was listed; the listing changed since
        report = rejection_report(
            reasons,
            order_id=command.id,
            instrument=command.instrument,
            account=command.account,
            side=command.side.value,
            timestamp=command.timestamp,
        )
        tx.send(Output(EVENTS, _report_key(report), report))
        return True

    def seal(self, tx: Transaction) -> None:
        """Write the recent order ids the batch's orders added (or forgot) into ``tx``:
        once per chunk and batch, not per order. Call it before ``tx`` is committed."""
        for instrument, partition in self._submitted.items():
            for chunk, ids in self.book(instrument).recent.take_changes():
                value = ",".join(map(str, ids)) if ids else None
                tx.write(self.table, partition, recent_key(instrument, chunk), value)
        self._submitted.clear()

    def book(self, instrument: str) -> OrderBook:
        book = self.books.get(instrument)
        if book is None:
            book = self.books[instrument] = OrderBook(
                instrument, policy_named(self.policy), recent_orders=self.recent_orders
            )
        return book

    def load(self) -> None:
        """Recreate every in-memory book from the table's resting orders and metadata."""
        self.install(self.read_books(self.read()))

    def install(self, loaded: Books) -> None:
        """Take books made by :meth:`read_books` as the current state."""
        self.books, self.applied = loaded
        self._submitted.clear()  # changes of books now gone were abandoned with them
        self.stale = False

    def read_books(self, items: Iterable[tuple[str, Any]]) -> Books:
        """Books and applied offsets from table items; touches no state (a thread may run it)."""
        # A million resting orders are millions of new objects: the cyclic GC would
        # scan the growing heap again and again (half the load's time). None of
        # them form cycles; afterwards they are frozen out of later collections.
        gc.disable()
        try:
            return self._read_books(items)
        finally:
            gc.enable()
            gc.freeze()

    def _read_books(self, items: Iterable[tuple[str, Any]]) -> Books:
        resting: dict[str, list[RestingOrder]] = defaultdict(list)
        metas: dict[str, dict[str, Any]] = {}
        recent: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
        for key, value in items:
            if key.startswith("o:"):
                snapshot = decode_resting(value)
                resting[snapshot.order.instrument].append(snapshot)
            elif key.startswith("m:"):
                metas[key[2:]] = value
            elif key.startswith("r:"):
                instrument, _, chunk = key[2:].rpartition(":")
                recent[instrument].append((int(chunk), [int(i) for i in value.split(",")]))
        books, applied = {}, {}
        for instrument in metas.keys() | resting.keys() | recent.keys():
            meta = metas.get(instrument) or {"seq": 1, "arrival": 1, "applied": {}}
            book = books[instrument] = OrderBook(
                instrument,
                policy_named(self.policy),
                next_seq=int(meta["seq"]),
                next_arrival=int(meta["arrival"]),
                recent_orders=self.recent_orders,
            )
            book.restore(resting[instrument])
            book.recent.restore(recent[instrument])
            applied[instrument] = {k: int(v) for k, v in meta.get("applied", {}).items()}
        return books, applied

    @staticmethod
    def _outputs_of(
        execution: Execution, partition: int, cancel: Cancel | None = None
    ) -> list[Output]:
        """Its trades and reports; ``cancel``: the cancel that caused it, if one did."""
        taker = execution.order
        outputs = [
            Output(TRADES, taker.instrument, trade_record(taker, fill), partition)
            for fill in execution.fills
        ]
        outputs += [
            Output(EVENTS, _report_key(r), r) for r in execution_reports(execution, cancel=cancel)
        ]
        return outputs

    def _write_orders(
        self,
        book: OrderBook,
        execution: Execution,
        partition: int,
        tx: Transaction,
        *,
        cancel: bool,
    ) -> None:
        """Table writes for an execution: makers it touched, then the order itself."""
        instrument = execution.order.instrument
        for fill in execution.fills:
            maker = book.get(fill.maker.id)
            value = encode_resting(maker) if maker is not None else None
            tx.write(self.table, partition, order_key(instrument, fill.maker.id), value)
        if execution.rested:
            resting = book.get(execution.order.id)
            assert resting is not None
            tx.write(
                self.table,
                partition,
                order_key(instrument, execution.order.id),
                encode_resting(resting),
            )
        elif cancel:
            tx.write(self.table, partition, order_key(instrument, execution.order.id), None)


def _rejection(command: Order | Cancel, reason: str, *, duplicate: bool = False) -> Output:
    side = command.side.value if isinstance(command, Order) else None
    report = rejection_report(
        [reason],
        order_id=command.id,
        instrument=command.instrument,
        account=command.account,
        side=side,
        timestamp=command.timestamp,
    )
    if duplicate:  # about a repeat: the order with this id stands, whatever it did
        report["duplicate"] = True
    return Output(EVENTS, _report_key(report), report)
