"""``make run``'s demo: whose keys a newcomer gets, whom the demo producer trades as.

The producer trades as accounts of its own (:data:`PRODUCER_ACCOUNTS`, in the
``Procfile``), never as the accounts whose keys ``exchange up`` hands out
(:data:`TRADER_ACCOUNTS`): someone signed in as alice sees only alice's own
orders move alice's positions.

The keys are shown once the worker answers ``/health`` (after about 200 lines of
the worker's start), in a block that stands out, and written to
``<data dir>/demo-keys.env`` (mode 0600) as shell variables: ``KEY`` is
alice's, ``ADMIN_KEY`` the admin's, as README's examples use them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ADMIN_ACCOUNT",
    "KEYS_FILE",
    "PRODUCER_ACCOUNTS",
    "TRADER_ACCOUNTS",
    "keys_banner",
    "keys_script",
    "write_keys",
]

#: The accounts whose keys ``exchange up`` prints: a newcomer's.
TRADER_ACCOUNTS = ("alice", "bob", "carol", "dave")
#: The account of the admin key ``exchange up`` prints.
ADMIN_ACCOUNT = "ops"
#: The accounts the demo producer trades as (``Procfile``, ``docker-compose.yml``).
PRODUCER_ACCOUNTS = ("demo-1", "demo-2", "demo-3", "demo-4")
#: Where the keys are written, under the data directory.
KEYS_FILE = "demo-keys.env"


def _variable(account: str) -> str:
    return f"{account.upper().replace('-', '_')}_KEY"


def keys_script(traders: Sequence[tuple[str, str]], admin: str) -> str:
    """The keys as a shell script to source: one variable per account, ``KEY`` (the first
    trader's) and ``ADMIN_KEY``."""
    lines = ["# make run's demo API keys: . data/demo-keys.env"]
    lines += [f"export {_variable(account)}={key}" for account, key in traders]
    if traders:
        lines.append(f"export KEY={traders[0][1]}")
    lines.append(f"export ADMIN_KEY={admin}")
    return "\n".join(lines) + "\n"


def write_keys(path: Path, traders: Sequence[tuple[str, str]], admin: str) -> Path:
    """Write :func:`keys_script` to ``path``, readable by its owner only (they are secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as out:
        out.write(keys_script(traders, admin))
    return path


def keys_banner(url: str, traders: Sequence[tuple[str, str]], admin: str, path: Path) -> str:
    """The block ``exchange up`` prints once the stack is ready."""
    rule = "=" * 78
    rows = [f"    {account:12} {key}" for account, key in traders]
    rows.append(f"    {ADMIN_ACCOUNT + ' (admin)':12} {admin}")
    return "\n".join(
        [
            "",
            rule,
            f"  The exchange is ready: {url}",
            "  Demo API keys (the dashboard asks for one):",
            *rows,
            f"  In another shell: . .venv/bin/activate && . {path}",
            "  ($KEY is alice's key, $ADMIN_KEY the admin's). Ctrl-C here stops everything.",
            rule,
            "",
        ]
    )
