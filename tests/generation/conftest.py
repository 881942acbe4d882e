"""Generation fixtures: the provider sandbox on a real socket (uvicorn in-process),
provider adapters pointed at it with quick-but-bounded timings, and a clock the
tests move by hand for breaker cool-downs and catalogue TTLs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from sandbox.app import create_app
from sandbox.serving import Sandbox
from services.generation.providers.backoff import PollSchedule, RetryPolicy
from services.generation.providers.breaker import BreakerPolicy
from services.generation.providers.http import Timeouts
from services.generation.providers.registry import Providers
from services.generation.settings import ProviderPolicy, catalogue_from_env
from tests.helpers import free_port, wait_for

# Real waits, kept short: backoff in hundredths of a second, a read timeout that a
# hanging sandbox reaches quickly, a cool-down only the fake clock can end.
POLICY = ProviderPolicy(
    retry=RetryPolicy(max_attempts=3, base_seconds=0.01, cap_seconds=0.05),
    breaker=BreakerPolicy(failure_threshold=3, cooldown_seconds=30.0),
    timeouts=Timeouts(connect=2.0, read=0.5, write=2.0, pool=2.0),
    polling=PollSchedule(initial_seconds=0.01, factor=1.5, max_seconds=0.05),
    listing_ttl_seconds=60.0,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SandboxServer:
    url: str
    state: Sandbox
    http: httpx.AsyncClient = field(repr=False)

    async def requests(self, path: str = "") -> list[dict[str, Any]]:
        """What reached the sandbox (its own log), oldest first."""
        reply = await self.http.get("/_sandbox/requests", params={"path": path})
        reply.raise_for_status()
        requests: list[dict[str, Any]] = reply.json()["requests"]
        return requests

    async def streams(self, path: str = "") -> list[dict[str, Any]]:
        """The sandbox's record of its recent streams, oldest first."""
        reply = await self.http.get("/_sandbox/streams", params={"path": path})
        reply.raise_for_status()
        streams: list[dict[str, Any]] = reply.json()["streams"]
        return streams

    async def count(self, path: str = "") -> int:
        return len(await self.requests(path))

    async def fault(self, spec: str, path: str = "") -> None:
        reply = await self.http.post("/_sandbox/faults", json={"fault": spec, "path": path})
        assert reply.status_code == 201, reply.text

    async def clear_faults(self) -> None:
        assert (await self.http.delete("/_sandbox/faults")).status_code == 204


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    state = Sandbox()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=port,
            log_config=None,
            timeout_graceful_shutdown=2,
        )
    )
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, message="sandbox started")
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield SandboxServer(url, state, http)
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeProviders = Callable[..., Providers]


@pytest.fixture
async def make_providers(sandbox: SandboxServer, clock: FakeClock) -> AsyncIterator[MakeProviders]:
    """Providers for the sandbox-only catalogue (no keys configured), closed after."""
    made: list[Providers] = []

    def make(policy: ProviderPolicy = POLICY) -> Providers:
        providers = Providers(
            catalogue_from_env({"KLIK_SANDBOX_URL": sandbox.url}), policy, clock=clock
        )
        made.append(providers)
        return providers

    yield make
    for providers in made:
        await providers.aclose()


@pytest.fixture
def providers(make_providers: MakeProviders) -> Providers:
    return make_providers()
