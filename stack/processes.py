"""The stack's processes: start each in order (a process with a port is waited for
before the next starts), each logging to var/log/<name>.log; wait for the gateway
to be ready; restart a process that crashed, with backoff; stop them in reverse order
and wait for each. Every child is tied to the launcher's life (PR_SET_PDEATHSIG on
Linux): whatever kills the launcher, SIGKILL included, its children get SIGTERM."""

from __future__ import annotations

import ctypes
import ctypes.util
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
RESTART_FIRST_DELAY_SECONDS = 1.0  # doubled after each crash, up to the maximum
RESTART_MAX_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a process that ran this long starts over at the first delay
_PR_SET_PDEATHSIG = 1


class StackError(Exception):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: tuple[str, ...] = ()
    started: float = 0.0  # time.monotonic() of its last start
    delay: float = RESTART_FIRST_DELAY_SECONDS  # before its next restart
    restart_at: float | None = None  # when it crashed: when it is started again


def die_with_parent() -> None:
    """preexec_fn: the kernel sends this child SIGTERM when the launcher dies."""
    libc = ctypes.util.find_library("c")
    if libc is not None:
        ctypes.CDLL(libc, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    def __init__(self, env: Mapping[str, str], logs: Path, grace_seconds: float) -> None:
        self.env = dict(env)
        self.logs = logs
        self.grace = grace_seconds
        self.children: list[Child] = []

    def spawn(self, name: str, argv: Iterable[str]) -> Child:
        log_path = self.logs / f"{name}.log"
        command = tuple(argv)
        child = Child(name, self._popen(command, log_path), log_path, command, time.monotonic())
        self.children.append(child)
        return child

    def _popen(self, argv: tuple[str, ...], log_path: Path) -> subprocess.Popen[bytes]:
        log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(
                list(argv),
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log_file.close()

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

    def watch(self, poll_seconds: float = 0.2) -> None:
        """Supervise until interrupted (the launcher's signal handlers raise): a child
        that exits on its own is started again after its delay, which doubles with
        each crash (up to RESTART_MAX_DELAY_SECONDS) and starts over once it has run
        STABLE_SECONDS. Each crash and restart is a line on stderr."""
        while True:
            self.supervise_once()
            time.sleep(poll_seconds)

    def supervise_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is None:
                if child.process.poll() is None:
                    continue
                if now - child.started >= STABLE_SECONDS:
                    child.delay = RESTART_FIRST_DELAY_SECONDS
                child.restart_at = now + child.delay
                print(
                    f"{child.name} exited with code {child.process.returncode}; restarting "
                    f"in {child.delay:.0f}s. Last lines of {child.log_path}:\n"
                    f"{tail(child.log_path)}",
                    file=sys.stderr,
                    flush=True,
                )
                child.delay = min(child.delay * 2, RESTART_MAX_DELAY_SECONDS)
            elif now >= child.restart_at:
                child.process = self._popen(child.argv, child.log_path)
                child.started, child.restart_at = now, None
                print(
                    f"{child.name} restarted (pid {child.process.pid})", file=sys.stderr, flush=True
                )

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
