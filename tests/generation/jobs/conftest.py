"""Generation jobs end to end: the real wallet service (tests/wallet/conftest.py)
over real gRPC, one or more real generation replicas sharing their own database,
real NATS, and the provider sandbox over real HTTP (tests/generation/conftest.py).

Timings are short but real: deadlines of seconds, leases of one second, sweeps
every fifth of a second."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus, db
from kit.assets import AssetSettings
from kit.config import ServiceSettings
from kit.server import Server
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import JobTransitioned
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from klik.wallet.v1 import wallet_pb2
from services.generation import store
from services.generation.domain import Kind
from services.generation.providers.registry import Providers
from services.generation.service import MIGRATIONS, make_spec
from services.generation.settings import (
    GenerationSettings,
    JobSettings,
    ProviderPolicy,
    catalogue_from_env,
)
from tests.generation.conftest import POLICY, FakeClock, SandboxServer
from tests.helpers import stream_messages, wait_for
from tests.tokens import Metadata
from tests.wallet import conftest as wallet_fixtures
from tests.wallet.conftest import StartWallet, WalletStack

# The wallet's fixtures, run here as the wallet tests run them.
engine = wallet_fixtures.engine
start_wallet = wallet_fixtures.start_wallet

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
JOBS = JobSettings(
    workers=2,
    lease_seconds=1.0,
    poll_seconds=0.2,
    pending_timeout_seconds=1.0,
    sweep_seconds=0.2,
)


@dataclass
class Replica:
    server: Server
    channel: grpc.aio.Channel
    providers: Providers

    @property
    def stub(self) -> generation_pb2_grpc.GenerationServiceStub:
        return generation_pb2_grpc.GenerationServiceStub(self.channel)

    async def kill(self) -> None:
        """Stop its workers abruptly: what a crashed process leaves behind (its jobs
        RUNNING, their leases running out), without the drain's tidying."""
        tasks = list(self.server._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.server._background.clear()


@dataclass
class JobsStack:
    wallet: WalletStack
    sandbox: SandboxServer
    clock: FakeClock
    engine: AsyncEngine  # generation's database
    assets: AssetSettings
    start: Callable[..., Awaitable[Replica]]
    replicas: list[Replica] = field(default_factory=list)

    def stub(self, replica: int = 0) -> generation_pb2_grpc.GenerationServiceStub:
        return self.replicas[replica].stub

    async def user(self) -> tuple[str, Metadata]:
        """A new user whose wallet is open with the signup bonus (100)."""
        user_id = str(uuid.uuid4())
        await self.wallet.register(user_id)
        return user_id, self.wallet.user(user_id)

    async def create(self, who: Metadata, replica: int = 0, **fields: Any) -> generation_pb2.Job:
        reply = await self.stub(replica).CreateJob(
            generation_pb2.CreateJobRequest(**fields), metadata=who, timeout=10
        )
        job: generation_pb2.Job = reply.job
        return job

    async def get(self, who: Metadata, job_id: str, replica: int = 0) -> generation_pb2.Job:
        reply = await self.stub(replica).GetJob(
            generation_pb2.GetJobRequest(job_id=job_id), metadata=who, timeout=10
        )
        job: generation_pb2.Job = reply.job
        return job

    async def finished(
        self, who: Metadata, job_id: str, within: float = 20.0, replica: int = 0
    ) -> generation_pb2.Job:
        async def done() -> generation_pb2.Job | None:
            job = await self.get(who, job_id, replica)
            return job if job.status in TERMINAL else None

        found = await wait_for(done, within, message=f"job {job_id} finished")
        assert found is not None
        return found

    async def status(self, who: Metadata, job_id: str, status: str) -> generation_pb2.Job:
        async def reached() -> generation_pb2.Job | None:
            job = await self.get(who, job_id)
            return job if job.status == status else None

        found = await wait_for(reached, 20, message=f"job {job_id} {status}")
        assert found is not None
        return found

    async def money(self, user_id: str) -> tuple[int, int]:
        """(balance, held) of the user's wallet, read over the wallet's API."""
        reply = await self.wallet.wallet().GetWallet(
            wallet_pb2.GetWalletRequest(), metadata=self.wallet.user(user_id), timeout=5
        )
        return reply.wallet.balance, reply.wallet.held

    async def settled(self, user_id: str, balance: int) -> None:
        """Wait until nothing is held and the balance is `balance`."""

        async def reached() -> bool:
            return await self.money(user_id) == (balance, 0)

        await wait_for(reached, 20, message=f"wallet of {user_id} settled at {balance}")

    async def charges(self, user_id: str) -> list[int]:
        reply = await self.wallet.wallet().ListTransactions(
            wallet_pb2.ListTransactionsRequest(page_size=100),
            metadata=self.wallet.user(user_id),
            timeout=5,
        )
        return [t.amount for t in reply.transactions if t.kind == "charge"]

    async def events(self, job_id: str, expected: int) -> list[JobTransitioned]:
        """The job's `generation.job.*` events, once `expected` have been published."""

        async def published() -> list[JobTransitioned] | None:
            found = []
            messages = await stream_messages(
                self.wallet.js, bus.EVENTS_STREAM, "klik.events.generation.job.>"
            )
            for message in messages:
                envelope = Envelope.FromString(message.data)
                if envelope.aggregate_id == job_id:
                    payload = JobTransitioned()
                    envelope.payload.Unpack(payload)
                    found.append(payload)
            return found if len(found) >= expected else None

        found = await wait_for(published, 20, interval=0.1, message=f"{expected} events")
        assert found is not None
        return found

    async def column(self, job_id: str, name: str) -> Any:
        """One column of the job's row, once it is set (waits for it)."""

        async def value() -> Any:
            async with self.engine.connect() as conn:
                found = await conn.scalar(
                    select(store.jobs.c[name]).where(store.jobs.c.id == job_id)
                )
            return found or None

        found = await wait_for(value, 10, message=f"job {job_id}'s {name} set")
        assert found is not None
        return found

    async def rows(self) -> int:
        """Job rows of every status, internal ones included."""
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(store.jobs)) or 0)


