"""Matching state: resting orders one table entry each, per-instrument metadata, an outbox.

One table holds three kinds of keys, all written while processing an event of
partition *p*, so all of them live in the changelog partition *p*, in order:

====================================  =============================================
``o:<instrument>:<order id>``         a resting order (``RestingOrder`` snapshot)
``m:<instrument>``                    ``seq``/``arrival`` counters and the highest
                                      source offset applied per source partition
``x:<topic>:<partition>:<slot>``      the intent of the input at that position:
                                      its table changes and its outputs
====================================  =============================================

Why this is crash-safe (Faust is at-least-once, DESIGN section 5):

* **Idempotence.** An order is identified by where it entered the system, its
  *source* (orders-topic partition and offset), which a re-partition hop keeps.
  Per instrument and source partition, orders arrive in source-offset order,
  so an input at or below ``applied[source partition]`` was already applied.
* **Atomicity.** Each input first writes its intent (every change and every
  output), then the changes, then the metadata that marks it applied. The
  local store and the changelog keep that order, so after any crash an input
  is either unapplied, applied, or has an intent to finish by redoing it.
* **No lost outputs.** Faust flushes the producer before it commits input
  offsets, so only inputs after the last commit can have undelivered outputs,
  and those are replayed. A replayed input that is already applied re-sends
  the outputs recorded in its intent; trades are identical copies (same
  ``trade_id`` and ``seq``) that consumers drop by ``(instrument, seq)``.
  Intents live in a ring of ``OUTBOX_SLOTS`` per input partition, which must
  exceed the inputs processed between two commits (``commit_every``).

Books are kept in memory as :class:`OrderBook` s and rebuilt from the table
whenever partitions move (``invalidate``), so the table is the only truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableMapping
from decimal import Decimal
from typing import Any, NamedTuple

from exchange_app.engine import (
    Cancel,
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
from exchange_app.wire import execution_reports, parse_time, rejection_report, trade_record

from .outbox import OUTBOX_SLOTS, Output, outputs_from_json

__all__ = [
    "MatchingState",
    "Position",
    "Source",
    "decode_resting",
    "encode_resting",
]

TRADES, EVENTS = "trades", "events"


class Source(NamedTuple):
    """Where an order entered the exchange: orders-topic partition and offset."""

    partition: int
    offset: int


class Position(NamedTuple):
    """Where the matching agent read an input (differs from its source when re-partitioned)."""

    topic: str
    partition: int
    offset: int


def encode_resting(resting: RestingOrder) -> dict[str, Any]:
    order = resting.order
    return {
        "id": order.id,
        "instrument": order.instrument,
        "side": order.side.value,
        "quantity": order.quantity,
        "price": order.price,
        "timestamp": order.timestamp.isoformat(),
        "account": order.account,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "remaining": resting.remaining,
        "arrival": resting.arrival,
    }


def decode_resting(value: dict[str, Any]) -> RestingOrder:
    order = Order(
        int(value["id"]),
        value["instrument"],
        Side(value["side"]),
        Decimal(value["quantity"]),
        None if value["price"] is None else Decimal(value["price"]),
        parse_time(value["timestamp"]),
        value["account"],
        OrderType(value["order_type"]),
        TimeInForce(value["time_in_force"]),
    )
    return RestingOrder(order, Decimal(value["remaining"]), int(value["arrival"]))


def order_key(instrument: str, order_id: int) -> str:
    return f"o:{instrument}:{order_id}"


def meta_key(instrument: str) -> str:
    return f"m:{instrument}"


def intent_key(position: Position) -> str:
    return f"x:{position.topic}:{position.partition}:{position.offset % OUTBOX_SLOTS}"


def _report_key(report: dict[str, Any]) -> str:
    # Reports are keyed by account; orders without one stay in instrument order.
    return str(report.get("account") or report.get("instrument") or "")


class MatchingState:
    """The adapter between the pure order books and the matching table."""

    def __init__(self, table: MutableMapping[str, Any], policy: str) -> None:
        self.table = table
        self.policy = policy
        self.books: dict[str, OrderBook] = {}
        self.stale = True

    def invalidate(self) -> None:
        """Forget the in-memory books: partitions moved or state was redone."""
        self.stale = True

    def handle(self, command: Order | Cancel, source: Source, position: Position) -> list[Output]:
        """Apply one input exactly once to the state; return the outputs to send."""
        if self.stale:
            self.rebuild()
        instrument = command.instrument
        meta = self.table.get(meta_key(instrument)) or {"seq": 1, "arrival": 1, "applied": {}}
        slot = intent_key(position)
        intent = self.table.get(slot)
        if intent is not None and (
            intent["offset"] != position.offset
            or intent["source"] != [source.partition, source.offset]
        ):
            intent = None  # an older input's intent in this slot of the ring
        if meta["applied"].get(str(source.partition), -1) >= source.offset:
            # Applied before a crash: its outputs may not have been delivered.
            return outputs_from_json(intent["outputs"]) if intent is not None else []
        if intent is not None:
            # The crash came between the intent and the end of its writes.
            self._write(intent["changes"])
            self.invalidate()
            return outputs_from_json(intent["outputs"])

        book = self.book(instrument, meta)
        changes: list[list[Any]] = []
        try:
            if isinstance(command, Cancel):
                execution = book.cancel(command)
            else:
                execution = book.submit(command)
        except OrderRejected as exc:
            outputs = [_rejection(command, str(exc))]
        else:
            outputs = self._outputs_of(execution)
            changes = self._changes_of(book, execution, cancelled=isinstance(command, Cancel))
        applied = {**meta["applied"], str(source.partition): source.offset}
        changes.append(
            [
                meta_key(instrument),
                {"seq": book.next_seq, "arrival": book.next_arrival, "applied": applied},
            ]
        )
        self.table[slot] = {
            "offset": position.offset,
            "source": [source.partition, source.offset],
            "changes": changes,
            "outputs": [list(output) for output in outputs],
        }
        self._write(changes)
        return outputs

    def book(self, instrument: str, meta: dict[str, Any] | None = None) -> OrderBook:
        book = self.books.get(instrument)
        if book is None:
            meta = meta or self.table.get(meta_key(instrument)) or {"seq": 1, "arrival": 1}
            book = self.books[instrument] = OrderBook(
                instrument,
                policy_named(self.policy),
                next_seq=int(meta["seq"]),
                next_arrival=int(meta["arrival"]),
            )
        return book

    def rebuild(self) -> None:
        """Recreate every in-memory book from the table's resting orders and metadata."""
        resting: dict[str, list[RestingOrder]] = defaultdict(list)
        metas: dict[str, dict[str, Any]] = {}
        for key, value in self.table.items():
            if key.startswith("o:"):
                snapshot = decode_resting(value)
                resting[snapshot.order.instrument].append(snapshot)
            elif key.startswith("m:"):
                metas[key[2:]] = value
        self.books = {}
        for instrument in metas.keys() | resting.keys():
            self.book(instrument, metas.get(instrument)).restore(resting[instrument])
        self.stale = False

    def _write(self, changes: list[list[Any]]) -> None:
        for key, value in changes:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value

    @staticmethod
    def _outputs_of(execution: Execution) -> list[Output]:
        taker = execution.order
        outputs = [
            Output(TRADES, taker.instrument, trade_record(taker, fill)) for fill in execution.fills
        ]
        outputs += [Output(EVENTS, _report_key(r), r) for r in execution_reports(execution)]
        return outputs

    @staticmethod
    def _changes_of(book: OrderBook, execution: Execution, *, cancelled: bool) -> list[list[Any]]:
        """Table writes for an execution: makers it touched, then the order itself."""
        instrument = execution.order.instrument
        changes: list[list[Any]] = []
        for fill in execution.fills:
            maker = book.get(fill.maker.id)
            value = encode_resting(maker) if maker is not None else None
            changes.append([order_key(instrument, fill.maker.id), value])
        if execution.rested:
            resting = book.get(execution.order.id)
            assert resting is not None
            changes.append([order_key(instrument, execution.order.id), encode_resting(resting)])
        elif cancelled:
            changes.append([order_key(instrument, execution.order.id), None])
        return changes


def _rejection(command: Order | Cancel, reason: str) -> Output:
    side = command.side.value if isinstance(command, Order) else None
    report = rejection_report(
        [reason],
        order_id=command.id,
        instrument=command.instrument,
        account=command.account,
        side=side,
    )
    return Output(EVENTS, _report_key(report), report)
