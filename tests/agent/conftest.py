"""Agent tests: the real app and agents on Faust's memory store, outputs captured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture()
def test_app() -> Any:
    import exchange_app

    app = exchange_app.app
    app.finalize()
    assert app.conf.store.scheme == "memory", "tests/conftest.py sets EXCHANGE_STORE"
    app.flow_control.resume()
    return app


@pytest.fixture()
def sent(test_app: Any) -> Iterator[dict[str, list[tuple[Any, Any, Any]]]]:
    """What the agents deliver, per output stream: (key, value, partition).

    Values are JSON, decoded; those of the packed streams are lists of ``Packed``.

    Deliveries go to a :class:`MemorySink`; the tables and in-memory state start empty.
    """
    from exchange_app.agents import analytics
    from exchange_app.agents.batches import use_sink
    from exchange_app.agents.matching import state
    from exchange_app.checkpoint import MemorySink
    from exchange_app.packing import unpack
    from exchange_app.topics import stream_topics
    from exchange_app.wire import loads
    from tables.declarations import (
        bars_table,
        matching_table,
        positions_table,
        profit_table,
        tape_table,
    )

    sink = MemorySink()
    use_sink(sink)
    for table in (matching_table, bars_table, profit_table, positions_table, tape_table):
        for key in list(table.keys()):
            table.data.pop(key, None)
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
