"""Content fixtures: the real content service over real gRPC on the test database,
an auth JWKS server for user tokens of any role, and a JetStream connection to
publish the events generation and auth would publish."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit import bus, db
from kit.assets import AssetSettings
from kit.config import ServiceSettings
from kit.server import Server
from klik.content.v1 import content_pb2_grpc
from klik.events.v1.events_pb2 import JobTransitioned, UserDeleted, UserRegistered
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from services.content.service import MIGRATIONS, make_spec
from services.content.settings import ContentOptions
from services.generation.service import make_spec as generation_spec
from services.generation.settings import GenerationSettings, JobSettings, catalogue_from_env
from services.wallet.service import make_spec as wallet_spec
from services.wallet.settings import WalletOptions
from tests.generation.conftest import POLICY, SandboxServer, sandbox
from tests.helpers import envelope, publish_envelope, unique, wait_for
from tests.tokens import JwksServer, Metadata, TokenAuthority, service_identities

__all__ = ["sandbox"]  # the provider sandbox fixture, shared with the generation tests

CONSUMED = (
    "job-succeeded",
    "job-failed",
    "job-cancelled",
    "user-deleted",
    "user-registered",
    "user-profile-changed",
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test database with the content service's migrations applied."""
    engine = db.make_engine(database_url, pool_size=20)
    await db.migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


def new_user() -> str:
    return str(uuid.uuid4())


def text_job(
    owner: str,
    status: str,
    *,
    job_id: str | None = None,
    kind: str = "TEXT",
    text: str = "",
    error: str = "",
) -> generation_pb2.Job:
    """A job as generation publishes it in `generation.job.<status>`."""
    job = generation_pb2.Job(
        id=job_id or str(uuid.uuid4()),
        user_id=owner,
        kind=kind,
        status=status,
        provider="sandbox",
        model="sandbox-text",
    )
    if status == "SUCCEEDED":
        job.result.CopyFrom(generation_pb2.JobResult(text=text, mime_type="text/plain"))
    if status == "FAILED":
        job.error.CopyFrom(generation_pb2.JobError(code="PROVIDER_ERROR", message=error))
    return job


@dataclass
class ContentStack:
    """The content service and what its tests need around it."""

    engine: AsyncEngine
    js: JetStreamContext
    authority: TokenAuthority
    prefix: str
    server: Server
    channel: grpc.aio.Channel
    published: list[str] = field(default_factory=list)

    @property
    def content(self) -> content_pb2_grpc.ContentServiceStub:
        return content_pb2_grpc.ContentServiceStub(self.channel)

    def session(self) -> AsyncSession:
        """A session on the service's database, to seed or inspect rows."""
        return db.session_factory(self.engine)()

    def user(self, user_id: str, role: str = "user") -> Metadata:
        return self.authority.user(user_id, role)

    async def job_event(
        self, job: generation_pb2.Job, *, event_id: str | None = None, msg_id: str | None = None
    ) -> str:
        """Publish `generation.job.<status>` for `job` as generation's relay would;
        returns the event id."""
        event = envelope(
            f"generation.job.{job.status.lower()}",
            JobTransitioned(job=job, previous_status="RUNNING"),
            event_id=event_id,
            aggregate_id=job.id,
        )
        event.user_id = job.user_id
        await publish_envelope(self.js, event, msg_id=msg_id)
        return event.id

    async def delete_user(self, user_id: str) -> None:
        event = envelope("user.deleted", UserDeleted(user_id=user_id), aggregate_id=user_id)
        await publish_envelope(self.js, event)

    async def drained(self) -> None:
        """Wait until the content consumers have handled (and acked) every event
        published so far."""

        async def idle() -> bool:
            for name in CONSUMED:
                try:
                    info = await self.js.consumer_info(bus.EVENTS_STREAM, f"{self.prefix}-{name}")
                except NotFoundError:
                    return False
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await wait_for(idle, 30, message="content consumers drained")


StartContent = Callable[..., Awaitable[ContentStack]]


