"""The trade tape and bar history: bounded rings per instrument for the web views.

Keys (one table, co-partitioned with the trades topic by instrument):

* ``h:<instrument>`` — the head: last ``seq``, last price, volume, trade count;
* ``t:<instrument>:<seq % TAPE_SIZE>`` — the last ``TAPE_SIZE`` trades;
* ``b:<instrument>:<bucket % HISTORY_SIZE>`` — the last final bars (``sma`` records).

Writes are overwrites keyed by sequence, so a re-sent trade or bar changes nothing.
The heads live in memory between batches and are written once per batch
(:meth:`TradeTape.flush`); the views read what the table holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from exchange_app.wire import parse_time

from .transaction import Transaction

__all__ = ["HISTORY_SIZE", "TAPE_SIZE", "TradeTape"]

TAPE_SIZE = 200
HISTORY_SIZE = 120


class TradeTape:
    def __init__(self, table: Mapping[str, Any], bar_seconds: int) -> None:
        self.table = table
        self.bar_seconds = bar_seconds
        self._heads: dict[str, dict[str, Any] | None] = {}
        self._dirty: dict[str, int] = {}

    def record_trade(self, trade: dict[str, Any], partition: int, tx: Transaction) -> None:
        instrument, seq = trade["instrument"], int(trade["seq"])
        if instrument in self._heads:
            head = self._heads[instrument]
        else:
            head = self._heads[instrument] = self.head(instrument)
        if head is not None and head["seq"] >= seq:
            return  # a re-sent copy
        volume = Decimal(head["volume"]) if head else Decimal(0)
        tx.write(self.table, partition, f"t:{instrument}:{seq % TAPE_SIZE}", trade)
        self._heads[instrument] = {
            "seq": seq,
            "last_price": trade["price"],
            "last_quantity": trade["quantity"],
            "timestamp": trade["timestamp"],
            "volume": volume + Decimal(trade["quantity"]),
            "trades": seq,
        }
        self._dirty[instrument] = partition

    def record_bar(self, bar: dict[str, Any], partition: int, tx: Transaction) -> None:
        if bar.get("final"):
            slot = self._bucket(bar["bar_start"]) % HISTORY_SIZE
            tx.write(self.table, partition, f"b:{bar['instrument']}:{slot}", bar)

    def flush(self, tx: Transaction) -> None:
        for instrument, partition in self._dirty.items():
            tx.write(self.table, partition, f"h:{instrument}", self._heads[instrument])
        self._dirty.clear()

    def invalidate(self) -> None:
        self._heads.clear()
        self._dirty.clear()

    def head(self, instrument: str) -> dict[str, Any] | None:
        return self.table.get(f"h:{instrument}")

    def recent(self, instrument: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` trades, newest first."""
        head = self.head(instrument)
        if head is None:
            return []
        last = int(head["seq"])
        seqs = range(last, max(0, last - min(limit, TAPE_SIZE)), -1)
        trades = (self.table.get(f"t:{instrument}:{seq % TAPE_SIZE}") for seq in seqs)
        return [t for t, seq in zip(trades, seqs, strict=True) if t is not None and t["seq"] == seq]

    def history(self, instrument: str, before: str | None) -> list[dict[str, Any]]:
        """Final bars older than ``before`` (a bar start), oldest first."""
        if before is None:
            return []
        newest = self._bucket(before) - 1
        found = []
        for bucket in range(newest, newest - HISTORY_SIZE, -1):
            bar = self.table.get(f"b:{instrument}:{bucket % HISTORY_SIZE}")
            if bar is not None and self._bucket(bar["bar_start"]) == bucket:
                found.append(bar)
        return found[::-1]

    def _bucket(self, bar_start: str | datetime) -> int:
        moment = parse_time(bar_start) if isinstance(bar_start, str) else bar_start
        return int(moment.timestamp()) // self.bar_seconds
