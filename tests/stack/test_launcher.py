"""`python -m stack` as a user runs it (a subprocess on free ports, its own var/):
a crashed service is restarted and the stack goes on serving, SIGHUP stops it like
SIGTERM, a second copy refuses before it touches the store, and SIGKILL of the
launcher takes every child with it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 120.0


def stack_env(var: Path) -> dict[str, str]:
    """The environment .ci/run-smoke gives `make run`: everything on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
    env.update(
        KLIK_VAR_DIR=str(var),
        KLIK_GATEWAY_PORT=str(free_port()),
        KLIK_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        KLIK_SANDBOX_PORT=str(free_port()),
        KLIK_GRACE_SECONDS="2",
    )
    for service in ("AUTH", "WALLET", "GENERATION", "CONTENT"):
        env[f"KLIK_{service}_PORT"] = str(free_port())
        env[f"KLIK_{service}_METRICS_PORT"] = "0"
    return env


@dataclasses.dataclass
class Launcher:
    process: subprocess.Popen[str]
    out: Path
    err: Path
    url: str
    seen: set[int] = dataclasses.field(default_factory=set)  # every child pid found

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def children(self) -> dict[str, int]:
        """The launcher's live children, command line -> pid."""
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                found[cmdline.strip()] = int(entry.name)
        self.seen.update(found.values())
        return found

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def launch(env: dict[str, str], tmp: Path, name: str) -> Launcher:
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "stack"],
        cwd=ROOT,
        env=env,
        stdout=out.open("w"),
        stderr=err.open("w"),
        text=True,
    )
    return Launcher(process, out, err, f"http://127.0.0.1:{env['KLIK_GATEWAY_PORT']}")


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[tuple[Launcher, dict[str, str]]]:
    env = stack_env(tmp_path / "var")
    launcher = launch(env, tmp_path, "first")
    try:
        yield launcher, env
    finally:
        if launcher.process.poll() is None:
            launcher.process.send_signal(signal.SIGTERM)
            launcher.process.wait(60)
        for pid in launcher.seen:  # whatever a failed test left behind
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_ready(launcher: Launcher) -> None:
    def up() -> bool:
        assert launcher.process.poll() is None, launcher.output()
        return "klik is ready" in launcher.out.read_text()

    await wait_for(up, READY_WITHIN, interval=0.2, message="stack ready")
    launcher.children()  # remembered, for the clean-up


async def test_a_crash_is_restarted_a_second_copy_refuses_and_sighup_stops(
    launched: tuple[Launcher, dict[str, str]], tmp_path: Path
) -> None:
    launcher, env = launched
    await wait_ready(launcher)
    # A second copy on the same var/ refuses at once, before it starts anything.
    nats_store = Path(env["KLIK_VAR_DIR"]) / "nats"
    before = sorted(p.relative_to(nats_store) for p in nats_store.rglob("*"))
    second = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stack", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, refusal = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode != 0
    assert "already running" in refusal.decode()
    assert str(launcher.process.pid) in refusal.decode()
    assert sorted(p.relative_to(nats_store) for p in nats_store.rglob("*")) == before
    # kill -9 of a service: a log line, a restart, and the stack serves again.
    children = launcher.children()
    content = next(pid for cmd, pid in children.items() if "services.content" in cmd)
    os.kill(content, signal.SIGKILL)
    await wait_for(
        lambda: "content restarted" in launcher.err.read_text(),
        30,
        interval=0.1,
        message="content restarted",
    )
    assert "content exited with code -9; restarting" in launcher.err.read_text()
    assert launcher.process.poll() is None  # the stack went on
    await wait_for(launcher.ready, 60, interval=0.2, message="ready again")
    restarted = launcher.children()
    assert any("services.content" in cmd and pid != content for cmd, pid in restarted.items())
    # SIGHUP stops it like SIGTERM: in order, cleanly, nothing left behind.
    launcher.process.send_signal(signal.SIGHUP)
    assert launcher.process.wait(60) == 0
    assert "klik stopped" in launcher.out.read_text()
    assert not any(pid_alive(pid) for pid in restarted.values())


async def test_children_die_with_a_killed_launcher(
    launched: tuple[Launcher, dict[str, str]],
) -> None:
    launcher, _ = launched
    await wait_ready(launcher)
    children = launcher.children()
    assert len(children) == 7  # nats, sandbox, four services, the gateway
    launcher.process.send_signal(signal.SIGKILL)
    launcher.process.wait(10)
    await wait_for(
        lambda: not any(pid_alive(pid) for pid in children.values()),
        30,
        interval=0.1,
        message="every child gone",
    )
