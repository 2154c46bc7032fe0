"""Bars, SMA and window profit: the pure cores, and a batch cross-check with pandas."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.engine.bars import BarWindow, bucket_start
from exchange_app.engine.profit import window_profit

T0 = datetime(2023, 3, 12, 9, 0, tzinfo=UTC)
D = Decimal


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("moment", "seconds", "start"),
    [
        (datetime(2023, 3, 12, 9, 4, 59, tzinfo=UTC), 300, datetime(2023, 3, 12, 9, 0, tzinfo=UTC)),
        (datetime(2023, 3, 12, 9, 5, 0, tzinfo=UTC), 300, datetime(2023, 3, 12, 9, 5, tzinfo=UTC)),
        # 7-minute buckets restart at midnight: 00:00, 00:07, ..., 23:55 (a short last one)
        (datetime(2023, 3, 13, 0, 6, tzinfo=UTC), 420, datetime(2023, 3, 13, 0, 0, tzinfo=UTC)),
        (datetime(2023, 3, 12, 23, 59, tzinfo=UTC), 420, datetime(2023, 3, 12, 23, 55, tzinfo=UTC)),
    ],
)
def test_buckets_are_aligned_to_utc_midnight(moment, seconds, start) -> None:
    assert bucket_start(moment, seconds) == start


def run(trades, windows=(2,), seconds=300):
    window = BarWindow(seconds, windows)
    updates = []
    for seq, (minute, price, quantity) in enumerate(trades, 1):
        window, batch = window.apply(at(minute), D(price), D(quantity), seq)
        updates += [(bar, final, {n: window.sma(bar, n) for n in windows}) for bar, final in batch]
    return window, updates


def test_bar_ohlcv_vwap_and_counts() -> None:
    window, updates = run([(0, "10", "2"), (1, "12", "1"), (2, "9", "3"), (3, "11", "4")])
    bar = window.open_bar
    assert (bar.open, bar.high, bar.low, bar.close) == (10, 12, 9, 11)
    assert bar.volume == 10 and bar.count == 4 and bar.price_sum == 42
    assert bar.vwap == D("10.3")  # (20 + 12 + 27 + 44) / 10
    assert [final for _, final, _ in updates] == [False] * 4


def test_final_emitted_once_when_a_later_trade_opens_a_new_bar() -> None:
    _, updates = run([(0, "10", "1"), (1, "12", "1"), (6, "14", "1")])
    assert [(u[0].start, u[1]) for u in updates] == [
        (at(0), False),
        (at(0), False),
        (at(0), True),
        (at(5), False),
    ]
    assert updates[2][0].close == 12


def test_sma_skips_an_empty_bucket_inside_the_window() -> None:
    # buckets 9:00 (vwap 10), 9:05 empty, 9:10 (vwap 16)
    _, updates = run([(0, "10", "1"), (11, "16", "1")], windows=(2, 3))
    last_bar, _, smas = updates[-1]
    assert last_bar.start == at(10)
    assert smas[2] == 16  # 9:05 and 9:10: only one non-empty bucket
    assert smas[3] == 13  # 9:00, 9:05, 9:10: mean of 10 and 16


def test_closed_bars_are_bounded_by_the_longest_window() -> None:
    window, _ = run([(5 * i, "10", "1") for i in range(50)], windows=(2, 5))
    assert len(window.closed) == 5  # the windows of the last closed bar


def test_window_profit_opens_at_the_oldest_non_empty_bar() -> None:
    window, _ = run([(0, "10", "1"), (1, "14", "1"), (5, "20", "1")], windows=(2,))
    figures = window_profit(window, window.open_bar, 2)
    assert figures.opening_price == 10  # first trade of the 9:00 bar
    assert figures.closing_price == 16  # mean of vwaps 12 and 20
    assert figures.profit == 6


def random_trades(n: int, seed: int) -> list[tuple[float, str, str]]:
    rng = random.Random(seed)
    minute, trades = 0.0, []
    for _ in range(n):
        minute += rng.expovariate(1 / 1.5)  # gaps of several buckets happen
        trades.append((minute, str(rng.randint(1000, 2000) / 100), str(rng.randint(1, 9))))
    return trades


@pytest.mark.parametrize("windows", [(2,), (3, 7)])
def test_streaming_bars_equal_the_pandas_batch_computation(windows) -> None:
    trades = random_trades(3000, seed=len(windows))
    window, updates = run(trades, windows=windows)
    final = {bar.start: (bar, smas) for bar, is_final, smas in updates if is_final}
    last = updates[-1]
    final[last[0].start] = (last[0], last[2])

    frame = pd.DataFrame(
        {
            "price": [float(p) for _, p, _ in trades],
            "quantity": [float(q) for _, _, q in trades],
        },
        index=pd.DatetimeIndex([at(m) for m, _, _ in trades]),
    )
    frame["pq"] = frame.price * frame.quantity
    bars = frame.resample("300s", origin="start_day").agg(
        {"price": ["first", "max", "min", "last", "sum"], "quantity": "sum", "pq": "sum"}
    )
    bars.columns = ["open", "high", "low", "close", "price_sum", "volume", "notional"]
    bars["vwap"] = bars.notional / bars.volume.where(bars.volume > 0)
    for n in windows:
        bars[f"sma{n}"] = bars.vwap.rolling(n, min_periods=1).mean()
    first_window = windows[0]
    bars["window_open"] = [
        bars.open.iloc[max(0, i - first_window + 1) : i + 1].dropna().iloc[0]
        if not pd.isna(bars.vwap.iloc[i])
        else None
        for i in range(len(bars))
    ]
    expected = bars.dropna(subset=["vwap"])

    assert len(expected) == len(final)
    for start, row in expected.iterrows():
        bar, smas = final[start.to_pydatetime()]
        assert float(bar.open) == row.open and float(bar.close) == row.close
        assert float(bar.high) == row.high and float(bar.low) == row.low
        assert float(bar.volume) == row.volume
        assert float(bar.vwap) == pytest.approx(row.vwap, rel=1e-12)
        for n in windows:
            assert float(smas[n]) == pytest.approx(row[f"sma{n}"], rel=1e-12)
    # profit of the latest bar, as the original design defines it
    figures = window_profit(window, window.open_bar, first_window)
    row = expected.iloc[-1]
    assert float(figures.opening_price) == row.window_open
    assert float(figures.profit) == pytest.approx(row[f"sma{first_window}"] - row.window_open)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 0, 5, tzinfo=UTC),
    ],
)
def test_bars_hold_at_the_calendars_ends(moment: datetime) -> None:
    """The arithmetic saturates: the engine never overflows, whatever reaches it."""
    window, updates = BarWindow(300, (2, 5)).apply(moment, D(10), D(1), 1)
    window, updates = window.apply(moment, D(12), D(1), 2)
    assert updates[-1][0].count == 2 and window.sma(updates[-1][0], 5) == 11
    assert window.open_bar is not None and window.open_bar.start <= moment


@given(
    st.lists(
        st.tuples(
            st.datetimes(timezones=st.just(UTC)),
            st.decimals(min_value=1, max_value=1000, places=2),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([60, 300, 86_400]),
)
def test_bars_take_any_time_in_any_order_without_raising(trades, seconds) -> None:
    window = BarWindow(seconds, (2, 10))
    for seq, (moment, price) in enumerate(trades, 1):
        window, updates = window.apply(moment, price, D(1), seq)
        bar = updates[-1][0]
        assert bar.last_seq == seq and window.sma(bar, 10) > 0
