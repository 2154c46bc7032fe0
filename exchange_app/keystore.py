"""The key store: a compacted topic of API key records, read by every worker.

::

    <app id>-api-keys (1 partition, compacted)   key: key id   value: {"account", "admin", "sha256"}
        ▲ exchange keys add / revoke                ▼ every worker follows it into its KeyRing

Every worker reads the whole topic from the start and then follows it, so a
key added or revoked on any machine takes effect on every worker within a
fetch. Until a worker has read the topic to its end, requests that need a key
answer 503 rather than 401. A revoked key is a tombstone, which compaction
keeps until it has removed the record it revokes. A record a worker cannot
read is skipped with a log line: one bad record must not stop the revocations
behind it.

Why not a Faust ``GlobalTable``: keys are written by ``exchange keys``, a
process outside the worker, straight to the topic, and a global table fed that
way does not reach every worker (faust-streaming/faust#283, robinhood/faust#541:
only some instances apply the records). A global table would also hold each
worker's recovery (and ``/health``) until the keys are read, where this reader
holds only the requests that need a key.

Reading and following the topic is ``broker/compacted.py``'s, as for the listings.
"""

from __future__ import annotations

import logging
import re
from functools import partial

from .auth import KeyRing, key_record, new_key
from .broker.compacted import follow_compacted, read_compacted, write_compacted
from .wire import dumps, loads

__all__ = ["add_key", "apply_key", "follow_keys", "read_keys", "revoke_keys"]

log = logging.getLogger(__name__)
#: A record's key: the key's public id.
KEY_ID = re.compile(r"[0-9a-f]{12}")


def apply_key(ring: KeyRing, key_id: str, value: bytes | None) -> None:
    """Apply one record of the key store to ``ring``.

    A record that cannot be read (not JSON, a number ``Decimal`` refuses, not a key
    record, a key that is no key id) raises: the follower skips it with a log line
    and goes on, so a revocation after it still reaches every worker."""
    if not KEY_ID.fullmatch(key_id):
        raise ValueError(f"key: expected 12 hex digits, got {key_id[:40]!r}")
    ring.apply(key_id, None if value is None else key_record(loads(value)))


async def read_keys(bootstrap: list[str], topic: str, fetch_wait_ms: int = 100) -> KeyRing:
    """The keys in force now: the topic read to its end."""
    ring = KeyRing()
    await read_compacted(bootstrap, topic, partial(apply_key, ring), fetch_wait_ms)
    ring.ready = True
    return ring


async def follow_keys(ring: KeyRing, bootstrap: list[str], topic: str, fetch_wait_ms: int) -> None:
    """Keep ``ring`` equal to the topic until cancelled; ready once read to its end."""

    def caught_up() -> None:
        ring.ready = True
        log.info("key store: %d keys in force", len(ring.records))

    await follow_compacted(bootstrap, topic, partial(apply_key, ring), caught_up, fetch_wait_ms)


async def add_key(bootstrap: list[str], topic: str, account: str, *, admin: bool = False) -> str:
    """Store a new key of ``account``; the key, which nothing keeps."""
    key, key_id, record = new_key(account, admin=admin)
    await write_compacted(bootstrap, topic, [(key_id, dumps(record))])
    return key


async def revoke_keys(bootstrap: list[str], topic: str, account: str) -> int:
    """Revoke every key of ``account``; how many there were."""
    ids = (await read_keys(bootstrap, topic)).ids_of(account)
    if ids:
        await write_compacted(bootstrap, topic, [(key_id, None) for key_id in ids])
    return len(ids)
