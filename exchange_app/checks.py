"""Start-of-day checks (``exchange check``): the broker answers, the topics are there, the
workers are healthy. Each check says what it found; any failure makes the command fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient

from .connection import client_options
from .settings import Settings

__all__ = ["run_checks"]


async def _topics(settings: Settings, timeout: float) -> set[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
        **client_options(settings),
    )
    await asyncio.wait_for(admin.start(), timeout)
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _health(url: str, timeout: float) -> str | None:
    """None if ``url``'s /health answers 200, else what went wrong."""
    try:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(url.rstrip("/") + "/health") as answer,
        ):
            return None if answer.status == 200 else f"answered {answer.status}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        return f"did not answer: {exc or type(exc).__name__}"


async def run_checks(
    settings: Settings, workers: Iterable[str], timeout: float = 10.0
) -> list[tuple[bool, str]]:
    """(passed, what) of each check, in order; later checks need the broker."""
    results: list[tuple[bool, str]] = []
    try:
        topics = await _topics(settings, timeout)
    except Exception as exc:  # whatever the client raises, the broker is not usable
        return [(False, f"broker {settings.broker}: not reachable ({exc!r})")]
    results.append((True, f"broker {settings.broker}: {len(topics)} topics"))
    wanted = {*settings.topic_names, settings.keys_topic, settings.listings_topic}
    missing = sorted(wanted - topics)
    if missing:
        results.append((False, f"topics missing: {', '.join(missing)}"))
    else:
        results.append((True, f"topics: all {len(wanted)} present"))
    for url in workers:
        problem = await _health(url, timeout)
        results.append((problem is None, f"worker {url}: {problem or 'healthy'}"))
    return results
