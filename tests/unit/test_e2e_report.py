"""The end-to-end benchmark's table: percentiles and the summary of latency rounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange_app.e2e.report import Round, Row, percentile, render, rounds_summary


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 1.0), (1, 1.0), (50, 50.0), (99, 99.0), (99.5, 100.0), (100, 100.0)]
)
def test_percentile_is_the_nearest_rank(q: float, expected: float) -> None:
    assert percentile([float(i) for i in range(1, 101)], q) == expected


def test_one_round_is_reported_as_it_is() -> None:
    ms = [float(i) for i in range(1, 201)]
    assert rounds_summary([Round(ms, 1_999.6)], "trades") == (
        "p50 100.0 ms, p99 198.0 ms, max 200.0 ms; 200 trades, 2,000/s held"
    )


def test_rounds_give_medians_every_p99_and_the_lowest_rate_held() -> None:
    quiet = Round([10.0] * 98 + [30.0, 40.0], 2_000.0)
    noisy = Round([12.0] * 98 + [61.0, 90.0], 1_990.0)
    middle = Round([11.0] * 98 + [35.0, 50.0], 2_000.0)
    assert rounds_summary([quiet, noisy, middle], "trades") == (
        "p50 11.0 ms, p99 35.0 ms, max 50.0 ms (medians of 3 rounds; p99 30.0 / 61.0 / 35.0 ms); "
        "100 trades a round, 1,990/s held"
    )


@given(
    st.lists(
        st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=50).map(sorted),
        min_size=1,
        max_size=7,
    )
)
def test_the_median_p99_lies_between_the_rounds_p99s(rounds: list[list[float]]) -> None:
    text = rounds_summary([Round(ms, 1.0) for ms in rounds], "copies")
    reported = float(text.split("p99 ", 1)[1].split(" ms", 1)[0].replace(",", ""))
    p99s = [percentile(ms, 99) for ms in rounds]
    assert round(min(p99s), 1) <= reported <= round(max(p99s), 1)


def test_render_aligns_the_columns() -> None:
    table = render([Row("a", "1 msg/s", "1.00"), Row("longer phase", "2", rss=12.4)])
    assert table.splitlines() == [
        "phase         result   vs pass-through  peak RSS",
        "a             1 msg/s  1.00",
        "longer phase  2                         12 MiB",
    ]
