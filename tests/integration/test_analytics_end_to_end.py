"""Orders to sma, profit and pnl records on a real worker; replay under a new app id."""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from exchange_app.export import PROFIT_COLUMNS, SMA_COLUMNS, TRADE_COLUMNS, export
from exchange_app.orderflow import seed_orders, stepping_clock
from exchange_app.settings import Settings
from tests.harness import (
    consume,
    consume_analytics,
    count_at_least,
    exchange_env,
    latest,
    list_instruments,
    produce,
    reference_analytics,
    reference_outputs,
    topic,
    trades_by_id,
)

pytestmark = pytest.mark.integration

ACCOUNTS = ("alice", "bob", "carol", "dave", "erin")


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(
        broker=env["EXCHANGE_BROKER"],
        trades_topic=topic(env, "trades"),
        sma_topic=topic(env, "sma"),
        profit_topic=topic(env, "profit"),
    )


async def test_orders_to_analytics_and_replay_under_a_new_app_id(
    broker, env, tmp_path: Path, start_worker
) -> None:
    orders = list(
        itertools.islice(
            seed_orders(clock=stepping_clock(step=1.5), seed=5, accounts=ACCOUNTS), 2400
        )
    )
    trades = sorted(
        (o.value for o in reference_outputs(orders) if o.stream == "trades"),
        key=lambda t: (t["instrument"], t["seq"]),
    )
    expected = reference_analytics(trades)

    start_worker(env, "first")
    await produce(env, orders)
    got = await consume_analytics(env, expected)

    # every figure equals the clean computation (copies, if any, are identical)
    for name, key in (
        ("sma", ("instrument", "bar_start")),
        ("profit", ("instrument", "bar_start")),
    ):
        assert latest(got[name], *key) == latest(expected[name], *key)
        finals = [r for r in got[name] if r["final"]]
        assert {tuple(r[k] for k in key) for r in finals} == {
            tuple(r[k] for k in key) for r in expected[name] if r["final"]
        }
    assert latest(got["pnl"], "account", "instrument") == latest(
        expected["pnl"], "account", "instrument"
    )

    # P&L is zero-sum per instrument when every account is marked at the last price
    last_price = {t["instrument"]: t["price"] for t in trades}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for record in latest(got["pnl"], "account", "instrument").values():
        mark = last_price[record["instrument"]]
        unrealized = mark * record["position"] - record["cost_basis"]
        totals[record["instrument"]] += record["realized"] + unrealized
    assert totals and all(total == 0 for total in totals.values())

    # the original design's CSV files
    rows = await export(settings_of(env), tmp_path / "csv")
    files = {name: pd.read_csv(tmp_path / "csv" / name) for name in rows}
    assert list(files["successful_orders.csv"].columns) == TRADE_COLUMNS
    assert list(files["sma_calc.csv"].columns) == SMA_COLUMNS
    assert list(files["profit_calc.csv"].columns) == PROFIT_COLUMNS
    bars = len(latest(expected["sma"], "instrument", "bar_start"))
    assert rows == {
        "successful_orders.csv": len(trades),
        "sma_calc.csv": bars,
        "profit_calc.csv": bars,
    }

    # a second app reads the order log from the earliest offset: identical analytics
    replay = exchange_env(
        broker.url, tmp_path / "replay", EXCHANGE_ORDERS_TOPIC=topic(env, "orders")
    )
    await list_instruments(replay)
    start_worker(replay, "replay")
    again = await consume_analytics(replay, expected)
    for name, key in (
        ("sma", ("instrument", "bar_start")),
        ("profit", ("instrument", "bar_start")),
        ("pnl", ("account", "instrument")),
    ):
        assert latest(again[name], *key) == latest(got[name], *key)
    assert trades_by_id(await consume(replay, "trades", until=count_at_least(len(trades)))) == (
        trades_by_id(trades)
    )
