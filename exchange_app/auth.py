"""API keys: who a request is, from ``Authorization: Bearer <key>``.

A key reads ``ek_<id>_<secret>``: ``id`` names it (12 hex digits, public), the
secret is 32 random bytes. The key store (``keystore.py``, a compacted topic)
keeps, per id, the account, whether it is an admin key, and the SHA-256 of the
secret, never the secret: a fast hash is enough for 256 random bits, and the
comparison takes constant time. A revoked key is a tombstone.

A :class:`KeyRing` tells its listeners the id of every key it stops honouring (a
tombstone, or a record that replaces the key's), so that what a key opened, such
as a live stream, ends with the key and not at the client's next connect.

=============  ==========================================================
who            may
=============  ==========================================================
anyone         market data, ``/health``, the dashboard, ``/stream`` (market events)
a key          trade and cancel as its account, read its account and its events
an admin key   also read any account, Faust's ``/table/`` and ``/router/``, ``/metrics``
=============  ==========================================================
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["InvalidKeyRecord", "KeyRing", "Principal", "key_record", "new_key", "parse_key"]

KEY = re.compile(r"ek_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
#: What a key record's ``sha256`` holds: the hex SHA-256 of the key's secret.
DIGEST = re.compile(r"[0-9a-f]{64}")


class InvalidKeyRecord(ValueError):
    """A key store record that is not ``{"account": str, "admin": bool, "sha256": hex}``."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: its account, and whether it may read any account."""

    account: str
    admin: bool = False
    key: str = ""  # the key's id: what rate limits and stream caps count by

    def may_read(self, account: str) -> bool:
        return self.admin or account == self.account


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(account: str, *, admin: bool = False) -> tuple[str, str, dict[str, Any]]:
    """A fresh key: the key (shown once), its id, and the record the store keeps."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = {"account": account, "admin": admin, "sha256": _digest(secret)}
    return f"ek_{key_id}_{secret}", key_id, record


def parse_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    match = KEY.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


def key_record(value: object) -> dict[str, Any]:
    """``value`` as a key record, checked: what :meth:`KeyRing.authenticate` relies on."""
    if not isinstance(value, dict):
        raise InvalidKeyRecord(f"expected a JSON object, got {type(value).__name__}")
    account, admin, digest = value.get("account"), value.get("admin", False), value.get("sha256")
    if not isinstance(account, str) or not account:
        raise InvalidKeyRecord(f"account: expected a non-empty string, got {account!r:.40}")
    if not isinstance(admin, bool):
        raise InvalidKeyRecord(f"admin: expected true or false, got {admin!r:.40}")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise InvalidKeyRecord(f"sha256: expected 64 hex digits, got {digest!r:.80}")
    return {"account": account, "admin": admin, "sha256": digest}


class KeyRing:
    """The keys in force, by id, as the key store's records give them."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.ready = False  # the store was read to its end once
        #: called with a key's id once the ring no longer honours it as it did
        self.on_revoke: list[Callable[[str], None]] = []

    def apply(self, key_id: str, record: dict[str, Any] | None) -> None:
        """Put ``record`` in force for ``key_id`` (None: revoke it); a record that replaces
        or removes one in force is a revocation of the key as it was."""
        before = self.records.get(key_id)
        if record is None:
            self.records.pop(key_id, None)
        else:
            self.records[key_id] = record
        if before is not None and before != record:
            for listener in list(self.on_revoke):
                listener(key_id)

    def authenticate(self, key: str) -> Principal | None:
        """The principal of ``key``, or None for a malformed, unknown or revoked key."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        record = self.records.get(key_id)
        expected = record["sha256"] if record else _digest("")
        if not hmac.compare_digest(_digest(secret), expected) or record is None:
            return None
        return Principal(record["account"], bool(record.get("admin")), key_id)

    def ids_of(self, account: str) -> list[str]:
        return [key_id for key_id, r in self.records.items() if r["account"] == account]
