"""Everything about the broker: the embedded one, its quirks, and their fixes."""

from .embedded import BrokerStartError, EmbeddedBroker, free_port, wait_for_port
from .offsets import Transport, true_end_offsets

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "Transport",
    "free_port",
    "true_end_offsets",
    "wait_for_port",
]
