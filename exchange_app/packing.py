"""Many Kafka records in one message: the value format of the internal batch topics.

Matching packs the orders it forwards and the trades it makes, the analytics
the fills they make, so that a Faust agent downstream pays its per-event cost
once per batch instead of once per record. Each packed record
keeps where it came from (partition and offset of its source topic), which is
what idempotence is keyed on, and its bytes as they arrived (hostile input
included: the framing does not care what the bytes are).

Layout, repeated: a fixed header (source partition, source offset, timestamp
in ms, key length, value length; -1 for a missing key or value), then the key
and value bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = ["Packed", "PackingError", "pack", "unpack"]

_HEADER = struct.Struct(">iqqii")


class PackingError(ValueError):
    """A batch message that is not in this format (truncated, or not ours)."""


class Packed(NamedTuple):
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def pack(records: Iterable[Packed]) -> bytes:
    parts: list[bytes] = []
    for record in records:
        key, value = record.key, record.value
        parts.append(
            _HEADER.pack(
                record.partition,
                record.offset,
                record.timestamp,
                -1 if key is None else len(key),
                -1 if value is None else len(value),
            )
        )
        if key:
            parts.append(key)
        if value:
            parts.append(value)
    return b"".join(parts)


def unpack(data: bytes) -> Iterator[Packed]:
    view, position, end = memoryview(data), 0, len(data)
    while position < end:
        if end - position < _HEADER.size:
            raise PackingError(f"a record header at byte {position} is cut short")
        partition, offset, timestamp, key_size, value_size = _HEADER.unpack_from(view, position)
        position += _HEADER.size
        key = value = None
        if key_size >= 0:
            key, position = bytes(view[position : position + key_size]), position + key_size
        if value_size >= 0:
            value, position = bytes(view[position : position + value_size]), position + value_size
        if position > end:
            raise PackingError(f"the record of offset {offset} runs past the message's end")
        yield Packed(partition, offset, timestamp, key, value)
