"""The end-to-end benchmark's table: one row per figure, aligned columns.

::

    phase                   result            vs pass-through  peak RSS
    aiokafka pass-through   …  msg/s          1.00
    bare Faust agent        …  events/s       0.…              … MiB
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HEADER", "Row", "percentile", "render"]

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
