"""The ids of a book's recent orders, so that an order id used again never trades twice.

A trader (or a gateway retrying a request it is unsure of) may send an order
id again after its first order has filled or been cancelled, when it is no
longer in the book. The book refuses such a repeat if the id is among its last
:data:`RECENT_ORDERS` orders at least: the horizon is counted in orders per
instrument, not in time, so it bounds memory and restart work whatever the
flow.

The ids are kept in numbered chunks of :data:`CHUNK` ids, oldest first; the
state layer persists a chunk as one table key, so a batch rewrites only the
chunk it added to, and a whole chunk is forgotten at once (one tombstone).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CHUNK", "RECENT_ORDERS", "RecentIds"]

#: Orders per instrument whose ids a book remembers at least (after they left the book).
RECENT_ORDERS = 100_000
#: Ids per persisted chunk: a batch rewrites one chunk of up to this many ids per instrument.
CHUNK = 500


class RecentIds:
    """The ids of at least the last ``horizon`` orders, in chunks of ``chunk`` ids.

    :meth:`add` runs once per order: it appends to the chunk being filled and
    does anything else only when that chunk is full.
    """

    __slots__ = ("_changed", "_chunks", "_current", "_touched", "chunk", "ids", "last", "limit")

    def __init__(self, horizon: int = RECENT_ORDERS, chunk: int = CHUNK) -> None:
        if horizon < 1 or chunk < 1:
            raise ValueError("horizon and chunk must be positive")
        self.chunk = chunk
        #: chunks kept: the full ones cover the horizon, the last one is being filled
        self.limit = -(-horizon // chunk) + 1
        self._chunks: dict[int, list[int]] = {}  # by number, oldest first
        #: every id remembered (one set object for the life of this instance)
        self.ids: set[int] = set()
        self.last = 0  # the number of the chunk being filled; 0: none yet
        # its ids; before the first chunk a full placeholder, so that the first add starts one
        self._current: list[int] = [0] * chunk
        self._changed: set[int] = set()  # chunks changed since take_changes, but the last
        self._touched = False  # whether the last chunk changed since take_changes

    def __contains__(self, order_id: object) -> bool:
        return order_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, order_id: int) -> int | None:
        """Remember ``order_id``; the number of the chunk this forgot, if it forgot one."""
        current = self._current
        dropped = None
        if len(current) >= self.chunk:
            if self._touched:
                self._changed.add(self.last)
            self.last += 1
            current = self._current = self._chunks[self.last] = []
            if len(self._chunks) > self.limit:
                dropped = next(iter(self._chunks))
                self.ids.difference_update(self._chunks.pop(dropped))
                self._changed.add(dropped)
        current.append(order_id)
        self.ids.add(order_id)
        self._touched = True
        return dropped

    def chunk_ids(self, number: int) -> list[int]:
        """The ids of chunk ``number`` (empty if it was forgotten)."""
        return list(self._chunks.get(number, ()))

    def restore(self, chunks: Iterable[tuple[int, Iterable[int]]]) -> None:
        """Load persisted chunks (any order); the newest ``limit`` of them are kept."""
        everything = sorted((number, list(ids)) for number, ids in chunks)
        loaded = everything[-self.limit :]
        self._chunks = dict(loaded)
        self.ids.clear()
        self.ids.update(order_id for _, ids in loaded for order_id in ids)
        self.last = loaded[-1][0] if loaded else 0
        self._current = self._chunks[self.last] if loaded else [0] * self.chunk
        # chunks past a horizon made shorter since they were written: forgotten at the next seal
        self._changed = {number for number, _ in everything[: -self.limit]}
        self._touched = False

    def take_changes(self) -> list[tuple[int, list[int]]]:
        """Each chunk changed since the last call and its ids now (empty: forgotten)."""
        numbers = (self._changed | {self.last}) if self._touched else self._changed
        changes = [(number, self.chunk_ids(number)) for number in sorted(numbers)]
        self._changed = set()
        self._touched = False
        return changes
