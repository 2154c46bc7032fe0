"""Agent tests: the real app and agents on Faust's memory store, outputs captured."""

from __future__ import annotations

from collections import defaultdict
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
def sent(test_app: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[Any, Any, Any]]]:
    """What the agents send, per topic: (key, value, partition); the table starts empty."""
    from exchange_app import topics
    from exchange_app.agents.matching import state
    from tables.declarations import bars_table, matching_table, positions_table, profit_table

    records: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)

    def recorder(name: str) -> Any:
        async def send(
            *, key: Any = None, value: Any = None, partition: Any = None, **_: Any
        ) -> None:
            records[name].append((key, value, partition))

        return send

    for name in ("trades", "events", "dlq", "routed", "sma", "profit", "pnl", "fills"):
        monkeypatch.setattr(getattr(topics, name), "send", recorder(name))
    for table in (matching_table, bars_table, profit_table, positions_table):
        for key in list(table.keys()):
            table.data.pop(key, None)
    state.invalidate()
    return records