MakeJobsStack = Callable[..., Awaitable[JobsStack]]


@pytest.fixture
async def make_jobs_stack(
    start_wallet: StartWallet,
    make_database_url: Callable[[], str],
    nats_url: str,
    sandbox: SandboxServer,
    clock: FakeClock,
    jwks: Any,
    tmp_path: Path,
) -> AsyncIterator[MakeJobsStack]:
    """`await make_jobs_stack(replicas=1, deadline=5.0, policy=POLICY, catalogue_env=None,
    wallet_addr="", **JobSettings fields)`: every kind's deadline is `deadline` seconds;
    `catalogue_env` adds to the variables the catalogue is read from (`{sandbox}` in
    them is the sandbox's URL); `wallet_addr` is where generation reaches a wallet
    (default: the in-process one)."""
    stacks: list[JobsStack] = []
    engines: list[AsyncEngine] = []

    async def make(
        replicas: int = 1,
        deadline: float = 5.0,
        policy: ProviderPolicy = POLICY,
        catalogue_env: dict[str, str] | None = None,
        wallet_addr: str = "",
        **job_fields: Any,
    ) -> JobsStack:
        wallet_stack = await start_wallet()
        database_url = make_database_url()
        own_engine = db.make_engine(database_url)
        await db.migrate(own_engine, MIGRATIONS)
        engines.append(own_engine)
        assets = AssetSettings.from_env({"KLIK_ASSET_DIR": str(tmp_path / "assets")})
        # Replicas of one stack share their durable consumers; stacks do not.
        prefix = f"generation-{uuid.uuid4().hex[:8]}"
        env = {
            "KLIK_AUTH_PORT": str(jwks.port),
            "KLIK_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
            "KLIK_WALLET_ADDR": wallet_addr or f"127.0.0.1:{wallet_stack.servers[0].port}",
        }
        service_settings = dataclasses.replace(
            ServiceSettings.from_env("generation", env=env),
            port=0,
            metrics_port=0,
            database_url=database_url,
            nats_url=nats_url,
            grace_seconds=2.0,
        )

        async def start(**overrides: Any) -> Replica:
            variables = {
                name: value.replace("{sandbox}", sandbox.url)
                for name, value in (catalogue_env or {}).items()
            }
            settings = GenerationSettings(
                catalogue_from_env({"KLIK_SANDBOX_URL": sandbox.url, **variables}),
                policy=policy,
                deadlines=dict.fromkeys(Kind, deadline),
                jobs=dataclasses.replace(JOBS, **{**job_fields, **overrides}),
            )
            providers = Providers(settings.catalogue, settings.policy, clock=clock)
            server = Server(
                make_spec(settings, providers, assets, consumer_prefix=prefix), service_settings
            )
            await server.start()
            await asyncio.wait_for(server.ready.wait(), 30)
            replica = Replica(
                server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"), providers
            )
            built.replicas.append(replica)
            return replica

        built = JobsStack(wallet_stack, sandbox, clock, own_engine, assets, start)
        stacks.append(built)
        for _ in range(replicas):
            await start()
        return built

    yield make
    for stack in stacks:
        for replica in stack.replicas:
            await replica.channel.close()
            await replica.server.shutdown()
    for made in engines:
        await made.dispose()


@pytest.fixture
async def stack(make_jobs_stack: MakeJobsStack) -> JobsStack:
    return await make_jobs_stack()
