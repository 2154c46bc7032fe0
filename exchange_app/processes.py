"""Worker processes on a broker: isolated settings, start until Ready, stop, log, memory.

Shared by the integration tests (``tests/harness.py``) and the end-to-end
benchmark (``e2e/bench.py``), which both run ``faust -A exchange_app worker``
as a child process with its output in a log file and judge it by that log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .broker import free_port

__all__ = [
    "EXCHANGE",
    "FAUST",
    "READY",
    "ROOT",
    "Worker",
    "WorkerExited",
    "bootstrap",
    "exchange_env",
    "peak_rss_mib",
    "topic",
]

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
EXCHANGE = str(Path(sys.executable).with_name("exchange"))
#: what Faust logs once every service of a worker has started
READY = b"[^Worker]: Ready"


class WorkerExited(RuntimeError):
    """The worker process ended while it was expected to run."""


def exchange_env(broker_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings for one isolated exchange on a shared broker: its own topics and group."""
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "EXCHANGE_BROKER": broker_url,
        "EXCHANGE_APP_ID": f"ex-{tag}",
        "EXCHANGE_DATA_DIR": str(data_dir),
        "EXCHANGE_WEB_PORT": str(free_port()),
        "EXCHANGE_PARTITIONS": "4",
        "EXCHANGE_CLUSTER_SECRET": uuid.uuid4().hex,  # shared by this exchange's workers
        "EXCHANGE_STORE": "rocksdb://",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("orders", "trades", "events", "sma", "profit", "pnl", "dlq"):
        env[f"EXCHANGE_{name.upper()}_TOPIC"] = f"{tag}-{name}"
    env.update(overrides)
    return env


def topic(env: dict[str, str], name: str) -> str:
    """The topic ``name`` (orders, trades, events, sma, ...) of the exchange ``env`` runs."""
    return env[f"EXCHANGE_{name.upper()}_TOPIC"]


def bootstrap(env: dict[str, str]) -> str:
    """``host:port`` of the broker of ``env``."""
    return env["EXCHANGE_BROKER"].split("://", 1)[1]


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (``VmHWM``) of a live process in MiB; ``None`` if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


class Worker:
    """``faust -A exchange_app worker`` as a child process with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str] | None = None) -> None:
        self.env = env
        self.log = log
        self.command = command or [FAUST, "-A", "exchange_app", "worker", "-l", "info"]
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after: float | None = None  # seconds from start to "Ready", last start
        self.started_at = 0.0  # time.monotonic() of the last launch
        self._scanned = 0  # log offset up to which "Ready" was looked for

    def launch(self) -> Worker:
        """Start the process without waiting; :meth:`ready` tells when it is Ready."""
        self._scanned = self.log.stat().st_size if self.log.exists() else 0
        self.ready_after = None
        self.started_at = time.monotonic()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self) -> bool:
        """Whether the log shows "Ready" since the last launch (which sets ``ready_after``).

        Raises :class:`WorkerExited` if the process is gone.
        """
        if self.ready_after is not None:
            return True
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise WorkerExited(f"worker exited with {code}:\n{self.tail()}")
        with open(self.log, "rb") as log:
            log.seek(self._scanned)
            data = log.read()
        if READY in data:
            self.ready_after = time.monotonic() - self.started_at
            return True
        self._scanned += max(0, len(data) - len(READY))
        return False

    def start(self, timeout: float = 90.0) -> Worker:
        """Start the process and wait until it logs "Ready"; a worker that is not ready in
        time is killed (nobody else holds it to stop it) before the error is raised."""
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return self
            time.sleep(0.2)
        tail = self.tail()
        self.kill()
        raise TimeoutError(f"worker not ready within {timeout} s:\n{tail}")

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def peak_rss_mib(self) -> float | None:
        """Peak resident memory of the running process so far, in MiB."""
        return None if self.process is None else peak_rss_mib(self.process.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wait_for(self, text: str, after: int = 0, timeout: float = 90.0) -> int:
        """Wait until the log holds ``text`` past byte ``after``; return where it ends."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while time.monotonic() < deadline:
            data = self.log.read_bytes()
            found = data.find(needle, after)
            if found >= 0:
                return found + len(needle)
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} not in the log within {timeout} s:\n{self.tail()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.text().splitlines()[-lines:])
