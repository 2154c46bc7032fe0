"""Private views of one account: ``/accounts/{account}`` and ``/whoami``.

An account is read with its own key or an admin key; its positions live on
the worker that owns the account (``peers.Cluster``), its marks are every
instrument's last price, wherever the instrument is.
"""

from __future__ import annotations

from aiohttp import web

from tables.query import StateQuery

from .answers import ACCOUNT, error, json
from .gate import Gate
from .market import MarketViews
from .peers import Cluster

__all__ = ["AccountViews"]


class AccountViews:
    def __init__(
        self, query: StateQuery, gate: Gate, cluster: Cluster, market: MarketViews
    ) -> None:
        self.query = query
        self.gate = gate
        self.cluster = cluster
        self.market = market

    async def account(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        if not ACCOUNT.match(account):
            return error(400, f"account: {account[:20]!r} is not an account name")
        self.gate.may_read(request, account)

        async def local() -> web.Response:
            # an instrument whose owner did not answer is marked at the account's last fill
            marks = {
                row["instrument"]: row["last_price"] for row in await self.market.all_instruments()
            }
            answer = self.query.account(account, marks)
            if answer is None:
                return error(404, f"unknown account {account!r}")
            return json(answer)

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
