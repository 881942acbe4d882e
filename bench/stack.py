"""The real stack for the streaming and job benchmarks, every piece its own process
as deployed: a nats-server and those asked of the sandbox (`python -m sandbox`), the
wallet (its users' wallets funded), one generation replica and the gateway
(`python -m gateway`, rate limits off), each service on a fresh database at
$KLIK_TEST_DATABASE_URL (SQLite when unreachable); a JWKS server standing in for
auth runs in the benchmark's own process (tokens are verified locally after one
fetch)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.gateway_wallet import spawn, wait_http
from bench.generation_jobs import funded_wallets, serving_health
from kit.config import SERVICE_PORTS
from tests.databases import Databases
from tests.helpers import free_port
from tests.natsserver import NatsServer, nats_server_binary
from tests.tokens import TokenAuthority, service_identities

ALL = ("sandbox", "wallet", "generation", "gateway")


@dataclass(frozen=True)
class Stack:
    nats_url: str
    sandbox: str  # http://host:port
    generation: str  # host:port (gRPC)
    gateway: str  # http://host:port, "" when not started
    generation_database: str  # its URL, for counting jobs
    tokens: Sequence[str]  # one access token per funded user
    users: Sequence[str]
    children: Mapping[str, subprocess.Popen[bytes]]


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """The resident set of process `pid` (Linux /proc; `VmHWM`: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


@asynccontextmanager
async def stack(
    root: Path,
    *,
    users: int,
    services: Sequence[str] = ALL,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """`services` (of ALL) up and serving; `env` adds to (or overrides) every
    process's."""
    nats = NatsServer(nats_server_binary(), free_port(), root / "nats", root / "nats.log")
    nats.start()
    databases = Databases(root / "sqlite")
    children: dict[str, subprocess.Popen[bytes]] = {}
    authority = TokenAuthority()
    keys = root / "keys"
    service_identities(keys, "wallet", "generation", "gateway", "content")
    user_ids = [str(uuid.uuid4()) for _ in range(users)]
    try:
        wallet_url = await funded_wallets(databases, user_ids) if "wallet" in services else ""
        generation_url = databases.create()
        async with authority.serve() as jwks:
            ports = {name: free_port() for name in ("sandbox", "smtp", "wallet", "generation")}
            ports["gateway"] = free_port()
            sandbox = f"http://127.0.0.1:{ports['sandbox']}"
            base = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
            base.update(
                KLIK_VAR_DIR=str(root / "var"),
                KLIK_ASSET_DIR=str(root / "assets"),
                KLIK_NATS_URL=nats.url,
                KLIK_LOG_LEVEL="WARNING",
                KLIK_SERVICE_KEYS_DIR=str(keys),
                KLIK_AUTH_ADDR=jwks.address,
                KLIK_SANDBOX_PORT=str(ports["sandbox"]),
                KLIK_SANDBOX_SMTP_PORT=str(ports["smtp"]),
                KLIK_SANDBOX_URL=sandbox,
                KLIK_WALLET_PORT=str(ports["wallet"]),
                KLIK_WALLET_METRICS_PORT="0",
                KLIK_WALLET_DATABASE_URL=wallet_url,
                KLIK_WALLET_ADDR=f"127.0.0.1:{ports['wallet']}",
                KLIK_GENERATION_PORT=str(ports["generation"]),
                KLIK_GENERATION_METRICS_PORT="0",
                KLIK_GENERATION_DATABASE_URL=generation_url,
                KLIK_GENERATION_ADDR=f"127.0.0.1:{ports['generation']}",
                KLIK_GATEWAY_PORT=str(ports["gateway"]),
            )
            for variable in (
                "KLIK_GATEWAY_RATE_READ",
                "KLIK_GATEWAY_RATE_WRITE",
                "KLIK_GATEWAY_USER_RATE_READ",
                "KLIK_GATEWAY_USER_RATE_WRITE",
            ):
                base[variable] = "0"
            for service in SERVICE_PORTS:  # nothing listens there; these are not used
                base.setdefault(f"KLIK_{service.upper()}_ADDR", f"127.0.0.1:{free_port()}")
            base.update(env or {})
            modules = {
                "sandbox": "sandbox",
                "wallet": "services.wallet",
                "generation": "services.generation",
                "gateway": "gateway",
            }
            for name in services:
                argv = [sys.executable, "-m", modules[name]]
                children[name] = spawn(argv, base, root / f"{name}.log")
            if "sandbox" in services:
                await wait_http(sandbox + "/_sandbox/streams")
            for name in ("wallet", "generation"):
                if name in services:
                    await serving_health(base[f"KLIK_{name.upper()}_ADDR"])
            gateway_url = f"http://127.0.0.1:{ports['gateway']}" if "gateway" in services else ""
            if gateway_url:
                await wait_http(gateway_url + "/healthz")
            yield Stack(
                nats_url=nats.url,
                sandbox=sandbox,
                generation=base["KLIK_GENERATION_ADDR"],
                gateway=gateway_url,
                generation_database=generation_url,
                tokens=[authority.access_token(u, lifetime=7200) for u in user_ids],
                users=user_ids,
                children=children,
            )
    finally:
        for child in children.values():
            child.terminate()
        for name, child in children.items():
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 30 s; killed", flush=True)
                child.kill()
                child.wait()
        databases.drop_all()
        nats.stop()
