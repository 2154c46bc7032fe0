"""Pages of a listing ordered by name: ``?limit=N&cursor=C`` in, ``next_cursor`` out.

A listing that grows with the exchange (the instruments, an account's
positions) is answered a page at a time, so no answer, and no answer one
worker asks another for, grows without bound. The cursor is the last name of
the previous page, in urlsafe base64 without padding: opaque to a client, the
same for the same page on every worker, and checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from .answers import int_param, refuse

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "decode_cursor", "encode_cursor", "page_of"]

#: Names a page holds unless ``limit`` says otherwise.
DEFAULT_LIMIT = 100
#: The largest ``limit`` a view accepts (a worker may be configured higher).
MAX_LIMIT = 1000
#: The longest cursor accepted: the base64 of a name far longer than any symbol or account.
_MAX_CURSOR_CHARS = 128


@dataclass(frozen=True)
class Page:
    """Which page a request asks for: at most ``limit`` names after ``after`` (None: first)."""

    limit: int
    after: str | None = None

    def of(self, names: Sequence[str]) -> tuple[list[str], bool]:
        """This page of the sorted ``names``, and whether any name follows it."""
        start = 0 if self.after is None else bisect_right(names, self.after)
        chosen = list(names[start : start + self.limit])
        return chosen, start + self.limit < len(names)

    def next_cursor(self, names: Sequence[str], more: bool) -> str | None:
        """What an answer holding ``names`` (this page's, in order) gives as ``next_cursor``."""
        return encode_cursor(names[-1]) if more and names else None

    @property
    def query(self) -> dict[str, str]:
        """This page as query parameters, to ask a peer for the same page."""
        found = {"limit": str(self.limit)}
        if self.after is not None:
            found["cursor"] = encode_cursor(self.after)
        return found


def encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The name a cursor stands for; ValueError if it is not one this API handed out."""
    if len(cursor) > _MAX_CURSOR_CHARS or not cursor.isascii():
        raise ValueError("too long or not ASCII")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name = raw.decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    if encode_cursor(name) != cursor:
        raise ValueError("not in the canonical form")
    return name


def page_of(request: web.Request, max_limit: int = MAX_LIMIT) -> Page:
    """The page ``request`` asks for; a bad ``limit`` or ``cursor`` is refused (400)."""
    limit = int_param(request, "limit", min(DEFAULT_LIMIT, max_limit), 1, max_limit)
    cursor = request.query.get("cursor")
    if cursor is None or cursor == "":
        return Page(limit)
    try:
        return Page(limit, decode_cursor(cursor))
    except ValueError:
        raise refuse(
            400, f"cursor: expected the next_cursor of a previous answer, got {cursor[:40]!r}"
        ) from None
