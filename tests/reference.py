"""The yardstick: price-time matching done the obvious way, with the records it implies.

Nothing here imports the exchange's engine, wire format or state adapters, so a
test that compares the exchange with this module compares two computations
written apart: :class:`ReferenceMatcher` scans and sorts a list on every order,
and :class:`ReferenceExchange` turns orders (as JSON objects, the order topic's
format) into the trades, execution reports and book levels a consumer reads,
field for field, as README documents them.

Execution reports carry no sequence number; after a crash the exchange may send
one again as an identical copy. :func:`reports_by_key` drops those copies by the
report's deterministic key (:func:`report_key`), checking that each copy equals
its first, as :func:`tests.harness.trades_by_id` does for trades.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

__all__ = [
    "ReferenceExchange",
    "ReferenceMatcher",
    "message_of",
    "report_key",
    "reports_by_key",
]

ZERO = Decimal(0)
SEED_TIME = "%Y/%m/%d, %H:%M:%S"


class Matchable(Protocol):
    """What :class:`ReferenceMatcher` reads of an order (the engine's ``Order`` has it)."""

    @property
    def id(self) -> int: ...
    @property
    def side(self) -> str: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def order_type(self) -> str: ...
    @property
    def time_in_force(self) -> str: ...


@dataclass(frozen=True)
class Taken:
    """One fill: the resting order taken, at its price, and what it has left."""

    maker: Any
    price: Decimal
    quantity: Decimal
    maker_remaining: Decimal


class ReferenceMatcher:
    """Price-time priority the obvious way: a list scanned and sorted on every order."""

    def __init__(self) -> None:
        self.resting: list[dict[str, Any]] = []  # {id, side, price, remaining, arrival, order}
        self.arrival = 0

    def take(self, o: Matchable) -> tuple[list[Taken], Decimal]:
        """Match ``o``: its fills, and what is left of it (rested if a GTC limit)."""
        opposite = [r for r in self.resting if r["side"] != o.side]
        if o.price is not None:
            if o.side == "BUY":
                opposite = [r for r in opposite if r["price"] <= o.price]
            else:
                opposite = [r for r in opposite if r["price"] >= o.price]
        sign = 1 if o.side == "BUY" else -1
        opposite.sort(key=lambda r: (sign * r["price"], r["arrival"]))
        if o.time_in_force == "FOK" and sum(r["remaining"] for r in opposite) < o.quantity:
            return [], o.quantity
        left, fills = o.quantity, []
        for r in opposite:
            if not left:
                break
            q = min(left, r["remaining"])
            r["remaining"] -= q
            left -= q
            fills.append(Taken(r["order"], r["price"], q, r["remaining"]))
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
                    "order": o,
                }
            )
        return fills, left

    def submit(self, o: Matchable) -> list[tuple[int, Decimal, Decimal]]:
        """Match ``o``: (maker id, price, quantity) per fill."""
        return [(f.maker.id, f.price, f.quantity) for f in self.take(o)[0]]

    def cancel(self, c: Any) -> bool:
        """Remove the resting order with ``c.id``; whether there was one."""
        return self.withdraw(c.id) is not None

    def withdraw(self, order_id: int) -> dict[str, Any] | None:
        """Remove the resting order ``order_id`` and return its entry (None: not resting)."""
        for r in self.resting:
            if r["id"] == order_id:
                self.resting.remove(r)
                return r
        return None

    def levels(self) -> dict[str, list[list[Any]]]:
        """[price, quantity, orders] per level, best first, as ``/orderbook`` shows them."""
        shown: dict[str, list[list[Any]]] = {}
        for name, side, sign in (("bids", "BUY", -1), ("asks", "SELL", 1)):
            prices = sorted({r["price"] for r in self.resting if r["side"] == side})
            rows = []
            for price in sorted(prices, key=lambda p: sign * p):
                at = [r for r in self.resting if r["side"] == side and r["price"] == price]
                rows.append([price, sum(r["remaining"] for r in at), len(at)])
            shown[name] = rows
        return shown