@pytest.fixture
async def start_content(
    engine: AsyncEngine,
    database_url: str,
    nats_url: str,
    nats: Client,
    jwks: JwksServer,
    authority: TokenAuthority,
    tmp_path: Path,
) -> AsyncIterator[StartContent]:
    """`await start_content(env={...})` starts the content service; `env` adds
    settings (e.g. where generation listens). Replicas share a database and, given
    the same `prefix`, their durable consumers."""
    keys = tmp_path / "keys"
    service_identities(keys, "content", "generation", "wallet")
    started: list[ContentStack] = []

    async def start(env: Mapping[str, str] | None = None, prefix: str = "") -> ContentStack:
        settings = dataclasses.replace(
            ServiceSettings.from_env(
                "content",
                env={
                    "KLIK_AUTH_PORT": str(jwks.port),
                    "KLIK_SERVICE_KEYS_DIR": str(keys),
                    **(env or {}),
                },
            ),
            port=0,
            metrics_port=0,
            database_url=database_url,
            nats_url=nats_url,
            grace_seconds=5.0,
        )
        prefix = prefix or unique("content-test-")
        server = Server(make_spec(prefix, ContentOptions.from_env(env or {})), settings)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack = ContentStack(engine, nats.jetstream(), authority, prefix, server, channel)
        started.append(stack)
        await wait_for(server.ready.is_set, 30, message="content ready")
        return stack

    yield start
    for stack in started:
        await stack.channel.close()
        await stack.server.shutdown()


@pytest.fixture
async def content(start_content: StartContent) -> ContentStack:
    return await start_content()


# ---- the real stack: wallet + generation (on the sandbox) + content ------------------


@dataclass
class FullStack:
    """Content calling the real generation service, which charges the real wallet and
    calls the provider sandbox over HTTP."""

    content: ContentStack
    wallet: wallet_pb2_grpc.WalletServiceStub
    generation: generation_pb2_grpc.GenerationServiceStub
    sandbox: SandboxServer

    async def register(self, user_id: str) -> None:
        """Publish `user.registered` as auth would; wait for the wallet to open."""
        event = envelope("user.registered", UserRegistered(user_id=user_id), aggregate_id=user_id)
        await publish_envelope(self.content.js, event)

        async def opened() -> bool:
            try:
                await self.wallet.GetWallet(
                    wallet_pb2.GetWalletRequest(), metadata=self.content.user(user_id)
                )
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND, error
                return False
            return True

        await wait_for(opened, 30, message=f"wallet of {user_id} opened")

    async def balance(self, user_id: str) -> tuple[int, int]:
        """(balance, held) of the user's wallet."""
        reply = await self.wallet.GetWallet(
            wallet_pb2.GetWalletRequest(), metadata=self.content.user(user_id)
        )
        return reply.wallet.balance, reply.wallet.held


@pytest.fixture
async def full_stack(
    start_content: StartContent,
    make_database_url: Callable[[], str],
    nats_url: str,
    jwks: JwksServer,
    sandbox: SandboxServer,
    tmp_path: Path,
) -> AsyncIterator[FullStack]:
    keys = tmp_path / "keys"
    service_identities(keys, "content", "generation", "wallet")
    env = {"KLIK_AUTH_PORT": str(jwks.port), "KLIK_SERVICE_KEYS_DIR": str(keys)}

    def settings(name: str, extra: Mapping[str, str] | None = None) -> ServiceSettings:
        database = make_database_url()
        return dataclasses.replace(
            ServiceSettings.from_env(name, env={**env, **(extra or {})}),
            port=0,
            metrics_port=0,
            database_url=database,
            nats_url=nats_url,
            grace_seconds=5.0,
        )

    servers: list[Server] = []
    wallet_options = WalletOptions(
        consumer_prefix=unique("wallet-test-"), sweep_interval=0.5, signup_bonus_on="registered"
    )
    wallet_server = Server(wallet_spec(wallet_options), settings("wallet"))
    await wallet_server.start()
    servers.append(wallet_server)
    await asyncio.wait_for(wallet_server.ready.wait(), 30)

    own = GenerationSettings(
        catalogue_from_env({"KLIK_SANDBOX_URL": sandbox.url}),
        policy=POLICY,
        jobs=JobSettings(poll_seconds=0.2, sweep_seconds=0.5),
    )
    assets = AssetSettings.from_env({"KLIK_ASSET_DIR": str(tmp_path / "assets")})
    generation_server = Server(
        generation_spec(own, assets=assets),
        settings("generation", {"KLIK_WALLET_PORT": str(wallet_server.port)}),
    )
    await generation_server.start()
    servers.append(generation_server)
    await asyncio.wait_for(generation_server.ready.wait(), 30)

    content = await start_content(env={"KLIK_GENERATION_PORT": str(generation_server.port)})
    wallet_channel = grpc.aio.insecure_channel(f"127.0.0.1:{wallet_server.port}")
    generation_channel = grpc.aio.insecure_channel(f"127.0.0.1:{generation_server.port}")
    yield FullStack(
        content,
        wallet_pb2_grpc.WalletServiceStub(wallet_channel),
        generation_pb2_grpc.GenerationServiceStub(generation_channel),
        sandbox,
    )
    await wallet_channel.close()
    await generation_channel.close()
    await content.channel.close()
    await content.server.shutdown()
    for server in reversed(servers):
        await server.shutdown()
