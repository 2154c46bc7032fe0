"""10,000+ bad messages among valid orders: each one reported, valid orders unaffected."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import string
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from exchange_app.export import read_topic
from exchange_app.orderflow import seed_orders, stepping_clock
from tests.harness import (
    bootstrap,
    consume,
    reference_outputs,
    topic,
    trades_by_id,
    trades_in,
)

pytestmark = pytest.mark.integration

TS = "2023/03/12, 10:00:00"


def order(id: int, instrument: str = "HOSTILE", **fields: Any) -> dict[str, Any]:
    base = {"id": id, "instrument": instrument, "trxn_type": "BUY", "quantity": 1, "price": 1,
            "order_timestamp": TS}  # fmt: skip
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


#: the reason a message that is not a JSON object gets
NOT_AN_OBJECT = r"^(not JSON|expected a JSON object)"
#: the reason of a cancel whose order does not rest (unknown, or filled)
NOT_RESTING = r"^cannot cancel order \d+: no such order is resting"

#: A bad message, the instrument it must be keyed by (if any), and a pattern that one of
#: the reasons of its DLQ record or REJECTED report must match.
Bad = tuple[bytes | dict[str, Any], str | None, str]


def hand_written(n: int) -> list[Bad]:
    """Every category of DESIGN section 2, each with the reason it must get."""
    i = 7_000_000 + 100 * n
    odd = ["\u0422\u0421\u0405", "TCS\u0000", "🚀", "tcs ", "", "A" * 40, "TC$"][n % 7]
    return [
        (f"not json {n} \u2603".encode(), None, "^not JSON"),
        (b'{"id": %d, "instrument": "TCS", "trxn' % i, None, "^not JSON"),
        (json.dumps(order(i + 1, quantity="lots", price=[1])).encode(), None, "^quantity: "),
        (json.dumps(order(i + 2, quantity=True)).encode(), None, "^quantity: "),
        (json.dumps({"id": i + 3, "instrument": "TCS"}).encode(), None, "^trxn_type: .*required"),
        (json.dumps(order(i + 4, price="NaN")).encode(), None, "^price: "),
        (json.dumps(order(i + 5, quantity="Infinity")).encode(), None, "^quantity: "),
        (
            json.dumps(order(i + 6)).replace('"price": 1', '"price": 1e400').encode(),
            None,
            "^price: ",
        ),
        (json.dumps(order(i + 7, quantity=0)).encode(), None, "^quantity: "),
        (json.dumps(order(i + 8, price=-1)).encode(), None, "^price: "),
        (json.dumps(order(i + 9, trxn_type="SHORT")).encode(), None, "^trxn_type: "),
        (json.dumps(order(i + 10, order_type="STOP")).encode(), None, "^order_type: "),
        (json.dumps(order(i + 11, time_in_force="DAY")).encode(), None, "^time_in_force: "),
        (json.dumps(order(i + 12, instrument=odd)).encode(), None, "^instrument: "),
        (json.dumps(order(i + 13, action="AMEND")).encode(), None, "^action: "),
        (
            json.dumps(order(i + 14, order_timestamp="tomorrow")).encode(),
            None,
            "^order_timestamp: ",
        ),
        (b"[1, 2, 3]", None, NOT_AN_OBJECT),
        (b"null", None, NOT_AN_OBJECT),
        (b'"a string"', None, NOT_AN_OBJECT),
        (b'{"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1}', None, "^id: "),
        # stateful: a cancel of an unknown order
        ({"action": "CANCEL", "id": i + 20, "instrument": "HOSTILE"}, "HOSTILE", NOT_RESTING),
    ]


def stateful(n: int) -> list[tuple[dict[str, Any], str | None]]:
    """(message, the reason it must be refused for; None: a good one): a resting order and
    its duplicate id; a fill and a late cancel."""
    i = 8_000_000 + 10 * n
    return [
        (order(i, price=1), None),  # rests: nothing sells at 1
        (order(i, price=2, trxn_type="BUY"), rf"^order id {i} is already resting"),
        # a book of its own, so no other group's order takes the other side
        (order(i + 1, instrument=f"FILL{n}", trxn_type="SELL", price=50), None),
        (order(i + 2, instrument=f"FILL{n}", trxn_type="BUY", price=50), None),
        ({"action": "CANCEL", "id": i + 1, "instrument": f"FILL{n}"}, NOT_RESTING),  # filled
        ({"action": "CANCEL", "id": i, "instrument": "HOSTILE"}, None),  # a good cancel
    ]


def wrong_value(rng: random.Random, field: str) -> Any:
    """A value ``field`` can never take, by DESIGN section 2's rules alone: no number, a
    string without a digit, or a number that is not positive and finite (quantity, price);
    no string naming a side (trxn_type); no string with a digit (order_timestamp)."""
    letters = "".join(rng.choices(string.ascii_letters + " -_:/", k=rng.randrange(0, 12)))
    no_number = [None, rng.random() < 0.5, [rng.randrange(9)], {"x": 1}, letters]
    if field in ("quantity", "price"):
        not_positive = [-rng.randrange(10**6), 0, -rng.random() * 10**6, -0.0]
        return rng.choice([*no_number, *not_positive])
    if field == "trxn_type":
        side = letters.strip().upper() in ("BUY", "SELL")
        return rng.choice([*no_number[:4], rng.randrange(-9, 9), "X" if side else letters])
    return rng.choice([*no_number, rng.randrange(-(10**9), 10**9)])


def generated(count: int, seed: int) -> list[tuple[bytes, str]]:
    """Seeded arbitrary messages, each bad by construction (never judged by the exchange's
    own decoder), with the reason it must get: an order with one field given a value it can
    never take (:func:`wrong_value`), or bytes that are not a JSON object."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.6:
            field = rng.choice(["quantity", "price", "trxn_type", "order_timestamp"])
            broken = order(rng.randrange(9_000_000, 10_000_000), **{field: wrong_value(rng, field)})
            out.append((json.dumps(broken).encode(), f"^{field}: "))
        else:
            junk = rng.randbytes(rng.randrange(1, 300)).lstrip(b" \t\r\n{") or b"}"
            out.append((junk, NOT_AN_OBJECT))
    return out


