"""The analytics agents with Faust's test_context(): trades in, sma/profit/fills/pnl out."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from exchange_app.packing import Packed, pack
from exchange_app.routing import home_partition, key_partition
from exchange_app.wire import dumps
from tests.harness import runs_alongside


def trade(
    seq: int, price: str, minute: int, buyer: str | None = "alice", seller: str | None = "bob"
) -> dict:
    return {
        "id": seq,
        "id_sell": 100 + seq,
        "instrument": "TCS",
        "quantity": Decimal(2),
        "price": Decimal(price),
        "update_timestamp": f"2023/03/12, 09:{minute:02d}:00",
        "trade_id": f"TCS-{seq}",
        "seq": seq,
        "buyer": buyer,
        "seller": seller,
        "aggressor": "BUY",
        "timestamp": f"2023-03-12T09:{minute:02d}:00+00:00",
    }


PARTITION = home_partition("TCS", 4)


def packed(*trades: dict) -> bytes:
    """A trades-batched message, as the matching agent sends it."""
    return pack(Packed(PARTITION, t["seq"], 0, None, dumps(t)) for t in trades)


def _event(value: Any, partition: int, offset: int) -> Any:
    message = SimpleNamespace(
        topic="t", partition=partition, offset=offset, timestamp=None, value=value, key=None
    )
    return SimpleNamespace(value=value, message=message)


TRADES = [trade(1, "10", 1), trade(2, "14", 2), trade(3, "12", 6, seller=None)]


async def test_bars_and_profit_with_a_resent_trade(test_app, sent) -> None:
    from exchange_app.agents.analytics import analyse_trades

    async with analyse_trades.test_context() as agent:
        for t in [*TRADES[:2], TRADES[1], TRADES[2]]:  # trade 2 is re-sent once
            await agent.put(packed(t), partition=PARTITION)
    sma = [value for _, value, _ in sent["sma"]]
    # How the puts fall into batches varies; within one, superseded records are dropped.
    seqs = [(r["last_seq"], r["final"]) for r in sma]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # nothing twice
    assert [r["last_seq"] for r in sma if r["final"]] == [2]
    assert (sma[-1]["final"], sma[-1]["last_seq"]) == (False, 3)
    assert sma[-2]["vwap"] == 12 and sma[-2]["volume"] == 4
    assert sma[-1]["sma"] == {"2": Decimal(12)}
    assert {partition for _, _, partition in sent["sma"]} == {PARTITION}
    profit = [value for _, value, _ in sent["profit"]][-1]
    assert (profit["opening_price"], profit["closing_price"], profit["profit"]) == (10, 12, 2)


async def test_fills_by_account_then_pnl(test_app, sent) -> None:
    from exchange_app.agents.analytics import analyse_trades, compute_pnl

    async with analyse_trades.test_context() as agent:
        for t in TRADES:
            await agent.put(packed(t), partition=PARTITION)
    batches = sent["fills"]  # one message per input batch and account partition
    fills = [f for _, value, _ in batches for f in value["fills"]]
    assert sorted((f["seq"], f["leg"], f["account"], f["side"]) for f in fills) == [
        (1, 0, "alice", "BUY"),
        (1, 1, "bob", "SELL"),
        (2, 0, "alice", "BUY"),
        (2, 1, "bob", "SELL"),
        (3, 0, "alice", "BUY"),  # the seller of trade 3 has no account
    ]
    assert all(key_partition(f["account"], 4) == p for _, v, p in batches for f in v["fills"])
    async with compute_pnl.test_context() as agent:
        for _, value, partition in [*batches, batches[0]]:  # the first batch re-sent
            await agent.put(dumps(value), key=None, partition=partition)
    pnl = [value for _, value, _ in sent["pnl"]]
    last = {(r["account"], r["instrument"]): r for r in pnl}
    alice, bob = last[("alice", "TCS")], last[("bob", "TCS")]
    assert alice["position"] == 6 and bob["position"] == -4
    assert alice["average_cost"] == 12 and alice["mark_price"] == 12
    marks = [(r["account"], r["seq"]) for r in pnl]
    assert len(marks) == len(set(marks))  # the re-sent batch changed nothing and sent nothing
    assert alice["unrealized"] == 0  # lots at 10, 14, 12 marked at 12
    assert (bob["mark_price"], bob["total"]) == (14, -8)  # short 2 at 10 marked at 14


async def test_a_batch_coalesces_superseded_records_and_keeps_finals(test_app, sent) -> None:
    from exchange_app.agents.analytics import _analyse, _compute_pnl

    # One batch of three trades.
    await _analyse([_event(packed(*TRADES), PARTITION, 0)])
    sma = [value for _, value, _ in sent["sma"]]
    assert [(r["final"], r["last_seq"]) for r in sma] == [(True, 2), (False, 3)]
    [(_, fills, partition)] = [b for b in sent["fills"] if b[2] == key_partition("alice", 4)][:1]
    await _compute_pnl([_event(dumps(fills), partition, 0)])
    alice = [value for _, value, _ in sent["pnl"] if value["account"] == "alice"]
    assert [r["seq"] for r in alice] == [3]  # the last record per account and instrument


def _sma(sent: Any) -> list[tuple[bool, int, Any, Any]]:
    return [(r["final"], r["last_seq"], r["vwap"], r["volume"]) for _, r, _ in sent["sma"]]


async def test_a_batch_hands_the_loop_back_and_comes_out_the_same(
    test_app, sent, monkeypatch
) -> None:
    monkeypatch.setattr("exchange_app.sharing.SLICE_SECONDS", 0.0)  # every turn yields
    from exchange_app.agents.analytics import _analyse

    events = [_event(packed(t), PARTITION, offset) for offset, t in enumerate(TRADES)]
    assert await runs_alongside(_analyse(events)) >= len(events)
    assert _sma(sent) == [(True, 2, 12, 4), (False, 3, 12, 2)]


def test_partitions_move_only_once_every_taken_event_is_acked(test_app) -> None:
    """The analytics hand the loop back mid-batch and drop their in-memory state when
    partitions are assigned: Faust must not assign while a batch is under way."""
    assert test_app.conf.stream_wait_empty is True
