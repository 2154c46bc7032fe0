"""``exchange check``: what the start-of-day checks report."""

from __future__ import annotations

from typing import Any

import pytest

from exchange_app import checks
from exchange_app.settings import Settings


@pytest.mark.parametrize(
    ("present", "health", "expected"),
    [
        ("all", {}, [True, True, True]),
        ("all but keys", {}, [True, False, True]),
        ("all", {"http://w2": "answered 503"}, [True, True, False]),
    ],
)
async def test_each_check_says_what_it_found(
    monkeypatch: pytest.MonkeyPatch, present: str, health: dict[str, str], expected: list[bool]
) -> None:
    settings = Settings()
    topics = {*settings.topic_names, settings.keys_topic, settings.listings_topic, "unrelated"}
    if present == "all but keys":
        topics.discard(settings.keys_topic)

    async def list_topics(*_: Any) -> set[str]:
        return topics

    async def ask(url: str, *_: Any) -> str | None:
        return health.get(url)

    monkeypatch.setattr(checks, "_topics", list_topics)
    monkeypatch.setattr(checks, "_health", ask)
    results = await checks.run_checks(settings, ["http://w1"] if not health else list(health))
    assert [passed for passed, _ in results] == expected
    if present == "all but keys":
        assert results[1][1] == f"topics missing: {settings.keys_topic}"


async def test_an_unreachable_broker_is_the_only_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable(*_: Any) -> set[str]:
        raise ConnectionError("refused")

    monkeypatch.setattr(checks, "_topics", unreachable)
    [(passed, what)] = await checks.run_checks(Settings(), ["http://w1"])
    assert not passed and "not reachable" in what
