"""Which partition an instrument lives on: Kafka's default (murmur2) partitioner.

The shipped producer, replay and a Java client keyed by instrument all land an
order on this partition, so the matching agent handles it in place; anything
else is forwarded there through the re-partition topic.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["home_partition"]


def home_partition(instrument: str, partitions: int) -> int:
    return (murmur2(instrument.encode()) & 0x7FFFFFFF) % partitions
