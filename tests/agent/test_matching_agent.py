"""Matching: the intake's batches (``match_orders``) and the routed agent with Faust's
test_context(): decode, route, match, send, keep positions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exchange_app.packing import Packed, pack
from exchange_app.routing import home_partition
from exchange_app.wire import loads
from tests.factories import Stream, assert_one_cross, event, fail_once

PARTITIONS = 4
HOME = {
    p: next(f"I{i}" for i in range(100) if home_partition(f"I{i}", PARTITIONS) == p)
    for p in range(4)
}


def raw(
    id: int, side: str, instrument: str, quantity: float = 5.0, price: float = 15.0, **extra: Any
) -> bytes:
    order = {
        "id": id,
        "instrument": instrument,
        "trxn_type": side,
        "quantity": quantity,
        "price": price,
        "order_timestamp": "2023/03/12, 23:48:37",
        **extra,
    }
    return json.dumps(order).encode()


def fetched(partition: int, *values: tuple[int, bytes]) -> dict[int, list[Packed]]:
    """What the intake hands over: orders of one partition at the given offsets."""
    return {partition: [Packed(partition, offset, 0, None, value) for offset, value in values]}


async def test_seed_order_and_matching_sell_trade_in_place(test_app, sent) -> None:
    from exchange_app.agents.matching import match_orders

    instrument = HOME[0]
    await match_orders(fetched(0, (0, raw(1000001, "BUY", instrument))))
    await match_orders(fetched(0, (1, raw(1000002, "SELL", instrument))))
    [(key, trade, _)] = sent["trades"]
    assert key == instrument
    assert (trade["id"], trade["id_sell"], trade["quantity"], trade["price"]) == (
        1000001,
        1000002,
        5,
        15,
    )
    assert trade["seq"] == 1 and trade["update_timestamp"] == "2023/03/12, 23:48:37"
    assert [e[1]["status"] for e in sent["events"]] == ["ACCEPTED", "FILLED", "FILLED"]
    assert not sent["routed"] and not sent["dlq"]
    [(_, [copy], partition)] = sent["trade_batches"]  # the analytics' packed copy
    assert partition == 0 and loads(copy.value) == trade


async def test_order_on_a_foreign_partition_is_forwarded_then_matched(test_app, sent) -> None:
    from exchange_app.agents.matching import match_orders, match_routed

    instrument = HOME[2]
    await match_orders(fetched(0, (0, raw(1, "BUY", instrument))))
    await match_orders(fetched(1, (1, raw(2, "SELL", instrument))))
    assert not sent["trades"]
    forwarded = sent["routed"]  # a packed message per input batch and home partition
    assert {partition for _, _, partition in forwarded} == {2}
    sources = [(r.partition, r.offset) for _, value, _ in forwarded for r in value]
    assert sources == [(0, 0), (1, 1)]
    async with match_routed.test_context() as agent:
        for _, value, partition in forwarded:
            await agent.put(pack(value), partition=partition)
    [(_, trade, _)] = sent["trades"]
    assert (trade["id"], trade["id_sell"], trade["instrument"]) == (1, 2, instrument)


async def test_bad_input_is_reported_and_the_next_order_still_trades(test_app, sent) -> None:
    from exchange_app.agents.matching import match_orders

    instrument = HOME[0]
    bad = [
        b"\xff\xfe not json",
        b'{"id": 1, "instrument": "TCS"',
        raw(7, "HOLD", instrument),
        raw(8, "BUY", instrument, quantity=-1),
        json.dumps({"action": "CANCEL", "id": 99, "instrument": instrument}).encode(),
        b"x" * 70_000,
    ]
    from exchange_app.agents.matching import match_routed

    await match_orders(fetched(0, *enumerate(bad)))
    await match_orders(fetched(0, (6, raw(10, "BUY", instrument))))
    await match_orders(fetched(0, (7, raw(11, "SELL", instrument))))
    async with match_routed.test_context() as agent:
        await agent.put(b"\x00\x01 not a packed batch", partition=0)
    dlq = [value for _, value, _ in sent["dlq"]]
    assert [d["source"]["offset"] for d in dlq] == [0, 1, 5, 0]
    assert dlq[3]["source"]["topic"].endswith("-orders-routed")
    assert "not JSON" in dlq[0]["reason"] and dlq[2]["truncated"] and dlq[2]["size"] == 70_000
    assert "not a packed batch" in dlq[3]["reason"]
    rejected = [value for _, value, _ in sent["events"] if value["status"] == "REJECTED"]
    assert [(r["order_id"], r["reasons"][0][:10]) for r in rejected] == [
        (7, "trxn_type:"),
        (8, "quantity: "),
        (99, "cannot can"),
    ]
    assert [t[1]["id_sell"] for t in sent["trades"]] == [11]


async def test_replayed_orders_have_no_new_effects_and_positions_are_kept(test_app, sent) -> None:
    from exchange_app.agents.batches import pipeline
    from exchange_app.agents.matching import match_orders, order_position
    from tables.declarations import inputs_table

    instrument = HOME[0]
    await match_orders(fetched(0, (0, raw(1, "BUY", instrument))))
    await match_orders(fetched(0, (1, raw(2, "SELL", instrument, quantity=2.0))))
    await pipeline().drain()  # the tables are written behind the outputs
    assert inputs_table.stored_value(0, order_position(0)) == 2  # the next offset to match
    # offset 1 read again (a position lost with a local store), with the next order
    again = fetched(
        0, (1, raw(2, "SELL", instrument, quantity=2.0)), (2, raw(3, "SELL", instrument, 3.0))
    )
    await match_orders(again)
    trades = [t[1] for t in sent["trades"]]
    # Offset 1 was applied (its outputs delivered before its state): nothing again.
    assert [t["seq"] for t in trades] == [1, 2]
    assert trades[1]["quantity"] == 3  # the book was not filled twice
    await pipeline().drain()
    assert inputs_table.stored_value(0, order_position(0)) == 3


async def test_the_routed_agent_failing_mid_batch_matches_the_batch_again_once(
    test_app, sent, monkeypatch
) -> None:
    """The first attempt changed the books in memory, uncommitted: after Faust restarts the
    agent, the batch is matched again from the committed books, not refused as a repeat."""
    from exchange_app.agents import batches, matching

    instrument = HOME[2]
    await matching.match_orders(fetched(0, (0, raw(1, "BUY", instrument))))
    await matching.match_orders(fetched(1, (1, raw(2, "SELL", instrument))))
    events = [
        event(pack(value), partition, offset, topic="routed")
        for offset, (_, value, partition) in enumerate(sent["routed"])
    ]
    monkeypatch.setattr(batches, "rest", lambda *args: None)
    monkeypatch.setattr(matching, "complete", fail_once(matching.complete))
    with pytest.raises(RuntimeError, match="lost its producer"):
        await matching.match_routed.fun(Stream(events, topic="routed"))
    assert not sent["trades"] and not sent["events"]
    await matching.match_routed.fun(Stream(events, topic="routed"))  # restarted
    assert_one_cross(sent)


async def test_replayed_orders_give_the_reference_trades_and_execution_reports(
    test_app, sent, monkeypatch
) -> None:
    """Batches lost whole, batches whose outputs went out but whose state was lost, and
    batches read again after they were applied: once copies are dropped, every trade and
    every order's reports equal the reference exchange's (``tests/reference.py``)."""
    from exchange_app.agents.batches import checkpoint, pipeline
    from exchange_app.agents.matching import match_orders, state
    from tests.harness import trades_by_id
    from tests.reference import ReferenceExchange, reports_by_key

    instrument = HOME[0]

    def new(
        id: int, account: str, side: str, quantity: int, price: int | None, **extra: Any
    ) -> dict[str, Any]:
        message = {
            "id": id,
            "instrument": instrument,
            "trxn_type": side,
            "quantity": quantity,
            "order_timestamp": f"2023-03-12T10:00:{id:02}+00:00",
            "account": account,
            **extra,
        }
        return message if price is None else {**message, "price": price}

    def drop(id: int, account: str) -> dict[str, Any]:
        return {"action": "CANCEL", "id": id, "instrument": instrument, "account": account}

    log = [
        new(1, "alice", "BUY", 5, 15),
        new(2, "bob", "SELL", 3, 15),
        new(3, "carol", "SELL", 4, 16),
        # B: lost whole, then read again with C and lost after its outputs went out
        new(4, "bob", "SELL", 2, 15),
        new(5, "dave", "BUY", 6, 16, time_in_force="IOC"),
        drop(3, "carol"),  # filled meanwhile: refused
        # C
        new(7, "erin", "SELL", 2, 14),
        new(8, "alice", "BUY", 1, 14, time_in_force="FOK"),
        drop(7, "erin"),
        # D
        new(10, "bob", "BUY", 3, None, order_type="MARKET"),
        new(1, "alice", "BUY", 2, 15),  # an id used before: refused
    ]
    batch = {"A": range(0, 3), "B": range(3, 6), "C": range(6, 9), "D": range(9, 11)}

    def batches(*names: str) -> dict[int, list[Packed]]:
        offsets = [offset for name in names for offset in batch[name]]
        return fetched(0, *((offset, json.dumps(log[offset]).encode()) for offset in offsets))

    async def nothing(*args: Any) -> None:
        return None

    await match_orders(batches("A"))
    await pipeline().drain()
    with monkeypatch.context() as crash:  # the worker dies before B's outputs go out
        crash.setattr(pipeline(), "commit", nothing)
        await match_orders(batches("B"))
    assert len(sent["events"]) == 4
    state.invalidate()  # restarted: the books come from the table again
    with monkeypatch.context() as crash:  # it dies after B and C's outputs, before their state
        crash.setattr(checkpoint(), "write_tables", nothing)
        await match_orders(batches("B", "C"))
        await pipeline().drain()
    state.invalidate()
    await match_orders(batches("B", "C", "D"))  # matched again, D for the first time
    await match_orders(batches("D"))  # applied: nothing again
    await pipeline().drain()

    reference = ReferenceExchange().run(log)
    reports = [value for _, value, _ in sent["events"]]
    unique = reports_by_key(reports)  # asserts every copy equals its first
    assert len(reports) > len(unique), "B and C's reports were not sent again"
    assert unique == reports_by_key(reference.reports)
    assert trades_by_id(value for _, value, _ in sent["trades"]) == trades_by_id(reference.trades)
    statuses = [(r["order_id"], r["status"]) for r in reference.reports]
    assert statuses == [
        (1, "ACCEPTED"),
        (2, "FILLED"),
        (1, "PARTIALLY_FILLED"),
        (3, "ACCEPTED"),
        (4, "FILLED"),
        (1, "FILLED"),
        (5, "CANCELLED"),
        (3, "FILLED"),
        (3, "REJECTED"),
        (7, "ACCEPTED"),
        (8, "FILLED"),
        (7, "PARTIALLY_FILLED"),
        (7, "CANCELLED"),
        (10, "CANCELLED"),
        (1, "REJECTED"),
    ]
