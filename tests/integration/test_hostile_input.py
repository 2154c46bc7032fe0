"""10,000+ bad messages among valid orders: each one reported, valid orders unaffected."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import warnings
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

from exchange_app.engine import InvalidOrder
from exchange_app.export import read_topic
from exchange_app.orderflow import seed_orders, stepping_clock
from exchange_app.wire import decode_order
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


def hand_written(n: int) -> list[tuple[bytes | dict[str, Any], str | None]]:
    """(message, instrument it must be keyed by, if any): every category of DESIGN section 2."""
    i = 7_000_000 + 100 * n
    odd = ["\u0422\u0421\u0405", "TCS\u0000", "🚀", "tcs ", "", "A" * 40, "TC$"][n % 7]
    return [
        (f"not json {n} \u2603".encode(), None),
        (b'{"id": %d, "instrument": "TCS", "trxn' % i, None),
        (json.dumps(order(i + 1, quantity="lots", price=[1])).encode(), None),
        (json.dumps(order(i + 2, quantity=True)).encode(), None),
        (json.dumps({"id": i + 3, "instrument": "TCS"}).encode(), None),
        (json.dumps(order(i + 4, price="NaN")).encode(), None),
        (json.dumps(order(i + 5, quantity="Infinity")).encode(), None),
        (json.dumps(order(i + 6)).replace('"price": 1', '"price": 1e400').encode(), None),
        (json.dumps(order(i + 7, quantity=0)).encode(), None),
        (json.dumps(order(i + 8, price=-1)).encode(), None),
        (json.dumps(order(i + 9, trxn_type="SHORT")).encode(), None),
        (json.dumps(order(i + 10, order_type="STOP")).encode(), None),
        (json.dumps(order(i + 11, time_in_force="DAY")).encode(), None),
        (json.dumps(order(i + 12, instrument=odd)).encode(), None),
        (json.dumps(order(i + 13, action="AMEND")).encode(), None),
        (json.dumps(order(i + 14, order_timestamp="tomorrow")).encode(), None),
        (b"[1, 2, 3]", None),
        (b"null", None),
        (b'"a string"', None),
        (b'{"instrument": "TCS", "trxn_type": "BUY", "quantity": 1, "price": 1}', None),
        # stateful: a cancel of an unknown order
        ({"action": "CANCEL", "id": i + 20, "instrument": "HOSTILE"}, "HOSTILE"),
    ]


def stateful(n: int) -> list[tuple[dict[str, Any], bool]]:
    """(message, is_bad): a resting order and its duplicate id; a fill and a late cancel."""
    i = 8_000_000 + 10 * n
    return [
        (order(i, price=1), False),  # rests: nothing sells at 1
        (order(i, price=2, trxn_type="BUY"), True),  # duplicate id
        # a book of its own, so no other group's order takes the other side
        (order(i + 1, instrument=f"FILL{n}", trxn_type="SELL", price=50), False),
        (order(i + 2, instrument=f"FILL{n}", trxn_type="BUY", price=50), False),
        ({"action": "CANCEL", "id": i + 1, "instrument": f"FILL{n}"}, True),  # already filled
        ({"action": "CANCEL", "id": i, "instrument": "HOSTILE"}, False),  # a good cancel
    ]


def is_invalid(raw: bytes) -> bool:
    try:
        decode_order(raw)
    except InvalidOrder:
        return True
    return False


def generated(count: int) -> list[bytes]:
    """Arbitrary bytes, and order objects with one field replaced by a wrong value."""
    nasty = st.one_of(
        st.none(),
        st.booleans(),
        st.text(max_size=20),
        st.integers(max_value=0),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not f > 0),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )
    field = st.sampled_from(["quantity", "price", "trxn_type", "order_timestamp"])
    broken = st.builds(
        lambda k, f, v: json.dumps(order(k, **{f: v}), allow_nan=True).encode(),
        st.integers(9_000_000, 9_999_999),
        field,
        nasty,
    )
    junk = st.binary(min_size=1, max_size=300).filter(lambda b: not b.strip().startswith(b"{"))
    # a random value can happen to be valid ("4" as a quantity): those are not bad
    messages = st.one_of(broken, junk).filter(is_invalid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        out = [messages.example() for _ in range(count)]
    return out


async def test_bad_messages_are_all_accounted_for(env, start_worker) -> None:
    rng = random.Random(3)
    valid = list(
        itertools.islice(
            seed_orders(clock=stepping_clock(), seed=8, instruments=["TCS", "INFY"]), 4000
        )
    )
    bad: list[tuple[bytes | dict[str, Any], str | None]] = []
    for n in range(420):
        bad += hand_written(n)
    bad += [(m, None) for m in generated(1200)]
    bad += [(b"[" * 5000 + b"]" * 5000, None)] * 20  # deep nesting
    bad += [(b'{"id": 1, "pad": "' + b"x" * 1_000_000 + b'"}', None)] * 2  # 1 MB
    flow: list[tuple[bytes | dict[str, Any], str | None, bool]] = [
        (o, o["instrument"], False) for o in valid
    ]
    groups = [[(m, m["instrument"], is_bad) for m, is_bad in stateful(n)] for n in range(400)]
    groups += [[(message, key, True)] for message, key in bad]
    for group in groups:  # interleaved at random places, each group in its own order
        places = sorted(rng.randrange(len(flow) + 1) for _ in group)
        for shift, (place, item) in enumerate(zip(places, group, strict=True)):
            flow.insert(place + shift, item)
    n_bad = sum(1 for *_, is_bad in flow if is_bad)
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
        for message, key, is_bad in flow:
            raw = message if isinstance(message, bytes) else json.dumps(message).encode()
            future = await producer.send(
                topic(env, "orders"), raw, key=key.encode() if key else None
            )
            sent.append((raw, is_bad, future))
        await producer.flush()
    finally:
        await producer.stop()
    bad_positions = {}
    for raw, is_bad, future in sent:
        if is_bad:
            meta = future.result()
            bad_positions[(meta.partition, meta.offset)] = raw

    trades = await consume(
        env, "trades", until=lambda r: len(trades_by_id(r)) >= len(expected), timeout=300
    )
    assert trades_by_id(trades) == expected

    unaccounted = await unaccounted_for(env, bad_positions)
    assert not unaccounted, (
        f"{len(unaccounted)} bad messages without a report, e.g. {unaccounted[:3]}"
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
    env: dict[str, str], bad: dict[tuple[int, int], bytes], timeout: float = 120
) -> list[tuple[tuple[int, int], bytes]]:
    """Bad messages with neither a DLQ record nor a REJECTED report (yet)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        servers = [bootstrap(env)]
        dlq = await read_topic(servers, topic(env, "dlq"))
        events = await read_topic(servers, topic(env, "events"))
        positions = {(d["source"]["partition"], d["source"]["offset"]) for d in dlq}
        rejected = [e for e in events if e["status"] == "REJECTED"]
        positions |= {
            (e["source"]["partition"], e["source"]["offset"]) for e in rejected if "source" in e
        }
        by_id = Counter(e["order_id"] for e in rejected if "source" not in e)
        missing = []
        for position, raw in sorted(bad.items()):
            if position in positions:
                continue
            order_id = order_id_of(raw)
            if by_id.get(order_id, 0) > 0:
                by_id[order_id] -= 1
                continue
            missing.append((position, raw[:80]))
        if not missing or asyncio.get_running_loop().time() > deadline:
            return missing
        await asyncio.sleep(2)
