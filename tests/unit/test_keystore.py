"""The key store's follower: a record it cannot read is skipped, and what follows applies."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from exchange_app.auth import InvalidKeyRecord, KeyRing, key_record, new_key
from exchange_app.broker.compacted import _apply
from exchange_app.keystore import apply_key
from exchange_app.wire import dumps

TP = TopicPartition("exchange-api-keys", 0)


@dataclass
class Message:
    key: bytes | None
    value: bytes | None
    offset: int


class Consumer:
    """What the follower asks of its consumer: one batch, then where it got to."""

    def __init__(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        self.messages = [Message(k, v, n) for n, (k, v) in enumerate(records)]

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0) -> dict[Any, Any]:
        return {TP: self.messages}

    async def position(self, tp: TopicPartition) -> int:
        return len(self.messages)


MALFORMED: list[tuple[bytes | None, bytes | None]] = [
    (b"0123456789ab", b'{"account":"eve","admin":true,"sha256":1E+9999999999999999999}'),
    (b"0123456789ab", b"[1]"),
    (b"0123456789ab", b"\xff"),
    (b"0123456789ab", b'{"account":5,"admin":false,"sha256":"00"}'),
    (b"0123456789ab", dumps({"account": "eve", "admin": "yes", "sha256": "0" * 64})),
    (b"\xff", None),
    (None, dumps({"account": "eve", "admin": True, "sha256": "0" * 64})),
]


async def test_a_malformed_record_is_skipped_and_the_revocations_after_it_apply(caplog) -> None:
    ring = KeyRing()
    key, key_id, record = new_key("alice")
    apply = partial(apply_key, ring)
    await _apply(Consumer([(key_id.encode(), dumps(record))]), TP, apply)  # type: ignore[arg-type]
    assert ring.authenticate(key) is not None
    revoked: list[str] = []
    ring.on_revoke.append(revoked.append)

    tombstone: list[tuple[bytes | None, bytes | None]] = [(key_id.encode(), None)]
    with caplog.at_level(logging.ERROR, logger="exchange_app.broker.compacted"):
        position = await _apply(Consumer([*MALFORMED, *tombstone]), TP, apply)  # type: ignore[arg-type]
    assert position == len(MALFORMED) + 1
    assert ring.authenticate(key) is None and revoked == [key_id]
    assert list(ring.records) == []  # nothing of the malformed records is in force
    skipped = [r.getMessage() for r in caplog.records if "skipping the record" in r.getMessage()]
    assert len(skipped) == len(MALFORMED)
    assert "offset 0:" in skipped[0] and "InvalidOperation" in skipped[0]  # the reason, named


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "expected a JSON object"),
        ({"admin": False, "sha256": "0" * 64}, "account"),
        ({"account": "a", "admin": 1, "sha256": "0" * 64}, "admin"),
        ({"account": "a", "sha256": "0" * 63}, "sha256"),
    ],
)
def test_a_key_record_is_checked_whole(value: object, reason: str) -> None:
    with pytest.raises(InvalidKeyRecord, match=reason):
        key_record(value)


def test_a_record_that_does_not_change_a_key_is_no_revocation() -> None:
    ring, revoked = KeyRing(), []
    ring.on_revoke.append(revoked.append)
    _, key_id, record = new_key("alice")
    ring.apply(key_id, record)
    ring.apply(key_id, dict(record))  # the same record again: compaction, a re-read
    ring.apply("000000000000", None)  # a tombstone of a key never seen
    assert revoked == []
