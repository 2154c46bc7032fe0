"""Benchmark of the pure matching engine: orders per second, median of several runs.

Orders are decoded before the clock starts: this measures matching only.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .engine import Cancel, Order, OrderBook, OrderRejected, policy_named
from .orderflow import deep_book_orders, seed_orders, stepping_clock
from .wire import decode_order

__all__ = ["BenchResult", "run_benchmarks"]


@dataclass(frozen=True)
class BenchResult:
    stream: str
    policy: str
    orders: int
    runs: list[float]  # orders per second, one per run
    fills: int
    resting: int

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def line(self) -> str:
        spread = f"{min(self.runs) / 1e3:,.0f}-{max(self.runs) / 1e3:,.0f}k"
        return (
            f"{self.stream:<6} {self.policy:<10} {self.orders:>9,} orders  "
            f"median {self.median:>11,.0f} orders/s  (runs {spread})  "
            f"{self.fills:,} fills, {self.resting:,} resting at the end"
        )


def _decoded(stream: Iterator[dict[str, Any]], count: int) -> list[Order | Cancel]:
    return [decode_order(raw) for raw in itertools.islice(stream, count)]


def _run(orders: Iterable[Order | Cancel], policy: str) -> tuple[float, int, int]:
    books: dict[str, OrderBook] = {}
    fills = 0
    gc.collect()
    started = time.perf_counter()
    for command in orders:
        book = books.get(command.instrument)
        if book is None:
            book = books[command.instrument] = OrderBook(command.instrument, policy_named(policy))
        try:
            if type(command) is Cancel:
                book.cancel(command)
            else:
                fills += len(book.submit(command).fills)  # type: ignore[arg-type]
        except OrderRejected:
            pass
    elapsed = time.perf_counter() - started
    return elapsed, fills, sum(len(book) for book in books.values())


def run_benchmarks(count: int = 200_000, runs: int = 5, seed: int = 7) -> list[BenchResult]:
    streams = {
        "seed": _decoded(seed_orders(clock=stepping_clock(), seed=seed), count),
        "deep": _decoded(deep_book_orders(clock=stepping_clock(), seed=seed), count),
    }
    results = []
    for (name, orders), policy in itertools.product(streams.items(), ("price-time", "exact")):
        if name == "deep" and policy == "exact":
            continue  # the exact policy has no use for a deep book of odd sizes
        rates = []
        for _ in range(runs):
            elapsed, fills, resting = _run(orders, policy)
            rates.append(len(orders) / elapsed)
        results.append(BenchResult(name, policy, len(orders), rates, fills, resting))
    return results
