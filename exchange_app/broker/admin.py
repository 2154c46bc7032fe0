"""Topic creation with plain aiokafka, for use before Faust's own clients start."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..connection import client_options

__all__ = ["ensure_topics"]


async def ensure_topics(
    bootstrap: list[str],
    names: Iterable[str],
    *,
    partitions: int,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> dict[str, int]:
    """Create the missing topics of ``names``; return every topic's partition count.

    A producer that connects before the worker would otherwise get the broker's
    auto-created default partition count.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
    await admin.start()
    try:
        wanted = list(dict.fromkeys(names))
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication, topic_configs=configs or {})
            for name in wanted
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        described = await admin.describe_topics(wanted)
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