@dataclass(frozen=True)
class Ask:
    """An order as the reference reads it from its JSON object."""

    id: int
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal | None
    timestamp: datetime
    account: str | None
    order_type: str
    time_in_force: str


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif "/" in value:
        moment = datetime.strptime(value, SEED_TIME)
    else:
        moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def message_of(command: Any) -> dict[str, Any]:
    """An engine ``Order`` or ``Cancel`` (a test's factory made) as its JSON object."""
    if not hasattr(command, "side"):
        cancel = {"action": "CANCEL", "id": command.id, "instrument": command.instrument}
        return cancel if command.account is None else {**cancel, "account": command.account}
    message = {
        "id": command.id,
        "instrument": command.instrument,
        "trxn_type": str(command.side),
        "quantity": command.quantity,
        "order_timestamp": command.timestamp,
        "order_type": str(command.order_type),
        "time_in_force": str(command.time_in_force),
    }
    if command.price is not None:
        message["price"] = command.price
    if command.account is not None:
        message["account"] = command.account
    return message


class ReferenceExchange:
    """Valid orders and cancels in, what the exchange must publish out, in order.

    ``trades`` and ``reports`` are the records of ``successful_trade`` and
    ``order_events`` (README, "Topics"); :meth:`levels` the books. Every order id
    an instrument has seen stays taken (the exchange remembers at least its last
    100,000 per instrument: more than a test sends).
    """

    def __init__(self) -> None:
        self.books: dict[str, ReferenceMatcher] = {}
        self.seen: dict[str, set[int]] = {}
        self.seqs: dict[str, int] = {}  # the last trade's seq per instrument
        self.trades: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []

    def run(self, messages: Iterable[dict[str, Any]]) -> ReferenceExchange:
        for message in messages:
            self.apply(message)
        return self

    def apply(self, message: dict[str, Any]) -> None:
        instrument = message["instrument"]
        book = self.books.setdefault(instrument, ReferenceMatcher())
        if message.get("action", "NEW") == "CANCEL":
            at = message.get("order_timestamp")
            self._cancel(
                book,
                int(message["id"]),
                instrument,
                message.get("account"),
                None if at is None else _time(at),
            )
            return
        ask = Ask(
            int(message["id"]),
            instrument,
            message["trxn_type"],
            _number(message["quantity"]),
            None if message.get("price") is None else _number(message["price"]),
            _time(message["order_timestamp"]),
            message.get("account"),
            message.get("order_type", "LIMIT"),
            message.get("time_in_force", "GTC"),
        )
        seen = self.seen.setdefault(instrument, set())
        if ask.id in seen:
            where = (
                f"is already resting in the {instrument} book"
                if any(r["id"] == ask.id for r in book.resting)
                else f"was used by a recent {instrument} order"
            )
            reason = f"order id {ask.id} {where}: the first order stands"
            rejection = _rejection(ask.id, ask, ask.side, [reason], ask.timestamp)
            self.reports.append({**rejection, "duplicate": True})
            return
        seen.add(ask.id)
        fills, left = book.take(ask)
        trade_ids = [self._trade(ask, fill) for fill in fills]
        filled = sum((f.quantity for f in fills), ZERO)
        if not left:
            status, leaves, cancelled = "FILLED", ZERO, ZERO
        elif ask.order_type == "LIMIT" and ask.time_in_force == "GTC":
            status, leaves, cancelled = ("PARTIALLY_FILLED" if fills else "ACCEPTED"), left, ZERO
        else:
            status, leaves, cancelled = "CANCELLED", ZERO, left
        self.reports.append(_report(ask, status, filled, leaves, cancelled, trade_ids, ask))
        for fill, trade_id in zip(fills, trade_ids, strict=True):
            status = "PARTIALLY_FILLED" if fill.maker_remaining else "FILLED"
            self.reports.append(
                _report(
                    fill.maker, status, fill.quantity, fill.maker_remaining, ZERO, [trade_id], ask
                )
            )

    def levels(self) -> dict[str, dict[str, list[list[Any]]]]:
        """Every instrument's book as ``/orderbook/{instrument}`` shows it."""
        return {instrument: book.levels() for instrument, book in self.books.items()}

    def _cancel(
        self,
        book: ReferenceMatcher,
        order_id: int,
        instrument: str,
        account: str | None,
        at: datetime | None,
    ) -> None:
        """A cancel at ``at`` (its own time, if it has one): its reports carry that time."""
        entry = next((r for r in book.resting if r["id"] == order_id), None)
        if entry is None or entry["order"].account != account:
            reason = (
                f"cannot cancel order {order_id}: no such order is resting in the {instrument} book"
            )
            named = _Named(instrument, account)
            self.reports.append(_rejection(order_id, named, None, [reason], at))
            return
        book.withdraw(order_id)
        resting = entry["order"]
        report = _report(resting, "CANCELLED", ZERO, ZERO, entry["remaining"], [], resting)
        self.reports.append({**report, "timestamp": None if at is None else at.isoformat()})

    def _trade(self, taker: Ask, fill: Taken) -> str:
        seq = self.seqs[taker.instrument] = self.seqs.get(taker.instrument, 0) + 1
        buy, sell = (taker, fill.maker) if taker.side == "BUY" else (fill.maker, taker)
        trade_id = f"{taker.instrument}-{seq}"
        self.trades.append(
            {
                "id": buy.id,
                "id_sell": sell.id,
                "instrument": taker.instrument,
                "quantity": fill.quantity,
                "price": fill.price,
                "update_timestamp": taker.timestamp.strftime(SEED_TIME),
                "trade_id": trade_id,
                "seq": seq,
                "buy_order_id": buy.id,
                "sell_order_id": sell.id,
                "buyer": buy.account,
                "seller": sell.account,
                "aggressor": taker.side,
                "timestamp": taker.timestamp.isoformat(),
            }
        )
        return trade_id


