"""Wallet fixtures: the real wallet service (one or more replicas on one database)
over real gRPC, with an auth JWKS server for user tokens, service identities for
the internal hold RPCs, and a JetStream connection to publish auth's events."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus, db
from kit.config import ServiceSettings
from kit.identity import ServiceIdentity
from kit.server import Server
from klik.events.v1.events_pb2 import UserDeleted, UserRegistered
from klik.wallet.v1 import holds_pb2_grpc, wallet_pb2_grpc
from services.wallet import store
from services.wallet.domain import Wallet
from services.wallet.service import MIGRATIONS, make_spec
from services.wallet.settings import WalletOptions
from tests.helpers import envelope, publish_envelope, unique, wait_for
from tests.tokens import JwksServer, Metadata, TokenAuthority, bearer, service_identities


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test database with the wallet's migrations applied."""
    engine = db.make_engine(database_url, pool_size=25)
    await db.migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


def new_user() -> str:
    return str(uuid.uuid4())


@dataclass
class WalletStack:
    """Replicas of the wallet service sharing one database and the test's consumers."""

    engine: AsyncEngine
    js: JetStreamContext
    authority: TokenAuthority
    identities: dict[str, ServiceIdentity]
    options: WalletOptions
    servers: list[Server] = field(default_factory=list)
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def wallet(self, replica: int = 0) -> wallet_pb2_grpc.WalletServiceStub:
        return wallet_pb2_grpc.WalletServiceStub(self.channels[replica % len(self.channels)])

    def holds(self, replica: int = 0) -> holds_pb2_grpc.HoldServiceStub:
        return holds_pb2_grpc.HoldServiceStub(self.channels[replica % len(self.channels)])

    def user(self, user_id: str, role: str = "user") -> Metadata:
        return self.authority.user(user_id, role)

    def service(self, name: str = "generation") -> Metadata:
        """Call metadata presenting service `name`'s identity to the wallet."""
        return bearer(self.identities[name].token("wallet"))

    async def register(self, *user_ids: str) -> None:
        """Publish `user.registered` for each user as auth would, and wait until the
        wallet service has opened their wallets."""
        for user_id in user_ids:
            event = envelope(
                "user.registered", UserRegistered(user_id=user_id), aggregate_id=user_id
            )
            await publish_envelope(self.js, event)
        await self.wait_for_wallets(*user_ids)

    async def delete(self, user_id: str) -> None:
        event = envelope("user.deleted", UserDeleted(user_id=user_id), aggregate_id=user_id)
        await publish_envelope(self.js, event)

    async def drained(self) -> None:
        """Wait until the wallet's consumers have handled (and acked) every event
        published so far."""

        async def idle() -> bool:
            for event in ("user-registered", "user-deleted"):
                name = f"{self.options.consumer_prefix}-{event}"
                try:
                    info = await self.js.consumer_info(bus.EVENTS_STREAM, name)
                except NotFoundError:
                    return False
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await wait_for(idle, 30, message="wallet consumers drained")

    async def wallet_row(self, user_id: str) -> Wallet | None:
        async with db.session_factory(self.engine)() as session:
            return await store.get_wallet(session, user_id)

    async def wait_for_wallets(self, *user_ids: str) -> None:
        async def opened() -> bool:
            return all([await self.wallet_row(user_id) is not None for user_id in user_ids])

        await wait_for(opened, 30, message=f"wallets of {user_ids} opened")


StartWallet = Callable[..., Awaitable[WalletStack]]


@pytest.fixture
async def start_wallet(
    engine: AsyncEngine,
    database_url: str,
    nats_url: str,
    nats: Client,
    jwks: JwksServer,
    authority: TokenAuthority,
    tmp_path: Path,
) -> AsyncIterator[StartWallet]:
    """`await start_wallet(replicas=1, **options)` starts the wallet service."""
    keys = tmp_path / "keys"
    identities = service_identities(keys, "wallet", "generation", "content")
    stacks: list[WalletStack] = []

    async def start(replicas: int = 1, **overrides: object) -> WalletStack:
        fields: dict[str, object] = {
            "sweep_interval": 0.1,
            "expiry_sweep_interval": 0.1,
            "consumer_prefix": unique("wallet-test-"),
            # These tests open wallets from `user.registered` alone (auth's tests
            # show the bonus on `user.email_verified`).
            "signup_bonus_on": "registered",
            **overrides,
        }
        options = WalletOptions(**fields)  # type: ignore[arg-type]
        env = {"KLIK_AUTH_PORT": str(jwks.port), "KLIK_SERVICE_KEYS_DIR": str(keys)}
        settings = dataclasses.replace(
            ServiceSettings.from_env("wallet", env=env),
            port=0,
            metrics_port=0,
            database_url=database_url,
            nats_url=nats_url,
            grace_seconds=5.0,
        )
        stack = WalletStack(engine, nats.jetstream(), authority, identities, options)
        stacks.append(stack)
        for _ in range(replicas):
            server = Server(make_spec(options), settings)
            await server.start()
            stack.servers.append(server)
            stack.channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
        await asyncio.gather(*(asyncio.wait_for(s.ready.wait(), 30) for s in stack.servers))
        return stack

    yield start
    for stack in stacks:
        for channel in stack.channels:
            await channel.close()
        for server in stack.servers:
            await server.shutdown()


@pytest.fixture
async def wallet(start_wallet: StartWallet) -> WalletStack:
    """One wallet replica with the default options (signup bonus 100)."""
    return await start_wallet()
