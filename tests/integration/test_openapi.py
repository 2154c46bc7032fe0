"""The HTTP API against its own description: schemathesis fuzzes every operation of a live
worker, without a key, with a trader's and with an admin's, and finds no 5xx, no status
the description does not list, and no answer outside its schema or content type.

Bounded and repeatable: a fixed number of examples per operation and mode, derandomized,
without shrinking (a failure is reported as schemathesis found it, with its curl line).
``GET /stream`` is left out: its 200 is an answer that never ends; its refusals and its
``Last-Event-ID`` parsing have tests of their own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exchange_app.orderflow import seed_orders, stepping_clock
from tests.harness import api_key, bearer, consume, list_instruments, produce

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation, per mode (valid and invalid input), per caller.
EXAMPLES = 20
#: Operations whose successful answer never ends.
ENDLESS = {"GET /stream"}


def fuzz(
    schema: schemathesis.BaseSchema,
    base_url: str,
    callers: dict[str, dict[str, str]],
    examples: int = EXAMPLES,
) -> list[str]:
    """Run every operation of ``schema`` against ``base_url`` as each caller (name →
    headers), with valid and with invalid input; what failed, one line per operation."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for (who, headers), operation, mode in itertools.product(
        callers.items(), operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ):
        if operation.label in ENDLESS:
            continue
        try:
            checked(schema, operation, mode, base_url, headers, examples)()
        except Unsatisfiable:  # no input to make invalid: nothing to send
            if mode is not GenerationMode.NEGATIVE:
                raise
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures.append(f"{operation.label} ({who}, {mode.value}): {exc}"[:3000])
    return failures


def checked(
    schema: schemathesis.BaseSchema,
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    examples: int,
) -> Callable[[], None]:
    """The property that ``operation`` answers every ``mode`` input within its description."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if mode is GenerationMode.POSITIVE:  # the description's examples: known keys, 200s
        strategies += schema.get_strategies_from_examples(operation)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def answers_within_its_description(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

    return answers_within_its_description


def orders() -> Iterable[dict[str, object]]:
    """Some trades, so that the books, tapes, bars and accounts have something to show."""
    clock = stepping_clock(step=30)
    return itertools.islice(seed_orders(clock=clock, seed=3, accounts=("alice", "bob")), 300)


async def test_every_operation_answers_within_its_description(env, start_worker) -> None:
    await list_instruments(env)
    # the rate limits (per key, and of failed authentications) have tests of their own
    limits = ("KEY_RATE", "KEY_BURST", "AUTH_FAILURE_RATE", "AUTH_FAILURE_BURST")
    start_worker({**env, **{f"EXCHANGE_{name}": "100000" for name in limits}})
    url = f"http://127.0.0.1:{env['EXCHANGE_WEB_PORT']}"
    trader = await api_key(env, "alice", admin=False, known_at=[url])
    admin = await api_key(env, known_at=[url])
    await produce(env, list(orders()))
    await consume(env, "trades", until=lambda trades: len(trades) > 0)

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    callers = {"no key": {}, "trader key": bearer(trader), "admin key": bearer(admin)}
    failures = await asyncio.to_thread(fuzz, schema, url, callers)
    assert not failures, "\n\n".join(failures)
