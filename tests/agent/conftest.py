"""Agent tests: the real app and agents on Faust's memory store, outputs captured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: What the agent tests trade: the seed's TCS, and ``I0`` to ``I99`` (picked by partition).
LISTED = ("TCS", *(f"I{i}" for i in range(100)))


@pytest.fixture()
def test_app() -> Any:
    import exchange_app

    app = exchange_app.app
    app.finalize()
    assert app.conf.store.scheme == "memory", "tests/conftest.py sets EXCHANGE_STORE"
    app.flow_control.resume()
    return app


@pytest.fixture(autouse=True)
def offsets_per_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Number the messages of ``agent.put`` per partition, as Kafka does.

    Faust's test wrapper counts one offset across all partitions; the agents
    keep a position per partition and would take the jumps for skipped messages.
    """
    from collections import Counter

    from faust.agents.agent import AgentTestWrapper

    to_message = AgentTestWrapper.to_message
    counters: dict[int, Counter[int | None]] = {}

    def numbered(
        self: Any, key: Any, value: Any, *, partition: int | None = None, **kw: Any
    ) -> Any:
        counter = counters.setdefault(id(self), Counter())
        kw["offset"] = counter[partition]
        counter[partition] += 1
        return to_message(self, key, value, partition=partition, **kw)

    monkeypatch.setattr(AgentTestWrapper, "to_message", numbered)


@pytest.fixture()
def sent(test_app: Any) -> Iterator[dict[str, list[tuple[Any, Any, Any]]]]:
    """What the agents deliver, per output stream: (key, value, partition).

    Values are JSON, decoded; those of the packed streams are lists of ``Packed``.

    Deliveries go to a :class:`MemorySink`; the tables and in-memory state start empty.
    """
    from exchange_app.agents import analytics
    from exchange_app.agents.batches import positions, use_sink
    from exchange_app.agents.matching import state
    from exchange_app.agents.reference import listings
    from exchange_app.checkpoint import MemorySink
    from exchange_app.listings import listings_of
    from exchange_app.packing import unpack
    from exchange_app.topics import stream_topics
    from exchange_app.wire import loads
    from tables.declarations import (
        bars_table,
        inputs_table,
        matching_table,
        positions_table,
        profit_table,
        tape_table,
    )

    # The instruments the agent tests trade, listed as the seed's are (tick 0.01, lot 1).
    listings.by_instrument = {item.instrument: item for item in listings_of(LISTED)}
    listings.mark_ready()
    sink = MemorySink()
    use_sink(sink)
    tables = (matching_table, bars_table, profit_table, positions_table, tape_table, inputs_table)
    for table in tables:
        for key in list(table.keys()):
            table.data.pop(key, None)
    positions.invalidate()
    state.load()
    for adapter in (analytics.bars, analytics.profits, analytics.ledger, analytics.tape):
        adapter.invalidate()

    packed = {"routed", "trade_batches"}

    class Delivered(dict[str, list[tuple[Any, Any, Any]]]):
        def __missing__(self, stream: str) -> list[tuple[Any, Any, Any]]:
            decode = (lambda v: list(unpack(v))) if stream in packed else loads
            return [
                (None if r.key is None else r.key.decode(), decode(r.value), r.partition)
                for r in sink.records.get(stream_topics()[stream], [])
            ]

    yield Delivered()
    use_sink(None)
