"""A real worker on the embedded broker: orders in with plain Kafka clients, trades out."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from exchange_app.orderflow import seed_orders, stepping_clock
from tests.harness import (
    consume,
    count_at_least,
    exchange_env,
    list_instruments,
    produce,
    reference_outputs,
    trades_by_id,
)

pytestmark = pytest.mark.integration

SEED = (
    b'{"id": 1000001, "instrument": "TCS", "trxn_type": "BUY", "quantity": 5.0, '
    b'"price": 15.0, "order_timestamp": "2023/03/12, 23:48:37"}'
)
SELL = (
    b'{"id": 1000002, "instrument": "TCS", "trxn_type": "SELL", "quantity": 5.0, '
    b'"price": 15.0, "order_timestamp": "2023/03/12, 23:49:02"}'
)
TRADE_FIELDS = [
    "id", "id_sell", "instrument", "quantity", "price", "update_timestamp",
    "trade_id", "seq", "buy_order_id", "sell_order_id", "buyer", "seller", "aggressor", "timestamp",
]  # fmt: skip


def filled(order_id: int):  # type: ignore[no-untyped-def]
    return lambda events: any(e["order_id"] == order_id and e["status"] == "FILLED" for e in events)


async def test_seed_sample_sent_unkeyed_trades_with_a_matching_sell(env, start_worker) -> None:
    start_worker(env)
    # Unkeyed orders are sequenced as they reach their instrument's partition, and
    # one of them may take the re-partition hop: send the SELL once the BUY rests.
    await produce(env, [SEED], keyed=False)
    await consume(env, "events", until=lambda events: any(e["order_id"] == 1000001 for e in events))
    await produce(env, [SELL], keyed=False)
    await consume(env, "events", until=filled(1000002))
    [trade] = await consume(env, "trades", until=count_at_least(1))
    assert list(trade) == TRADE_FIELDS
    assert trade == {
        "id": 1000001,
        "id_sell": 1000002,
        "instrument": "TCS",
        "quantity": 5.0,
        "price": 15.0,
        "update_timestamp": "2023/03/12, 23:49:02",
        "trade_id": "TCS-1",
        "seq": 1,
        "buy_order_id": 1000001,
        "sell_order_id": 1000002,
        "buyer": None,
        "seller": None,
        "aggressor": "SELL",
        "timestamp": "2023-03-12T23:49:02+00:00",
    }


async def test_exact_policy_pairs_with_the_oldest_equal_order(
    broker, tmp_path: Path, start_worker
) -> None:
    env = exchange_env(broker.url, tmp_path / "data", EXCHANGE_MATCHING="exact")
    await list_instruments(env)
    start_worker(env)
    flow = [
        (1, "SELL", 5, 15), (2, "SELL", 4, 15), (3, "SELL", 5, 15),
        (4, "BUY", 5, 16), (5, "BUY", 5, 15), (6, "BUY", 4, 15), (7, "BUY", 5, 15),
    ]  # fmt: skip
    orders = [
        {"id": i, "instrument": "INFY", "trxn_type": s, "quantity": q, "price": p,
         "order_timestamp": f"2023/03/12, 10:00:0{i}"}
        for i, s, q, p in flow
    ]  # fmt: skip
    await produce(env, orders)
    trades = await consume(env, "trades", until=count_at_least(3))
    assert [(t["id"], t["id_sell"], t["price"]) for t in trades] == [
        (5, 1, 15),
        (6, 2, 15),
        (7, 3, 15),
    ]


BAD_INPUTS = [
    (b"not json at all", "dlq"),
    (b'{"id": 5, "instrument": "TCS", "trxn_type": "BUY"', "dlq"),
    (b'"just a string"', "dlq"),
    (b'{"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1}', "dlq"),
    (b'{"id": 20, "instrument": "TCS", "trxn_type": "BUY", "quantity": "five", "price": 10, '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 21, "instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": "NaN", '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 22, "instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1e400, '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 23, "instrument": "TCS", "trxn_type": "BUY", "quantity": 0, "price": 10, '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 24, "instrument": "TCS", "trxn_type": "SELL", "quantity": 1, "price": -3, '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 25, "instrument": "TCS", "trxn_type": "SHORT", "quantity": 1, "price": 3, '
     b'"order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"id": 26, "instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 3, '
     b'"order_type": "STOP", "order_timestamp": "2023/03/12, 10:00:00"}', "rejected"),
    (b'{"action": "CANCEL", "id": 999, "instrument": "TCS"}', "rejected"),
]  # fmt: skip


async def test_malformed_input_is_reported_and_processing_goes_on(env, start_worker) -> None:
    worker = start_worker(env)
    good = [
        {"id": 30, "instrument": "TCS", "trxn_type": "BUY", "quantity": 2, "price": 10,
         "order_timestamp": "2023/03/12, 10:00:01"},
        {"id": 31, "instrument": "TCS", "trxn_type": "SELL", "quantity": 2, "price": 10,
         "order_timestamp": "2023/03/12, 10:00:02"},
    ]  # fmt: skip
    # Sent unkeyed, each lands on a random partition; those away from TCS's home
    # take the re-partition hop, so 31 may fill before a rejection that hopped.
    await produce(env, [raw for raw, _ in BAD_INPUTS] + [json.dumps(g).encode() for g in good])
    expected_dlq = sum(1 for _, where in BAD_INPUTS if where == "dlq")
    dlq = await consume(env, "dlq", until=count_at_least(expected_dlq))
    want_rejected = {20, 21, 22, 23, 24, 25, 26, 999}

    def settled(events: list[dict]) -> bool:
        seen = {e["order_id"] for e in events if e["status"] == "REJECTED"}
        return filled(31)(events) and want_rejected <= seen

    events = await consume(env, "events", until=settled)
    rejected = [e for e in events if e["status"] == "REJECTED"]
    assert len(dlq) == expected_dlq and all(d["reason"] and d["source"] for d in dlq)
    assert sorted(r["order_id"] for r in rejected) == sorted(want_rejected)
    assert all(r["reasons"] for r in rejected)
    [trade] = await consume(env, "trades", until=count_at_least(1))
    assert (trade["id"], trade["id_sell"]) == (30, 31)
    assert worker.process is not None and worker.process.poll() is None
    assert "Traceback" not in worker.text()


def sweep(start_id: int) -> list[dict]:
    """MARKET orders that take everything left in every book, exposing its contents."""
    sides = itertools.product(["RIL", "INFY", "ONGC", "TCS"], ["BUY", "SELL"])
    return [
        {"id": start_id + i, "instrument": inst, "trxn_type": side, "quantity": 1_000_000,
         "order_type": "MARKET", "order_timestamp": "2023/03/13, 09:00:00"}
        for i, (inst, side) in enumerate(sides)
    ]  # fmt: skip


async def test_restart_and_changelog_restore_after_multi_record_batches(
    env, start_worker, workers
) -> None:
    stream = seed_orders(clock=stepping_clock(), seed=11)
    first, second = list(itertools.islice(stream, 3000)), list(itertools.islice(stream, 1000))
    final = sweep(9_000_000)
    expected = trades_by_id(
        o.value for o in reference_outputs(first + second + final) if o.stream == "trades"
    )
    after = lambda orders: sum(  # noqa: E731
        1 for o in reference_outputs(orders) if o.stream == "trades"
    )

    worker = start_worker(env, "run1")
    await produce(env, first)  # linger: many records per produce request and changelog batch
    await consume(env, "trades", until=count_at_least(after(first)))
    worker.stop()

    # a restart on the same local state: books and sequences continue
    worker = start_worker(env, "run2")
    await produce(env, second)
    await consume(env, "trades", until=count_at_least(after(first + second)))
    worker.stop()

    # local state gone: everything comes back from the changelog
    shutil.rmtree(env["EXCHANGE_DATA_DIR"])
    worker = start_worker(env, "run3")
    await produce(env, final)
    records = await consume(env, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected))
    assert trades_by_id(records) == expected
    for w in workers:
        assert "ConsistencyError" not in w.text()
    assert "Traceback" not in worker.text()
