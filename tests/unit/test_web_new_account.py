"""An account that has not traded yet (a newcomer's, whose key works) is empty, not unknown."""

from __future__ import annotations

from exchange_app.wire import loads
from tests.unit.test_web_order_fields import posted  # noqa: F401  (the fixture)


async def test_an_account_that_has_not_traded_has_no_positions(posted) -> None:  # noqa: F811
    """A newcomer's own account, before its first trade: empty, not unknown."""
    _, client = posted
    response = await client.get("/accounts/nobody")
    assert response.status == 200
    assert loads(await response.read()) == {
        "account": "nobody",
        "positions": [],
        "realized": 0,
        "unrealized": 0,
        "total": 0,
        "next_cursor": None,
    }
