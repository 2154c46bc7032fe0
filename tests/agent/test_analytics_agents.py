"""The analytics agents with Faust's test_context(): trades in, sma/profit/fills/pnl out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from exchange_app.packing import Packed, pack
from exchange_app.routing import home_partition, key_partition
from exchange_app.wire import dumps, loads
from tests.factories import Stream, event, fail_once
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
    await _analyse([event(packed(*TRADES), PARTITION, 0)])
    sma = [value for _, value, _ in sent["sma"]]
    assert [(r["final"], r["last_seq"]) for r in sma] == [(True, 2), (False, 3)]
    [(_, fills, partition)] = [b for b in sent["fills"] if b[2] == key_partition("alice", 4)][:1]
    await _compute_pnl([event(dumps(fills), partition, 0)])
    alice = [value for _, value, _ in sent["pnl"] if value["account"] == "alice"]
    assert [r["seq"] for r in alice] == [3]  # the last record per account and instrument


def _sma(sent: Any) -> list[tuple[bool, int, Any, Any]]:
    return [(r["final"], r["last_seq"], r["vwap"], r["volume"]) for _, r, _ in sent["sma"]]


async def test_a_batch_hands_the_loop_back_and_comes_out_the_same(
    test_app, sent, monkeypatch
) -> None:
    monkeypatch.setattr("exchange_app.sharing.SLICE_SECONDS", 0.0)  # every turn yields
    from exchange_app.agents.analytics import _analyse

    events = [event(packed(t), PARTITION, offset) for offset, t in enumerate(TRADES)]
    assert await runs_alongside(_analyse(events)) >= len(events)
    assert _sma(sent) == [(True, 2, 12, 4), (False, 3, 12, 2)]


def test_partitions_move_only_once_every_taken_event_is_acked(test_app) -> None:
    """The analytics hand the loop back mid-batch and drop their in-memory state when
    partitions are assigned: Faust must not assign while a batch is under way."""
    assert test_app.conf.stream_wait_empty is True


def _failing_for(seq: int, real: Any) -> Any:
    """``real``, raising for the trade (or fill) of sequence ``seq``."""

    def call(item: dict, *args: Any) -> Any:
        if int(item["seq"]) == seq:
            raise RuntimeError(f"no way to handle {seq}")
        return real(item, *args)

    return call


def _fills(sent: Any) -> list[tuple[int, int, str]]:
    return sorted(
        (f["seq"], f["leg"], f["account"]) for _, v, _ in sent["fills"] for f in v["fills"]
    )


async def test_a_trade_that_raises_goes_to_the_dlq_and_the_rest_is_applied_once(
    test_app, sent, monkeypatch
) -> None:
    """Trade 2 raises after the bars, the profit and the tape took it (its fills come
    last): none of that stays, and trades 1 and 3 are applied exactly once."""
    from exchange_app.agents import analytics

    monkeypatch.setattr(analytics, "fills_of", _failing_for(2, analytics.fills_of))
    await analytics._analyse([event(packed(*TRADES), PARTITION, 7)])
    [(_, dlq, _)] = sent["dlq"]
    assert dlq["source"] == {"topic": "t", "partition": PARTITION, "offset": 7, "index": 1}
    assert dlq["reasons"] == ["internal error: RuntimeError('no way to handle 2')"]
    assert loads(dlq["value"])["seq"] == 2
    # trade 1 alone in the 09:00 bar, trade 3 in the 09:05 one
    assert _sma(sent) == [(True, 1, 10, 2), (False, 3, 12, 2)]
    assert _fills(sent) == [(1, 0, "alice"), (1, 1, "bob"), (3, 0, "alice")]
    assert [t["seq"] for t in analytics.tape.recent("TCS", 10)] == [3, 1]
    assert analytics.tape.head("TCS")["volume"] == 4
    assert [b.last_seq for b in analytics.bars.window("TCS").closed] == [1]


async def test_a_fill_that_raises_goes_to_the_dlq_and_the_rest_is_applied_once(
    test_app, sent, monkeypatch
) -> None:
    from exchange_app.agents import analytics

    fills = [f for t in TRADES for f in analytics.fills_of(t) if f["account"] == "alice"]
    handle = analytics.ledger.handle
    monkeypatch.setattr(analytics.ledger, "handle", _failing_for(2, handle))
    await analytics._compute_pnl([event(dumps({"fills": fills}), 0, 3)])
    [(_, dlq, _)] = sent["dlq"]
    assert dlq["source"] == {"topic": "t", "partition": 0, "offset": 3, "index": 1}
    assert [r["seq"] for _, r, _ in sent["pnl"]] == [3]  # coalesced: the last per account
    position = analytics.ledger.position("alice", "TCS")
    assert (position.quantity, position.average_cost) == (4, 11)  # 2 at 10, 2 at 12


async def test_an_agent_that_fails_mid_batch_takes_the_batch_again_after_its_restart(
    test_app, sent, monkeypatch
) -> None:
    """Faust restarts an agent that raised; the batch it had taken is read again (here:
    given again) and applied once, not stepped over as already processed."""
    from exchange_app.agents import analytics, batches

    monkeypatch.setattr(batches, "rest", lambda *args: None)
    monkeypatch.setattr(analytics, "complete", fail_once(analytics.complete))
    events = [event(packed(*TRADES[:2]), PARTITION, 0), event(packed(TRADES[2]), PARTITION, 1)]
    with pytest.raises(RuntimeError, match="lost its producer"):
        await analytics.analyse_trades.fun(Stream(events))
    assert not sent["sma"] and not sent["fills"]
    await analytics.analyse_trades.fun(Stream(events))  # restarted: the same events again
    assert _sma(sent) == [(True, 2, 12, 4), (False, 3, 12, 2)]
    assert _fills(sent) == [(1, 0, "alice"), (1, 1, "bob"), (2, 0, "alice"), (2, 1, "bob"),
                            (3, 0, "alice")]  # fmt: skip
    fills = sent["fills"]
    await analytics.compute_pnl.fun(Stream([event(dumps(v), p, 0) for _, v, p in fills]))
    assert {(r["account"], r["position"]) for _, r, _ in sent["pnl"]} == {
        ("alice", 6),
        ("bob", -4),
    }
