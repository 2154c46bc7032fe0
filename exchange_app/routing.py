"""Which partition an instrument lives on.

Kafka's default partitioner (murmur2 of the key) puts the seed's four
instruments (RIL, INFY, ONGC, TCS) all on one partition of four, so extra
workers would sit idle. Instruments listed in ``EXCHANGE_SPREAD_INSTRUMENTS``
are therefore placed round-robin (the i-th on partition ``i mod N``); every
other instrument keeps murmur2, so a plain Kafka client keyed by instrument
still lands it on its home. The shipped producer, replay and the HTTP API
send each order to its home partition explicitly; an order that arrives
elsewhere is forwarded there through the re-partition topic.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import murmur2

__all__ = ["DEFAULT_SPREAD", "home_partition", "key_partition"]

#: The instruments of the original order generator.
DEFAULT_SPREAD: tuple[str, ...] = ("RIL", "INFY", "ONGC", "TCS")


def key_partition(key: str, partitions: int) -> int:
    """Kafka's default partition of a string key (murmur2)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def home_partition(instrument: str, partitions: int, spread: Sequence[str] = DEFAULT_SPREAD) -> int:
    try:
        return spread.index(instrument) % partitions
    except ValueError:
        return key_partition(instrument, partitions)
