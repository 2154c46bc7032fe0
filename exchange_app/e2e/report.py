"""The end-to-end benchmark's table: one row per figure, aligned columns.

::

    phase                   result            vs pass-through  peak RSS
    aiokafka pass-through   …  msg/s          1.00
    bare Faust agent        …  events/s       0.…              … MiB
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HEADER", "Round", "Row", "percentile", "render", "rounds_summary"]

HEADER = ("phase", "result", "vs pass-through", "peak RSS")


@dataclass(frozen=True)
class Row:
    phase: str
    result: str
    #: the rate divided by the pass-through's, formatted; empty where it means nothing
    ratio: str = ""
    #: the worker's peak resident memory (VmHWM) at the end of the phase, MiB
    rss: float | None = None

    @property
    def failed(self) -> bool:
        return self.result.startswith("FAILED")

    def cells(self) -> tuple[str, str, str, str]:
        rss = "" if self.rss is None else f"{self.rss:,.0f} MiB"
        return self.phase, self.result, self.ratio, rss


def render(rows: Sequence[Row]) -> str:
    """The rows under a header, each column as wide as its widest cell."""
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Round:
    """One round of a latency phase."""

    #: the delays in ms, ascending, non-empty
    ms: Sequence[float]
    #: orders/s the offering producer held
    held: float
    rss: float | None = None


def rounds_summary(rounds: Sequence[Round], what: str) -> str:
    """The medians of the rounds' p50, p99 and max, every round's p99, and the rate held
    (the lowest of the rounds)."""
    stats = [(percentile(r.ms, 50), percentile(r.ms, 99), r.ms[-1]) for r in rounds]
    p50, p99, top = (statistics.median(column) for column in zip(*stats, strict=True))
    text = f"p50 {p50:,.1f} ms, p99 {p99:,.1f} ms, max {top:,.1f} ms"
    count = statistics.median_low(len(r.ms) for r in rounds)
    if len(rounds) > 1:
        each = " / ".join(f"{p:,.1f}" for _, p, _ in stats)
        text += f" (medians of {len(rounds)} rounds; p99 {each} ms)"
        what += " a round"
    return f"{text}; {count:,} {what}, {min(r.held for r in rounds):,.0f}/s held"
