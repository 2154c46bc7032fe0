"""The analytics agents with Faust's test_context(): trades in, sma/profit/fills/pnl out."""

from __future__ import annotations

from decimal import Decimal

from exchange_app.routing import home_partition


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
TRADES = [trade(1, "10", 1), trade(2, "14", 2), trade(3, "12", 6, seller=None)]


async def test_bars_and_profit_with_a_resent_trade(test_app, sent) -> None:
    from exchange_app.agents.analytics import compute_bars, compute_profit

    for agent_fn, stream in ((compute_bars, "sma"), (compute_profit, "profit")):
        async with agent_fn.test_context() as agent:
            for t in [*TRADES[:2], TRADES[1], TRADES[2]]:  # trade 2 is re-sent once
                await agent.put(t, key="TCS", partition=PARTITION)
        assert sent[stream][1] == sent[stream][2]  # the re-sent trade re-sent its record
    sma = [value for _, value, _ in sent["sma"]]
    assert [(r["final"], r["last_seq"]) for r in sma] == [
        (False, 1),
        (False, 2),
        (False, 2),
        (True, 2),
        (False, 3),
    ]
    assert sma[-2]["vwap"] == 12 and sma[-2]["volume"] == 4
    assert sma[-1]["sma"] == {"2": Decimal(12)}
    profit = [value for _, value, _ in sent["profit"]][-1]
    assert (profit["opening_price"], profit["closing_price"], profit["profit"]) == (10, 12, 2)


async def test_fills_by_account_then_pnl(test_app, sent) -> None:
    from exchange_app.agents.analytics import compute_pnl, split_fills

    async with split_fills.test_context() as agent:
        for t in TRADES:
            await agent.put(t, key="TCS", partition=PARTITION)
    fills = [(key, value) for key, value, _ in sent["fills"]]
    assert [(key, f["side"], f["seq"]) for key, f in fills] == [
        ("alice", "BUY", 1),
        ("bob", "SELL", 1),
        ("alice", "BUY", 2),
        ("bob", "SELL", 2),
        ("alice", "BUY", 3),  # the seller of trade 3 has no account
    ]
    async with compute_pnl.test_context() as agent:
        for key, fill in [*fills, fills[0]]:  # the first fill re-sent
            await agent.put(fill, key=key, partition=home_partition(key, 4))
    pnl = [value for _, value, _ in sent["pnl"]]
    last = {(r["account"], r["instrument"]): r for r in pnl[:-1]}
    alice, bob = last[("alice", "TCS")], last[("bob", "TCS")]
    assert alice["position"] == 6 and bob["position"] == -4
    assert alice["average_cost"] == 12 and alice["mark_price"] == 12
    assert pnl[-1] == pnl[0]  # the re-sent fill re-sent its record, nothing else
    assert alice["unrealized"] == 0  # lots at 10, 14, 12 marked at 12
    assert (bob["mark_price"], bob["total"]) == (14, -8)  # short 2 at 10 marked at 14
