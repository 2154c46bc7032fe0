"""Market data, public: instruments, order books, trades, bars, profit.

Every answer comes from the owner of the instrument (``peers.Cluster``) and
from its :class:`~tables.query.StateQuery`: no account and no order id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tables.query import StateQuery
from tables.tape import TAPE_SIZE

from .answers import error, instrument_of, int_param, json
from .pages import MAX_LIMIT, encode_cursor, page_of
from .peers import Cluster

__all__ = ["MARK_PAGES", "MarketViews"]

#: Pages of its instruments a peer is asked for at most to find the marks of one page of
#: an account's positions.
MARK_PAGES = 20


class MarketViews:
    def __init__(self, query: StateQuery, cluster: Cluster, max_page: int = MAX_LIMIT) -> None:
        self.query = query
        self.cluster = cluster
        self.max_page = max_page

    async def instruments(self, request: web.Request) -> web.Response:
        """A page of every worker's instruments, by name (this one's only for a hop or
        ``?scope=local``): each worker is asked for the same page, the first names win."""
        page = page_of(request, self.max_page)
        names, more = page.of(self.query.instrument_names())
        rows = {row["instrument"]: row for row in self.query.instruments(names)}
        if not (self.cluster.is_hop(request) or request.query.get("scope") == "local"):
            path = "/instruments?" + urlencode({"scope": "local", **page.query})
            for answer in await self.cluster.gather(path):
                for row in _rows(answer.get("instruments")):
                    rows.setdefault(row["instrument"], row)
                more = more or answer.get("next_cursor") is not None
            names, rest = page.of(sorted(rows))  # page.after is below every name here
            more = more or rest
        return json(
            {
                "instruments": [rows[name] for name in names],
                "next_cursor": page.next_cursor(names, more),
            }
        )

    async def last_prices(self, instruments: list[str]) -> dict[str, Any]:
        """The last price of each of ``instruments`` (sorted) that any worker knows: this
        worker's books, then each peer's, a page at a time from just before the first name
        through the last (at most :data:`MARK_PAGES` pages a peer)."""
        marks: dict[str, Any] = self.query.last_prices(instruments)
        wanted = set(instruments) - set(marks)
        if not wanted:
            return marks
        first, last = min(wanted), max(wanted)
        cursor: str | None = first[:-1]  # sorts before ``first``, and before little else
        for _ in range(MARK_PAGES):
            query = {"scope": "local", "limit": str(self.max_page)}
            if cursor:
                query["cursor"] = encode_cursor(cursor)
            answers = await self.cluster.gather("/instruments?" + urlencode(query))
            ends: list[str] = []
            for answer in answers:
                rows = _rows(answer.get("instruments"))
                for row in rows:
                    if row["instrument"] in wanted:
                        marks.setdefault(row["instrument"], row.get("last_price"))
                if rows and answer.get("next_cursor") is not None:
                    ends.append(rows[-1]["instrument"])
            # every peer has shown every name up to the smallest page end it reached
            if not ends or min(ends) >= last or wanted <= marks.keys():
                break
            cursor = min(ends)
        return marks

    async def orderbook(self, request: web.Request) -> web.Response:
        instrument = instrument_of(request)
        depth = int_param(request, "depth", 10, 1, 1000)

        async def local() -> web.Response:
            book = self.query.orderbook(instrument, depth)
            if book is None:
                return error(404, f"unknown instrument {instrument!r}")
            return json(book)

        return await self.cluster.routed(request, "instrument", instrument, local)

    async def trades(self, request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 50, 1, TAPE_SIZE)
        return await self._per_instrument(
            request, lambda instrument: {"trades": self.query.trades(instrument, limit)}
        )

    async def bars(self, request: web.Request) -> web.Response:
        return await self._per_instrument(request, self.query.bars)

    async def profit(self, request: web.Request) -> web.Response:
        return await self._per_instrument(request, self.query.profit)

    async def _per_instrument(
        self, request: web.Request, answer: Callable[[str], dict[str, Any]]
    ) -> web.Response:
        """A view of one instrument's trade-derived state, answered by its owner."""
        instrument = instrument_of(request)

        async def local() -> web.Response:
            if not self.query.knows(instrument):
                return error(404, f"unknown instrument {instrument!r}")
            return json({"instrument": instrument, **answer(instrument)})

        return await self.cluster.routed(request, "instrument", instrument, local)


def _rows(found: Any) -> list[dict[str, Any]]:
    """The well-formed instrument rows of a peer's answer."""
    if not isinstance(found, list):
        return []
    return [
        row for row in found if isinstance(row, dict) and isinstance(row.get("instrument"), str)
    ]
