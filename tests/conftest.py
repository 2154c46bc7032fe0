"""Test-wide settings: the in-process app (agent tests) uses a throwaway data dir."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("EXCHANGE_DATA_DIR", tempfile.mkdtemp(prefix="exchange-tests-"))
os.environ.setdefault("EXCHANGE_PARTITIONS", "4")
os.environ.setdefault("EXCHANGE_STORE", "memory://")  # in-process agent tests
