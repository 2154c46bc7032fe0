"""Wire formats: order JSON in, trade / execution-report / DLQ JSON out.

The order schema is the seed's (``id, instrument, trxn_type, quantity, price,
order_timestamp``) plus optional ``account``, ``order_type``, ``time_in_force``
and ``action``. Numbers are JSON numbers or decimal strings and become
``Decimal`` without passing through binary floating point: JSON is parsed with
simplejson's ``use_decimal`` and written back the same way.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import simplejson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .engine import Cancel, Execution, Fill, InvalidOrder, Order, OrderType, Side, TimeInForce

__all__ = [
    "EARLIEST",
    "LATEST",
    "ORDER_FIELDS",
    "SEED_TIME_FORMAT",
    "decode_order",
    "dlq_record",
    "dumps",
    "encode_order",
    "event_time",
    "execution_reports",
    "format_seed_time",
    "loads",
    "parse_time",
    "rejection_report",
    "trade_record",
]

SEED_TIME_FORMAT = "%Y/%m/%d, %H:%M:%S"
#: The event times an order may carry: the first accepted, and the first refused.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_QUANTITY = Decimal("1e12")
MAX_PRICE = Decimal("1e12")
MAX_DECIMALS = 8
#: The largest power of ten, either way, a number in an order may have (far past the limits
#: above): beyond it a number is refused before any arithmetic.
MAX_EXPONENT = 1000


def loads(data: bytes | str) -> Any:
    """JSON with its numbers as ``Decimal``; ``ValueError`` for anything that is not JSON,
    a number ``Decimal`` cannot hold (``1E+9999999999999999999``) included."""
    try:
        return simplejson.loads(data, use_decimal=True)
    except ArithmeticError as exc:  # decimal.InvalidOperation, OverflowError
        raise ValueError(f"a number out of range ({type(exc).__name__})") from None


def dumps(obj: Any) -> bytes:
    return simplejson.dumps(obj, use_decimal=True, separators=(",", ":")).encode()


def parse_time(value: object) -> datetime:
    """The seed's ``2023/03/12, 23:48:37`` or ISO 8601; naive times are UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        return _parse_text(value)
    raise ValueError(f"expected a timestamp string, got {type(value).__name__}")


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime:
    # Cached: the orders of one second, and the trades and bars of one order,
    # carry the same text. ISO first: it is what the tables store, and
    # fromisoformat is far cheaper than strptime.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, SEED_TIME_FORMAT)
        except ValueError:
            raise ValueError(
                f"expected '{SEED_TIME_FORMAT}' or ISO 8601, got {value[:40]!r}"
            ) from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the calendar's end in UTC
        raise ValueError(f"{value[:40]!r} is out of range in UTC") from None


def event_time(value: object) -> datetime:
    """An order's timestamp: :func:`parse_time`, within :data:`EARLIEST`..:data:`LATEST`."""
    moment = parse_time(value)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(
            f"expected a time from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC), "
            f"got {moment.isoformat()}"
        )
    return moment


def format_seed_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SEED_TIME_FORMAT)


def _strict_number(value: object) -> object:
    """A JSON number (``Decimal``) or decimal string, refused unless its magnitude is within
    10**±:data:`MAX_EXPONENT`: ``Decimal`` holds ``1E+999999999999999999``, but an id made
    of it would be an integer of a quintillion digits (the worker would never finish)."""
    # JSON true/false are not numbers, although Python's bool is an int.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):  # only reachable from non-JSON callers
        return Decimal(repr(value))
    number = value
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError:  # not a number: the field's own check says so
            return value
    if (
        isinstance(number, Decimal)
        and number.is_finite()
        and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT
    ):
        raise ValueError(
            f"expected a number from 1e-{MAX_EXPONENT} to 1e{MAX_EXPONENT}, "
            f"got one of about 1e{number.adjusted()}"[:120]
        )
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _money(limit: Decimal) -> Any:
    return Annotated[
        Decimal,
        BeforeValidator(_strict_number),
        Field(gt=0, le=limit, allow_inf_nan=False, decimal_places=MAX_DECIMALS),
    ]


OrderId = Annotated[int, BeforeValidator(_strict_number), Field(gt=0, lt=2**63)]
Instrument = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,15}$")]
Account = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
Timestamp = Annotated[datetime, BeforeValidator(event_time)]


