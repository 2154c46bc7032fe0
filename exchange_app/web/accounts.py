"""Private views of one account: ``/accounts/{account}`` and ``/whoami``.

An account is read with its own key or an admin key; its positions live on
the worker that owns the account (``peers.Cluster``), its marks are the
instruments' last prices, wherever the instruments are. Positions come a page
at a time, by instrument name (``pages.py``); the totals are the page's.
"""

from __future__ import annotations

from aiohttp import web

from tables.query import StateQuery

from .answers import ACCOUNT, error, json
from .gate import Gate
from .market import MarketViews
from .pages import MAX_LIMIT, page_of
from .peers import Cluster

__all__ = ["AccountViews"]


class AccountViews:
    def __init__(
        self,
        query: StateQuery,
        gate: Gate,
        cluster: Cluster,
        market: MarketViews,
        max_page: int = MAX_LIMIT,
    ) -> None:
        self.query = query
        self.gate = gate
        self.cluster = cluster
        self.market = market
        self.max_page = max_page

    async def account(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        if not ACCOUNT.match(account):
            return error(400, f"account: {account[:20]!r} is not an account name")
        self.gate.may_read(request, account)
        page = page_of(request, self.max_page)

        async def local() -> web.Response:
            # An account that has not traded yet (a newcomer's, whose key works) has no
            # positions: it is not unknown. Only its own key or an admin's gets this far.
            traded = self.query.positions(account) or []
            names, more = page.of(traded)
            # an instrument whose owner did not answer is marked at the account's last fill
            marks = await self.market.last_prices(names)
            answer = self.query.account(account, marks, names)
            return json({**(answer or {}), "next_cursor": page.next_cursor(names, more)})

        return await self.cluster.routed(request, "account", account, local)

    async def whoami(self, request: web.Request) -> web.Response:
        principal = self.gate.require(request)
        return json(
            {
                "account": principal.account or None,
                "admin": principal.admin,
                "auth": self.gate.keys is not None,
            }
        )
