"""Listings on the topic path: orders the listings refuse are REJECTED with the reason,
before any book sees them; a delisted instrument's resting orders can still be cancelled."""

from __future__ import annotations

import json

import pytest

from exchange_app.routing import home_partition
from exchange_app.wire import dumps
from tests.agent.test_matching_agent import HOME, fetched, raw

pytestmark = pytest.mark.usefixtures("test_app")


def delist(instrument: str) -> None:
    from exchange_app.agents.reference import listings

    listed = {"tick_size": "0.01", "lot_size": 1, "band_pct": 10, "status": "DELISTED"}
    listings.apply(instrument, dumps(listed))


def rejections(sent) -> list[tuple[int, list[str]]]:
    events = [value for _, value, _ in sent["events"]]
    return [(e["order_id"], e["reasons"]) for e in events if e["status"] == "REJECTED"]


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (raw(1, "BUY", "NOPE"), "instrument: NOPE is not listed"),
        (raw(1, "BUY", HOME[0], price=15.005), "price: 15.005 is off the tick"),
        (raw(1, "BUY", HOME[0], quantity=2.5), "quantity: 2.5 is off the lot"),
    ],
    ids=["unlisted", "off-tick", "off-lot"],
)
async def test_an_order_the_listing_refuses_is_rejected_with_the_reason(
    sent, order: bytes, reason: str
) -> None:
    from exchange_app.agents.matching import match_orders, state

    home = home_partition(json.loads(order)["instrument"], len(HOME))
    await match_orders(fetched(home, (0, order)))
    [(order_id, reasons)] = rejections(sent)
    assert order_id == 1 and reasons[0].startswith(reason)
    assert not sent["trades"] and not sent["dlq"]
    assert "NOPE" not in state.books  # a refused order makes no book


async def test_off_tick_and_off_lot_are_both_given(sent) -> None:
    from exchange_app.agents.matching import match_orders

    await match_orders(fetched(0, (0, raw(1, "SELL", HOME[0], quantity=0.5, price=9.999))))
    [(_, reasons)] = rejections(sent)
    assert [r.split(":")[0] for r in reasons] == ["price", "quantity"]


async def test_a_delisted_instrument_takes_no_order_but_its_resting_ones_cancel(sent) -> None:
    from exchange_app.agents.matching import match_orders

    instrument = HOME[0]
    await match_orders(fetched(0, (0, raw(1, "BUY", instrument))))
    delist(instrument)
    cancel = {"action": "CANCEL", "id": 1, "instrument": instrument}
    await match_orders(
        fetched(0, (1, raw(2, "SELL", instrument)), (2, json.dumps(cancel).encode()))
    )
    statuses = [(e["order_id"], e["status"]) for _, e, _ in sent["events"]]
    assert statuses == [(1, "ACCEPTED"), (2, "REJECTED"), (1, "CANCELLED")]
    assert rejections(sent) == [(2, [f"instrument: {instrument} is delisted"])]
    assert not sent["trades"]


async def test_an_order_applied_while_listed_is_not_rejected_when_replayed(sent) -> None:
    from exchange_app.agents.batches import pipeline
    from exchange_app.agents.matching import match_orders

    instrument = HOME[0]
    await match_orders(fetched(0, (0, raw(1, "BUY", instrument))))
    await pipeline().drain()
    delist(instrument)
    await match_orders(fetched(0, (0, raw(1, "BUY", instrument))))  # read again after a crash
    assert [e["status"] for _, e, _ in sent["events"]] == ["ACCEPTED"]
