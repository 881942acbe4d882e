"""The stack's processes: start each in order (a process with a port is waited for
before the next starts), each logging to var/log/<name>.log; wait for the gateway
to be ready; notice a crash; stop them in reverse order and wait for each."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from stack.topology import Process

PORT_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 20.0


class StackError(Exception):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


class Supervisor:
    def __init__(self, env: Mapping[str, str], logs: Path, grace_seconds: float) -> None:
        self.env = dict(env)
        self.logs = logs
        self.grace = grace_seconds
        self.children: list[Child] = []

    def spawn(self, name: str, argv: Iterable[str]) -> Child:
        log_path = self.logs / f"{name}.log"
        log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            list(argv),
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        log_file.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def start(self, processes: Iterable[Process]) -> None:
        for process in processes:
            child = self.spawn(process.name, process.argv)
            if process.port is not None:
                wait_for_port(process.port, child, PORT_TIMEOUT_SECONDS)

    def wait_ready(self, url: str, timeout: float) -> str:
        """Wait until `url`/readyz answers 200 (every child alive meanwhile)."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                for child in self.children:
                    check_alive(child)
                try:
                    reply = client.get(url + "/readyz")
                    if reply.status_code == 200:
                        return url
                    last = reply.text
                except httpx.HTTPError as error:
                    last = repr(error)
                time.sleep(0.2)
        raise StackError(f"gateway not ready after {timeout:.0f}s: {last}")

    def watch(self) -> Child:
        """Block until a child exits on its own (a crash); return it."""
        while True:
            for child in self.children:
                if child.process.poll() is not None:
                    return child
            time.sleep(0.5)

    def stop(self) -> None:
        """Reverse order: gateway first, then the services, the sandbox, nats last,
        so nothing loses its dependency while it drains."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(self.grace + STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    print(f"{child.name} did not stop in time; killing it", file=sys.stderr)
                    child.process.kill()
                    child.process.wait()


def wait_for_port(port: int, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive(child)
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise StackError(f"{child.name} did not open port {port} within {timeout:.0f}s")


def check_alive(child: Child) -> None:
    if child.process.poll() is not None:
        raise StackError(
            f"{child.name} exited with code {child.process.returncode}; "
            f"last lines of {child.log_path}:\n{tail(child.log_path)}"
        )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
