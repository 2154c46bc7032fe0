"""A Faust app with one agent that only counts: the floor under every exchange agent.

The end-to-end benchmark (``e2e/bench.py``) runs it as a worker against a
preloaded topic: ``faust -A exchange_app.e2e.bare_agent worker``. It uses the
exchange's consumer options (short group timeouts and fetch wait on the
embedded broker, the end-offset fix) so that the difference to the exchange is
the agents' work, not the client configuration. When ``expect`` events have
arrived it writes ``{"events", "seconds", "rate"}`` (first to last event) to
``out`` and logs the same.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import faust
from faust.types import StreamT, TransportT
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..application import faust_options
from ..broker.offsets import Transport
from ..settings import Settings, get_settings

__all__ = ["BareAgentSettings", "BareApp", "app", "count_events"]

log = logging.getLogger(__name__)


class BareAgentSettings(BaseSettings):
    """What to read and where to report, from ``BARE_AGENT_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="BARE_AGENT_", frozen=True)

    topic: str = Field(description="The preloaded topic to iterate.")
    expect: int = Field(ge=1, description="Events to wait for before reporting.")
    out: Path = Field(description="File the result is written to (JSON).")


class BareApp(faust.App):
    """``faust.App`` with the exchange's transport (end-offset fix, fetch wait)."""

    settings: Settings

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


settings = get_settings()
#: read from the environment (mypy cannot know that)
bare = BareAgentSettings()  # type: ignore[call-arg]
app = BareApp(
    settings.app_id,
    **faust_options(settings) | {"store": "memory://", "web_enabled": False},
)
app.settings = settings
source = app.topic(bare.topic, key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def count_events(stream: StreamT[bytes]) -> None:
    """Count events; report the rate from the first to the ``expect``-th."""
    count = 0
    first = 0.0
    async for _value in stream:
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count == bare.expect:
            seconds = time.perf_counter() - first
            rate = count / seconds if seconds > 0 else 0.0
            result = {"events": count, "seconds": seconds, "rate": rate}
            partial = bare.out.with_suffix(".tmp")
            partial.write_text(json.dumps(result))
            partial.replace(bare.out)
            log.info("bare agent: %d events in %.3f s = %.0f events/s", count, seconds, rate)
