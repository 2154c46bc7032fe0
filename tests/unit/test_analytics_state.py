"""Analytics adapters over a dict: outputs per trade, and re-sent trades change nothing."""

from __future__ import annotations

import copy
from decimal import Decimal

from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, fills_of
from tests.factories import handled


def trade(seq: int, price: str, quantity: str, minute: int, buyer=None, seller=None) -> dict:
    return {
        "instrument": "TCS",
        "quantity": Decimal(quantity),
        "price": Decimal(price),
        "trade_id": f"TCS-{seq}",
        "seq": seq,
        "buyer": buyer,
        "seller": seller,
        "timestamp": f"2023-03-12T09:{minute:02d}:00+00:00",
    }


TRADES = [
    trade(1, "10", "2", 0, "alice", "bob"),
    trade(2, "12", "2", 3, "bob", "alice"),
    trade(3, "11", "1", 7, "alice", "carol"),
]


def test_sma_records_per_trade_with_final_on_bucket_change() -> None:
    bars = BarsAnalytics({}, 300, (2, 3))
    records = [o.value for t in TRADES for o in handled(bars, t)]
    assert [(r["bar_start"][11:16], r["final"], r["last_seq"]) for r in records] == [
        ("09:00", False, 1),
        ("09:00", False, 2),
        ("09:00", True, 2),
        ("09:05", False, 3),
    ]
    assert records[2]["vwap"] == 11 and records[2]["sma"] == {"2": 11, "3": 11}
    assert records[3]["sma"]["2"] == 11  # mean of 11 and 11


def test_profit_records() -> None:
    profits = ProfitAnalytics({}, 300, (2,))
    last = [o.value for t in TRADES for o in handled(profits, t)][-1]
    assert (last["opening_price"], last["closing_price"], last["profit"]) == (10, 11, 1)


def test_fills_skip_sides_without_account() -> None:
    assert [
        (f["account"], f["side"], f["leg"]) for f in fills_of(trade(1, "10", "1", 0, "al"))
    ] == [("al", "BUY", 0)]


def test_pnl_records_and_self_trades() -> None:
    ledger = PnlLedger({})
    outputs = [o.value for t in TRADES for f in fills_of(t) for o in handled(ledger, f)]
    alice = [o for o in outputs if o["account"] == "alice"]
    assert [(o["position"], o["realized"]) for o in alice] == [(2, 0), (0, 4), (1, 4)]
    # a self-trade is two fills of one seq: both legs apply
    self_trade = trade(4, "11", "1", 8, "dave", "dave")
    positions = [o.value["position"] for f in fills_of(self_trade) for o in handled(ledger, f)]
    assert positions == [1, 0]


def test_resent_trades_change_nothing_and_send_nothing() -> None:
    for adapter in (BarsAnalytics({}, 300, (2,)), ProfitAnalytics({}, 300, (2,)), PnlLedger({})):

        def feed(t, adapter=adapter):
            if isinstance(adapter, PnlLedger):
                return [o for f in fills_of(t) for o in handled(adapter, f)]
            return handled(adapter, t)

        assert all(feed(t) for t in TRADES)
        table = copy.deepcopy(adapter.state.table)
        again = [feed(t) for t in TRADES]  # every trade re-sent after a crash
        assert again == [[]] * len(TRADES)  # their outputs were delivered before their state
        assert adapter.state.table == table
