"""Integration fixtures: one embedded broker for the session, workers per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange_app.broker import EmbeddedBroker, free_port
from tests.harness import LAUNCHED, Worker, ended_as_planned, exchange_env, list_instruments

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def workers_end_as_planned() -> Iterator[None]:
    """Every worker a test launched was still running when the test was done with it (none
    died by itself, which would pass for a planned kill) and logged no unexpected traceback."""
    LAUNCHED.clear()
    yield
    problems = ended_as_planned(LAUNCHED)
    LAUNCHED.clear()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker("127.0.0.1", free_port(), log_file=log) as running:
        yield running


@pytest.fixture()
def env(broker: EmbeddedBroker, tmp_path: Path) -> dict[str, str]:
    """An exchange of its own, with the instruments the tests trade listed."""
    made = exchange_env(broker.url, tmp_path / "data")
    asyncio.run(list_instruments(made))
    return made


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """Started workers are stopped after the test; their logs are in tmp_path."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture()
def start_worker(workers: list[Worker], tmp_path: Path):  # type: ignore[no-untyped-def]
    def start(env: dict[str, str], name: str = "worker") -> Worker:
        worker = Worker(env, tmp_path / f"{name}.log").start()
        workers.append(worker)
        return worker

    return start
