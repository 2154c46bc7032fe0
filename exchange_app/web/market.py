"""Market data, public: instruments, order books, trades, bars, profit.

Every answer comes from the owner of the instrument (``peers.Cluster``) and
from its :class:`~tables.query.StateQuery`: no account and no order id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tables.query import StateQuery
from tables.tape import TAPE_SIZE

from .answers import error, instrument_of, int_param, json
from .peers import Cluster

__all__ = ["MarketViews"]


class MarketViews:
    def __init__(self, query: StateQuery, cluster: Cluster) -> None:
        self.query = query
        self.cluster = cluster

    async def all_instruments(self, request: web.Request | None = None) -> list[dict[str, Any]]:
        """Every worker's instruments (this one's only for a hop or ``?scope=local``)."""
        rows = {row["instrument"]: row for row in self.query.instruments()}
        if request is not None and (
            self.cluster.is_hop(request) or request.query.get("scope") == "local"
        ):
            return list(rows.values())
        for row in await self.cluster.gather("/instruments?scope=local", "instruments"):
            rows.setdefault(row["instrument"], row)
        return [rows[name] for name in sorted(rows)]

    async def instruments(self, request: web.Request) -> web.Response:
        return json({"instruments": await self.all_instruments(request)})

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