async def test_bad_messages_are_all_accounted_for(env, start_worker) -> None:
    rng = random.Random(3)
    valid = list(
        itertools.islice(
            seed_orders(clock=stepping_clock(), seed=8, instruments=["TCS", "INFY"]), 4000
        )
    )
    bad: list[Bad] = []
    for n in range(420):
        bad += hand_written(n)
    bad += [(m, None, reason) for m, reason in generated(1200, seed=5)]
    bad += [(b"[" * 5000 + b"]" * 5000, None, "^not JSON: nested too deeply")] * 20
    bad += [(b'{"id": 1, "pad": "' + b"x" * 1_000_000 + b'"}', None, "bytes exceeds")] * 2
    flow: list[tuple[bytes | dict[str, Any], str | None, str | None]] = [
        (o, o["instrument"], None) for o in valid
    ]
    groups = [[(m, m["instrument"], reason) for m, reason in stateful(n)] for n in range(400)]
    groups += [[bad_one] for bad_one in bad]
    for group in groups:  # interleaved at random places, each group in its own order
        places = sorted(rng.randrange(len(flow) + 1) for _ in group)
        for shift, (place, item) in enumerate(zip(places, group, strict=True)):
            flow.insert(place + shift, item)
    n_bad = sum(1 for *_, reason in flow if reason)
    assert n_bad >= 10_000

    # order of messages of one instrument is their order in `flow`: a clean run's input
    keyed = [m for m, key, _ in flow if key is not None]
    expected = trades_by_id(trades_in(reference_outputs(keyed)))

    worker = start_worker(env)
    pid = worker.process.pid
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(env), enable_idempotence=False, linger_ms=20,
        max_request_size=4 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    sent = []
    try:
        for message, key, reason in flow:
            raw = message if isinstance(message, bytes) else json.dumps(message).encode()
            future = await producer.send(
                topic(env, "orders"), raw, key=key.encode() if key else None
            )
            sent.append((raw, reason, future))
        await producer.flush()
    finally:
        await producer.stop()
    bad_positions = {}
    for raw, reason, future in sent:
        if reason:
            meta = future.result()
            bad_positions[(meta.partition, meta.offset)] = (raw, reason)

    trades = await consume(
        env, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=300
    )
    assert trades_by_id(trades) == expected

    unaccounted = await unaccounted_for(env, bad_positions)
    assert not unaccounted, (
        f"{len(unaccounted)} bad messages without a report for the reason they are bad, "
        f"e.g. {unaccounted[:3]}"
    )
    assert (
        worker.process is not None and worker.process.pid == pid and worker.process.poll() is None
    )
    assert "Traceback" not in worker.text()
    print(f"\nhostile input: {n_bad} bad messages among {len(flow) - n_bad} valid: all reported")


def order_id_of(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return None
    return data.get("id") if isinstance(data, dict) else None


async def unaccounted_for(
    env: dict[str, str], bad: dict[tuple[int, int], tuple[bytes, str]], timeout: float = 120
) -> list[tuple[tuple[int, int], bytes, str]]:
    """Bad messages with neither a DLQ record nor a REJECTED report (yet) that gives a
    reason matching the one they must get."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        servers = [bootstrap(env)]
        dlq = await read_topic(servers, topic(env, "dlq"))
        events = await read_topic(servers, topic(env, "events"))
        rejected = [e for e in events if e["status"] == "REJECTED"]
        at = {(d["source"]["partition"], d["source"]["offset"]): d["reasons"] for d in dlq}
        at |= {(e["source"]["partition"], e["source"]["offset"]): e["reasons"]
               for e in rejected if "source" in e}  # fmt: skip
        by_id: dict[Any, list[list[str]]] = defaultdict(list)
        for e in rejected:
            if "source" not in e:  # refused by a book: known by its order id
                by_id[e["order_id"]].append(e["reasons"])
        missing = []
        for position, (raw, reason) in sorted(bad.items()):
            if position in at:
                if not any(re.search(reason, said) for said in at[position]):
                    missing.append((position, raw[:80], f"wanted {reason!r}: {at[position]}"))
                continue
            reports = by_id.get(order_id_of(raw), [])
            match = next((r for r in reports if any(re.search(reason, s) for s in r)), None)
            if match is None:
                missing.append((position, raw[:80], f"wanted {reason!r}: {reports}"))
            else:
                reports.remove(match)
        if not missing or asyncio.get_running_loop().time() > deadline:
            return missing
        await asyncio.sleep(2)