class _CancelIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["CANCEL"]
    id: OrderId
    instrument: Instrument
    account: Account | None = None
    order_timestamp: Timestamp | None = None


class _OrderIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["NEW"] = "NEW"
    id: OrderId
    instrument: Instrument
    trxn_type: Annotated[Side, BeforeValidator(_upper)]
    quantity: _money(MAX_QUANTITY)  # type: ignore[valid-type]
    price: _money(MAX_PRICE) | None = None  # type: ignore[valid-type]
    order_timestamp: Timestamp
    account: Account | None = None
    order_type: Annotated[OrderType, BeforeValidator(_upper)] = OrderType.LIMIT
    time_in_force: Annotated[TimeInForce, BeforeValidator(_upper)] = TimeInForce.GTC

    @model_validator(mode="after")
    def _price_fits_type(self) -> _OrderIn:
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("price: a LIMIT order needs a price")
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError("price: a MARKET order takes no price")
        return self


#: Every field an order or a cancel may carry. The orders topic ignores any other (a
#: gateway may add its own, as ``POST /orders`` adds ``client_timestamp``); the HTTP API
#: refuses them, so that a typo (``"tif": "IOC"``) is not an order that rests as GTC.
ORDER_FIELDS = frozenset(_OrderIn.model_fields) | frozenset(_CancelIn.model_fields)


def _reasons(error: ValidationError) -> list[str]:
    reasons = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return reasons


