"""`make run`'s engine, `python -m stack`, as a user runs it: the whole suite comes
up to /readyz 200, every service probes SERVING, a second copy is refused, Ctrl-C
stops everything cleanly, and a second run on the same data comes up again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit.config import SERVICE_PORTS
from tests.helpers import free_port

pytestmark = pytest.mark.slow

READY_LINE = "klik is ready: "


class StackProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stack"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 90) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            seen.append(line)
            if line.startswith(READY_LINE):
                return line[len(READY_LINE) :].split()[0]
        raise AssertionError("stack never became ready:\n" + "".join(seen))

    def interrupt(self, timeout: float = 60) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, out


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
    env["KLIK_VAR_DIR"] = str(tmp_path / "var")
    env["KLIK_GATEWAY_PORT"] = str(free_port())
    env["KLIK_NATS_URL"] = f"nats://127.0.0.1:{free_port()}"
    env["KLIK_SANDBOX_PORT"] = str(free_port())
    env["KLIK_SANDBOX_SMTP_PORT"] = str(free_port())
    for service in SERVICE_PORTS:
        env[f"KLIK_{service.upper()}_PORT"] = str(free_port())
        env[f"KLIK_{service.upper()}_METRICS_PORT"] = str(free_port())
    yield env


def all_ports(env: dict[str, str]) -> list[int]:
    ports = [
        int(env["KLIK_GATEWAY_PORT"]),
        int(env["KLIK_NATS_URL"].rsplit(":", 1)[1]),
        int(env["KLIK_SANDBOX_PORT"]),
    ]
    return ports + [int(env[f"KLIK_{s.upper()}_PORT"]) for s in SERVICE_PORTS]


def test_stack_runs_probes_refuses_a_second_copy_and_stops_cleanly(
    stack_env: dict[str, str],
) -> None:
    stack = StackProcess(stack_env)
    try:
        url = stack.wait_ready()
        assert url == f"http://127.0.0.1:{stack_env['KLIK_GATEWAY_PORT']}"

        ready = httpx.get(url + "/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["dependencies"] == {
            "auth": "SERVING",
            "wallet": "SERVING",
            "generation": "SERVING",
            "content": "SERVING",
            "nats": "CONNECTED",
        }
        for service in SERVICE_PORTS:
            probe = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kit",
                    "health",
                    f"127.0.0.1:{stack_env[f'KLIK_{service.upper()}_PORT']}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert (probe.returncode, probe.stdout.strip()) == (0, "SERVING"), service
            metrics = httpx.get(
                f"http://127.0.0.1:{stack_env[f'KLIK_{service.upper()}_METRICS_PORT']}/metrics",
                timeout=5,
            )
            assert "klik_grpc_server_in_flight" in metrics.text

        # The provider sandbox runs on its own port, speaking the providers' shapes.
        sandbox = f"http://127.0.0.1:{stack_env['KLIK_SANDBOX_PORT']}"
        assert httpx.get(sandbox + "/_sandbox/health", timeout=5).json() == {"status": "ok"}
        avatars = httpx.get(sandbox + "/v2/avatars", timeout=5).json()["data"]["avatars"]
        assert avatars and all(a["avatar_id"].startswith("sandbox-") for a in avatars)
        # GetPricing is public: through the gateway without a token.
        pricing = httpx.get(url + "/v1/pricing", timeout=5)
        assert pricing.status_code == 200, pricing.text
        assert {
            "kind": "IMAGE",
            "model": "",
            "unit": "image",
            "credits_per_unit": "5",
            "minimum_credits": "5",
        } in pricing.json()["prices"]

        second = subprocess.run(
            [sys.executable, "-m", "stack"],
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode != 0
        assert "already running" in second.stderr
        assert httpx.get(url + "/readyz", timeout=5).status_code == 200, "first copy unharmed"
    finally:
        code, output = stack.interrupt()
    assert code == 0, output
    assert "klik stopped" in output
    assert not any(port_open(port) for port in all_ports(stack_env))
    logs = Path(stack_env["KLIK_VAR_DIR"]) / "log"
    for service in SERVICE_PORTS:
        messages = [
            json.loads(line)["message"]
            for line in (logs / f"{service}.log").read_text().splitlines()
        ]
        assert messages[-2:] == ["draining", "stopped"], service

    again = StackProcess(stack_env)
    try:
        url = again.wait_ready()
        assert httpx.get(url + "/readyz", timeout=5).status_code == 200
    finally:
        code, output = again.interrupt()
    assert code == 0, output


def test_probe_fails_when_nothing_listens() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "kit", "health", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.returncode == 1
    assert probe.stdout.startswith("UNREACHABLE")
