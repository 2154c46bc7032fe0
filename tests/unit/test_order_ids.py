"""Order ids belong to the account: equal client ids of two accounts are two orders.

``POST /orders`` makes the exchange's id from the key's account and the
client's id; the book refuses an id it has seen. So a retry by the same account
is refused, and the same client id from another account is an order of its own
that rests and trades like any other.
"""

from __future__ import annotations

from typing import Any

from exchange_app.wire import decode_order, dumps, loads
from tables.matching import MatchingState, Source
from tables.transaction import Transaction
from tests.harness import bearer
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import JSON, Exchange, serve

#: (account, client id, side, quantity, price), posted in this order
POSTS = [
    ("alice", "o-1", "BUY", 5, 15),
    ("bob", "o-1", "SELL", 3, 15),  # trades with alice's o-1
    ("alice", "o-2", "SELL", 4, 16),
    ("bob", "o-2", "BUY", 4, 16),  # trades with alice's o-2
    ("bob", "o-1", "SELL", 3, 15),  # bob's retry: the same id, refused
]


async def test_two_accounts_post_the_same_client_ids_and_both_trade() -> None:
    exchange = Exchange()
    ring, (alice, bob) = ring_with(("alice", False), ("bob", False))
    keys = {"alice": alice, "bob": bob}
    client = await serve(exchange.services(keys=ring))
    answers: list[dict[str, Any]] = []
    try:
        for account, client_id, side, quantity, price in POSTS:
            body = {
                "client_order_id": client_id,
                "instrument": "TCS",
                "trxn_type": side,
                "quantity": quantity,
                "price": price,
            }
            headers = {**bearer(keys[account]), **JSON}
            response = await client.post("/orders", data=dumps(body), headers=headers)
            assert response.status == 202, await response.text()
            answers.append(loads(await response.read()))
    finally:
        await client.close()

    ids = {
        (account, client_id): a["id"]
        for (account, client_id, *_), a in zip(POSTS, answers, strict=True)
    }
    assert len(set(ids.values())) == 4, "equal client ids of two accounts got one order id"
    assert answers[4] == answers[1]  # bob's retry: bob's first answer
    published = [order for _, order in exchange.published]
    assert [(o["account"], o["id"]) for o in published] == [
        (account, ids[account, client_id]) for account, client_id, *_ in POSTS
    ]

    # the book: every published order in turn, as the matching agent applies them
    state = MatchingState({}, "price-time")
    outputs = []
    for offset, order in enumerate(published):
        tx = Transaction()
        state.handle(decode_order(dumps(order)), Source(0, offset), 0, tx)
        outputs += tx.outputs
    names = {order_id: key for key, order_id in ids.items()}
    reports = [o.value for o in outputs if o.stream == "events"]
    assert [
        (*names[r["order_id"]], r["status"], r["filled_quantity"], r.get("duplicate"))
        for r in reports
    ] == [
        ("alice", "o-1", "ACCEPTED", 0, None),
        ("bob", "o-1", "FILLED", 3, None),
        ("alice", "o-1", "PARTIALLY_FILLED", 3, None),
        ("alice", "o-2", "ACCEPTED", 0, None),
        ("bob", "o-2", "FILLED", 4, None),
        ("alice", "o-2", "FILLED", 4, None),
        ("bob", "o-1", "REJECTED", 0, True),
    ]
    assert all(r["account"] == names[r["order_id"]][0] for r in reports)
    trades = [o.value for o in outputs if o.stream == "trades"]
    assert [(t["buyer"], t["seller"], t["quantity"]) for t in trades] == [
        ("alice", "bob", 3),
        ("bob", "alice", 4),
    ]
    [resting] = state.books["TCS"].resting()  # what is left of alice's o-1
    assert (resting.order.id, resting.order.account, resting.remaining) == (
        ids["alice", "o-1"],
        "alice",
        2,
    )
