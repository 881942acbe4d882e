"""The whole suite as `make run` starts it (`python -m stack`: nats-server, the
provider sandbox, auth, wallet, generation, content and the gateway), on free ports,
with a fresh database per service (PostgreSQL when reachable), for tests that need
every real service behind the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kit.config import SERVICE_PORTS
from tests.databases import Databases
from tests.helpers import free_port

READY_LINE = "klik is ready: "
# Every gateway rate limit off, for stacks whose tests send many requests quickly.
NO_RATE_LIMITS = {
    f"KLIK_GATEWAY_{kind}_{cls}": "0"
    for kind, classes in (("RATE", ("AUTH", "READ", "WRITE")), ("USER_RATE", ("READ", "WRITE")))
    for cls in classes
}
# The admin of the shared stack (tests/gateway/conftest.py real_stack).
STACK_ADMIN = "operator-admin@example.com"


@dataclass(frozen=True)
class RunningStack:
    url: str  # the gateway
    env: dict[str, str]

    def user(self, email: str, password: str = "correct horse battery") -> str:
        """Register `email` through the gateway and return an access token, once the
        user's wallet is open (the wallet opens it when it hears auth's
        `user.registered`, a moment after the registration answered)."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            registered = client.post(
                "/v1/auth/register",
                json={"email": email, "password": password, "display_name": email},
            )
            assert registered.status_code == 200, registered.text
            login = client.post("/v1/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200, login.text
            token: str = login.json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 30
            while (wallet := client.get("/v1/wallet", headers=bearer)).status_code != 200:
                assert time.monotonic() < deadline, f"no wallet within 30 s: {wallet.text}"
                time.sleep(0.05)
            return token


def stack_env(root: Path, databases: Databases, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
    env.update(
        KLIK_VAR_DIR=str(root / "var"),
        KLIK_GATEWAY_PORT=str(free_port()),
        KLIK_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        KLIK_SANDBOX_PORT=str(free_port()),
        KLIK_SANDBOX_SMTP_PORT=str(free_port()),
        KLIK_LOG_LEVEL="WARNING",
        # These stacks spend the signup bonus right after registering; the default
        # (the bonus and paid work only once the email is verified) has its own test
        # (tests/auth/test_verification_stack.py).
        KLIK_SIGNUP_BONUS_ON="registered",
        KLIK_REQUIRE_VERIFIED_EMAIL="0",
    )
    for service in SERVICE_PORTS:
        prefix = f"KLIK_{service.upper()}"
        env[f"{prefix}_PORT"] = str(free_port())
        env[f"{prefix}_METRICS_PORT"] = str(free_port())
        env[f"{prefix}_DATABASE_URL"] = databases.create()
    env.update(overrides)
    return env


@contextmanager
def running_stack(root: Path, **overrides: str) -> Iterator[RunningStack]:
    databases = Databases(root / "sqlite")
    env = stack_env(root, databases, **overrides)
    process = subprocess.Popen(
        [sys.executable, "-m", "stack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield RunningStack(_wait_ready(process), env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        databases.drop_all()


def _wait_ready(process: subprocess.Popen[str], within: float = 120.0) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + within
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if line.startswith(READY_LINE):
            return line[len(READY_LINE) :].split()[0]
    raise AssertionError("the stack never became ready:\n" + "".join(seen[-40:]))
