"""A streaming electronic stock exchange on Kafka and Faust.

``faust -A exchange_app worker`` reads ``exchange_app.app``: the Faust app
with every table and agent registered on it. It is built on first access, so
the pure cores (``exchange_app.engine``) import without Faust settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .application import ExchangeApp

    app: ExchangeApp

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from . import agents, heap, intake  # noqa: F401  (registers agents, tables, tasks)
        from .application import app
        from .web import wiring  # noqa: F401  (the live feed task)

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
