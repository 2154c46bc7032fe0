"""Decoding orders: the seed's bytes are accepted, everything else is refused with reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exchange_app.engine import Cancel, InvalidOrder, Order, OrderBook, Side, policy_named
from exchange_app.wire import decode_order, dumps, encode_order, loads, trade_record

SEED = (
    b'{"id": 1000001, "instrument": "TCS", "trxn_type": "BUY", "quantity": 5.0, '
    b'"price": 15.0, "order_timestamp": "2023/03/12, 23:48:37"}'
)


def valid(**changes: object) -> bytes:
    order = json.loads(SEED)
    order.update(changes)
    return json.dumps({k: v for k, v in order.items() if v is not ...}).encode()


def test_seed_sample_is_accepted_byte_for_byte() -> None:
    order = decode_order(SEED)
    assert order == Order(
        1000001,
        "TCS",
        Side.BUY,
        Decimal("5.0"),
        Decimal("15.0"),
        datetime(2023, 3, 12, 23, 48, 37, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "15.25", "quantity": "2"}, None),
        ({"order_timestamp": "2023-03-12T23:48:37Z"}, None),
        ({"order_timestamp": "2023-03-13T05:18:37+05:30"}, None),
        ({"trxn_type": "sell"}, None),
        ({"order_type": "MARKET", "price": ..., "time_in_force": "IOC"}, None),
        ({"account": "alice"}, None),
        ({"id": "1000001"}, None),
    ],
)
def test_accepted_variants(changes: dict, field: None) -> None:
    assert isinstance(decode_order(valid(**changes)), Order)


def test_decimal_strings_and_numbers_stay_exact() -> None:
    order = decode_order(valid(price=0.1, quantity="0.30000000"))
    assert order.price == Decimal("0.1") and order.quantity == Decimal("0.3")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"id": 1, "instrument": "TCS"', "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b" " * 70_000, "exceeds the 65536-byte limit"),
        (b'{"id": 1, "price": NaN}', "not JSON"),
        (valid(quantity=0), "quantity: Input should be greater than 0"),
        (valid(quantity=-5), "quantity: Input should be greater than 0"),
        (valid(price="NaN"), "price: Input should be a finite number"),
        (valid(price="Infinity"), "price: Input should be a finite number"),
        (valid(price="1e400"), "price: Input should be less than or equal to"),
        (valid(price=True), "price: expected a number, got a boolean"),
        (valid(quantity=[5]), "quantity: Decimal input should be"),
        (valid(price="0.000000001"), "price: Decimal input should have no more than 8 decimal"),
        (valid(trxn_type="HOLD"), "trxn_type: Input should be 'BUY' or 'SELL'"),
        (valid(order_type="STOP"), "order_type: Input should be 'LIMIT' or 'MARKET'"),
        (valid(time_in_force="DAY"), "time_in_force: Input should be 'GTC', 'IOC' or 'FOK'"),
        (valid(action="AMEND"), "action: expected NEW or CANCEL"),
        (valid(instrument="TÇS"), "instrument: String should match pattern"),
        (valid(instrument=""), "instrument: String should match pattern"),
        (valid(instrument=..., trxn_type=...), "instrument: Field required"),
        (valid(order_timestamp="yesterday"), "order_timestamp: expected"),
        (
            valid(order_timestamp="9999-12-31T23:59:59+00:00"),
            "order_timestamp: expected a time from 1970-01-01 to before 2200-01-01 (UTC), "
            "got 9999-12-31T23:59:59+00:00",
        ),
        (
            valid(order_timestamp="0001-01-01T00:00:00+00:00"),
            "order_timestamp: expected a time from 1970-01-01 to before 2200-01-01 (UTC)",
        ),
        (valid(order_timestamp="2200-01-01T00:00:00Z"), "to before 2200-01-01 (UTC)"),
        (valid(order_timestamp="1969/12/31, 23:59:59"), "to before 2200-01-01 (UTC)"),
        (
            valid(order_timestamp="9999-12-31T23:59:59-05:00"),
            "order_timestamp: '9999-12-31T23:59:59-05:00' is out of range in UTC",
        ),
        (
            valid(order_timestamp="0001-01-01T00:00:00+05:00"),
            "order_timestamp: '0001-01-01T00:00:00+05:00' is out of range in UTC",
        ),
        (valid(price=...), "a LIMIT order needs a price"),
        (valid(order_type="MARKET"), "a MARKET order takes no price"),
        (valid(id=0), "id: Input should be greater than 0"),
        (valid(id=1.5), "id: Input should be a valid integer"),
        (b'{"action": "CANCEL", "id": 5}', "instrument: Field required"),
    ],
)
def test_invalid_orders_name_every_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode_order(raw)
    assert any(reason in r for r in caught.value.reasons), caught.value.reasons


def test_all_reasons_are_reported_at_once() -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode_order(valid(quantity=0, price=-1, trxn_type="HOLD"))
    assert len(caught.value.reasons) == 3
    assert caught.value.order_id == 1000001 and caught.value.instrument == "TCS"


def test_rejection_identity_only_when_valid() -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode_order(b'{"id": true, "instrument": 7}')
    assert caught.value.order_id is None and caught.value.instrument is None


def test_cancel_needs_only_id_and_instrument() -> None:
    assert decode_order(b'{"action": "cancel", "id": 7, "instrument": "TCS"}') == Cancel(7, "TCS")


@pytest.mark.parametrize(
    "raw",
    [
        SEED,
        valid(order_type="MARKET", price=..., time_in_force="FOK", account="bob"),
        b'{"action": "CANCEL", "id": 7, "instrument": "TCS", "account": "al"}',
    ],
)
def test_encode_decode_round_trip(raw: bytes) -> None:
    command = decode_order(raw)
    assert decode_order(loads(dumps(encode_order(command)))) == command


def test_trade_record_starts_with_the_seed_fields() -> None:
    book = OrderBook("TCS", policy_named("price-time"))
    book.submit(decode_order(SEED))
    seller = decode_order(
        valid(id=1000002, trxn_type="SELL", order_timestamp="2023/03/12, 23:50:00")
    )
    execution = book.submit(seller)
    record = trade_record(seller, execution.fills[0])
    assert list(record)[:6] == [
        "id",
        "id_sell",
        "instrument",
        "quantity",
        "price",
        "update_timestamp",
    ]
    assert record["id"] == 1000001 and record["id_sell"] == 1000002
    assert record["update_timestamp"] == "2023/03/12, 23:50:00"  # event time, the aggressor's
    assert record["aggressor"] == "SELL" and record["seq"] == 1 and record["trade_id"] == "TCS-1"
    assert dumps(record).startswith(
        b'{"id":1000001,"id_sell":1000002,"instrument":"TCS","quantity":5.0'
    )


@pytest.mark.parametrize(
    ("field", "number", "reason"),
    [
        ("quantity", "1E+9999999999999999999", "not JSON: a number out of range"),
        ("price", "1E-9999999999999999999", "not JSON: a number out of range"),
        ("id", "1E+9999999999999999999", "not JSON: a number out of range"),
        ("id", "1E+999999999999999999", "id: expected a number from 1e-1000 to 1e1000"),
        ("id", '"1E+999999999999999999"', "id: expected a number from 1e-1000 to 1e1000"),
        ("quantity", "1e-99999", "quantity: expected a number from 1e-1000 to 1e1000"),
        ("price", '"1E+99999"', "price: expected a number from 1e-1000 to 1e1000"),
        ("quantity", '"1E+9999999999999999999"', "quantity: Input should be a valid decimal"),
    ],
)
def test_numbers_out_of_range_are_refused_with_a_reason(
    field: str, number: str, reason: str
) -> None:
    """Beyond what ``Decimal`` holds, or so large that converting it never ends: a reason,
    never ``InvalidOperation``, ``OverflowError`` or a hung worker."""
    raw = valid(**{field: "@"}).replace(b'"@"', number.encode())
    with pytest.raises(InvalidOrder) as caught:
        decode_order(raw)
    assert any(reason in r for r in caught.value.reasons), caught.value.reasons