def decode_order(raw: bytes | str | dict[str, Any], *, max_bytes: int = 65_536) -> Order | Cancel:
    """Parse one order message; raise :class:`InvalidOrder` with every reason found."""
    if isinstance(raw, dict):
        data: Any = raw
    else:
        if len(raw) > max_bytes:
            raise InvalidOrder([f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit"])
        try:
            data = loads(raw)
        except RecursionError:
            raise InvalidOrder(["not JSON: nested too deeply"]) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidOrder([f"not JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise InvalidOrder([f"expected a JSON object, got {type(data).__name__}"])
    action = _upper(data.get("action", "NEW"))
    try:
        if action == "CANCEL":
            cancel = _CancelIn.model_validate({**data, "action": action})
            return Cancel(cancel.id, cancel.instrument, cancel.order_timestamp, cancel.account)
        if action != "NEW":
            raise InvalidOrder(
                [f"action: expected NEW or CANCEL, got {str(action)[:40]!r}"], **_identity(data)
            )
        new = _OrderIn.model_validate({**data, "action": action})
    except ValidationError as exc:
        raise InvalidOrder(_reasons(exc), **_identity(data)) from None
    return Order(
        new.id,
        new.instrument,
        new.trxn_type,
        new.quantity,
        new.price,
        new.order_timestamp,
        new.account,
        new.order_type,
        new.time_in_force,
    )


class _IdProbe(BaseModel):
    value: OrderId


class _InstrumentProbe(BaseModel):
    value: Instrument


class _AccountProbe(BaseModel):
    value: Account


_PROBES: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("order_id", "id", _IdProbe),
    ("instrument", "instrument", _InstrumentProbe),
    ("account", "account", _AccountProbe),
)


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a bad order that are valid enough to address a rejection to."""
    identity: dict[str, Any] = {}
    for name, field, probe in _PROBES:
        with contextlib.suppress(ValidationError):
            identity[name] = probe.model_validate({"value": data.get(field)}).value  # type: ignore[attr-defined]
    return identity


def encode_order(order: Order | Cancel) -> dict[str, Any]:
    """The seed-format JSON object of an order (optional fields only when set)."""
    if isinstance(order, Cancel):
        out: dict[str, Any] = {"action": "CANCEL", "id": order.id, "instrument": order.instrument}
        if order.timestamp is not None:
            out["order_timestamp"] = order.timestamp.isoformat()
    else:
        out = {
            "id": order.id,
            "instrument": order.instrument,
            "trxn_type": order.side.value,
            "quantity": order.quantity,
            "price": order.price,
            "order_timestamp": order.timestamp.isoformat(),
        }
        if order.order_type is not OrderType.LIMIT:
            out["order_type"] = order.order_type.value
        if order.time_in_force is not TimeInForce.GTC:
            out["time_in_force"] = order.time_in_force.value
    if order.account is not None:
        out["account"] = order.account
    return out


def trade_record(taker: Order, fill: Fill) -> dict[str, Any]:
    """A trade in the contract of DESIGN section 2: the seed's fields first."""
    buy, sell = (taker, fill.maker) if taker.side is Side.BUY else (fill.maker, taker)
    return {
        "id": buy.id,
        "id_sell": sell.id,
        "instrument": taker.instrument,
        "quantity": fill.quantity,
        "price": fill.price,
        "update_timestamp": format_seed_time(taker.timestamp),
        "trade_id": f"{taker.instrument}-{fill.seq}",
        "seq": fill.seq,
        "buy_order_id": buy.id,
        "sell_order_id": sell.id,
        "buyer": buy.account,
        "seller": sell.account,
        "aggressor": taker.side.value,
        "timestamp": taker.timestamp.isoformat(),
    }


#: The fields of a trade that are market data: no account, no order id.
PUBLIC_TRADE_FIELDS = (
    "trade_id",
    "seq",
    "instrument",
    "quantity",
    "price",
    "aggressor",
    "timestamp",
    "update_timestamp",
)


def public_trade(trade: dict[str, Any]) -> dict[str, Any]:
    """``trade`` as anyone may see it: who traded, and with which orders, is private."""
    return {name: trade[name] for name in PUBLIC_TRADE_FIELDS if name in trade}


def _report(order: Order, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "instrument": order.instrument,
        "account": order.account,
        "side": order.side.value,
        "status": status,
        **fields,
    }


def execution_reports(
    execution: Execution, *, cancel: Cancel | None = None
) -> list[dict[str, Any]]:
    """Execution reports for the taker and for every maker the execution touched.

    ``cancel``: the cancel that caused the execution; its ``CANCELLED`` report carries
    the cancel's time, not the order's (null when the cancel had none)."""
    order = execution.order
    moment = order.timestamp if cancel is None else cancel.timestamp
    filled = sum((fill.quantity for fill in execution.fills), Decimal(0))
    reports = [
        _report(
            order,
            execution.status.value,
            filled_quantity=filled,
            leaves_quantity=execution.remaining,
            cancelled_quantity=execution.cancelled,
            trade_ids=[f"{order.instrument}-{fill.seq}" for fill in execution.fills],
            timestamp=(moment.isoformat() if moment else None),
        )
    ]
    for fill in execution.fills:
        reports.append(
            _report(
                fill.maker,
                "FILLED" if not fill.maker_remaining else "PARTIALLY_FILLED",
                filled_quantity=fill.quantity,
                leaves_quantity=fill.maker_remaining,
                cancelled_quantity=Decimal(0),
                trade_ids=[f"{order.instrument}-{fill.seq}"],
                timestamp=order.timestamp.isoformat(),
            )
        )
    return reports


def rejection_report(
    reasons: list[str],
    *,
    order_id: int,
    instrument: str | None,
    account: str | None,
    side: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """A ``REJECTED`` report, in every other report's shape: nothing filled, nothing left,
    nothing cancelled (the command changed no order). ``side`` is null for a cancel (its
    order is unknown to it, or another account's) and for an order too bad to have one;
    ``timestamp`` is the command's time, null when it had none that could be read."""
    return {
        "order_id": order_id,
        "instrument": instrument,
        "account": account,
        "side": side,
        "status": "REJECTED",
        "filled_quantity": Decimal(0),
        "leaves_quantity": Decimal(0),
        "cancelled_quantity": Decimal(0),
        "trade_ids": [],
        "timestamp": timestamp.isoformat() if timestamp is not None else None,
        "reasons": reasons,
    }


def dlq_record(
    reasons: list[str],
    source: dict[str, Any],
    raw: bytes,
    *,
    key: bytes | None = None,
    limit: int = 65_536,
) -> dict[str, Any]:
    """A DLQ record: why ``raw`` (read at ``source``) was not processed, and what it held."""
    return {
        "reason": "; ".join(reasons),
        "reasons": reasons,
        "source": source,
        "key": (key or b"").decode("utf-8", "replace")[:256],
        "value": raw[:limit].decode("utf-8", "replace"),
        "truncated": len(raw) > limit,
        "size": len(raw),
    }