@dataclass(frozen=True)
class _Named:
    instrument: str
    account: str | None


def _report(
    order: Ask,
    status: str,
    filled: Decimal,
    leaves: Decimal,
    cancelled: Decimal,
    trade_ids: list[str],
    stamped_by: Ask,
) -> dict[str, Any]:
    """A report on ``order``, stamped with the time of the order that caused it."""
    return {
        "order_id": order.id,
        "instrument": order.instrument,
        "account": order.account,
        "side": order.side,
        "status": status,
        "filled_quantity": filled,
        "leaves_quantity": leaves,
        "cancelled_quantity": cancelled,
        "trade_ids": trade_ids,
        "timestamp": stamped_by.timestamp.isoformat(),
    }


def _rejection(
    order_id: int, about: Any, side: str | None, reasons: list[str], at: datetime | None
) -> dict[str, Any]:
    """A refusal: nothing filled, left or cancelled, at the refused command's time."""
    return {
        "order_id": order_id,
        "instrument": about.instrument,
        "account": about.account,
        "side": side,
        "status": "REJECTED",
        "filled_quantity": ZERO,
        "leaves_quantity": ZERO,
        "cancelled_quantity": ZERO,
        "trade_ids": [],
        "timestamp": None if at is None else at.isoformat(),
        "reasons": reasons,
    }


def report_key(report: dict[str, Any]) -> tuple[Any, ...]:
    """What tells one report from another: the order, its status, the trades it reports (a
    fill has its own ``trade_id``), a rejection's reasons, and the time of the command that
    caused it. Two reports with one key are the same report sent twice: a re-sent copy after
    a crash, or the same refusal of the same command read twice."""
    return (
        report["instrument"],
        report["account"],
        report["order_id"],
        report["status"],
        tuple(report.get("trade_ids", ())),
        tuple(report.get("reasons", ())),
        report.get("timestamp"),
    )


def reports_by_key(reports: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """De-duplicate reports by :func:`report_key`, checking that every copy is identical."""
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for report in reports:
        first = unique.setdefault(report_key(report), report)
        assert first == report, f"re-sent report {report_key(report)} differs from its first"
    return unique
