"""``exchange bench --e2e`` at small sizes: every phase runs and prints figures that add up.

The figures themselves are the benchmark's business (a shared machine is too noisy to
assert speeds); this checks that each phase finished and that its numbers are consistent.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from exchange_app.processes import EXCHANGE, ROOT

pytestmark = pytest.mark.integration

ROWS = [
    "aiokafka pass-through",
    "bare Faust agent",
    "matching drain",
    "all-agents drain",
    "latency at 2,000/s for 2 s",
    "pass-through latency at 2,000/s",
    "resting drain (3,000 orders)",
    "restart on local state",
    "restart from changelog",
]
NUMBER = r"([\d,]+(?:\.\d+)?)"


def number(text: str) -> float:
    return float(text.replace(",", ""))


def delays(result: str) -> tuple[float, float, float, list[float], int]:
    """p50, p99, max, every round's p99 and the records of a round, from a latency row."""
    found = re.match(
        rf"p50 {NUMBER} ms, p99 {NUMBER} ms, max {NUMBER} ms "
        rf"\(medians of 2 rounds; p99 {NUMBER} / {NUMBER} ms\); {NUMBER} \w+ a round",
        result,
    )
    assert found, result
    p50, p99, top, first, second, count = (number(g) for g in found.groups())
    return p50, p99, top, [first, second], int(count)


def test_every_phase_prints_consistent_figures() -> None:
    command = [EXCHANGE, "bench", "--e2e", "--orders", "1500", "--resting", "3000"]
    command += ["--latency-seconds", "2", "--latency-rounds", "2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    header, *lines = done.stdout.splitlines()[1:]
    assert header.split()[:2] == ["phase", "result"]
    rows = {}
    for line in lines:
        name = next((r for r in ROWS if line.startswith(r + "  ")), None)
        assert name is not None, line
        rows[name] = line[len(name) :].strip()
    assert list(rows) == ROWS
    assert not any("FAILED" in text for text in rows.values())

    found = re.match(rf"{NUMBER} msg/s", rows["aiokafka pass-through"])
    assert found, rows["aiokafka pass-through"]
    base = number(found.group(1))
    assert base > 0
    for name, unit in [("bare Faust agent", "events/s"), ("matching drain", "orders/s"),
                       ("all-agents drain", "orders/s")]:  # fmt: skip
        found = re.match(rf"{NUMBER} {unit}\s+(\d+\.\d\d)\s+{NUMBER} MiB", rows[name])
        assert found, rows[name]
        rate, ratio, rss = (number(g) for g in found.groups())
        assert rate > 0 and rss > 0
        assert ratio == pytest.approx(rate / base, abs=0.006), name  # printed to 2 places

    p50, p99, top, rounds, trades = delays(rows["latency at 2,000/s for 2 s"])
    assert 0 < p50 <= p99 <= top and min(rounds) <= p99 <= max(rounds) and trades > 0
    p50, p99, top, rounds, copies = delays(rows["pass-through latency at 2,000/s"])
    assert 0 < p50 <= p99 <= top and min(rounds) <= p99 <= max(rounds)
    assert copies == 4_000  # every order offered in a round is copied once

    for name in ("restart on local state", "restart from changelog"):
        found = re.match(
            rf"Ready {NUMBER} s, /health 200 {NUMBER} s, books served {NUMBER} s", rows[name]
        )
        assert found, rows[name]
        ready, healthy, served = (number(g) for g in found.groups())
        assert 0 < ready <= served and 0 < healthy <= served  # the books load last
