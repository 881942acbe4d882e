"""Auth fixtures: the real auth service (kit Server, its real spec, migrations and
outbox) on the test database and nats-server, called over real gRPC.

    auth = await start_auth()                       # defaults, admin@example.com is admin
    auth = await start_auth(KLIK_ACCESS_TOKEN_TTL_SECONDS="2")   # env overrides
    user = await auth.register("a@example.com")     # registered and logged in
    token = await mail.token("a@example.com", "/verify-email")   # from the mail sink

Every stack mails to its own SMTP sink (sandbox/mail.py, on a free port); the `mail`
fixture also serves the sandbox's HTTP side, and reads what arrived over real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import uvicorn
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus, db
from kit.config import ServiceSettings
from kit.errors import error_details
from kit.identity import generate_keys
from kit.server import Server
from kit.tables import outbox
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from klik.events.v1.envelope_pb2 import Envelope
from sandbox.app import create_app
from sandbox.mail import Mailbox, SmtpSink
from services.auth.service import make_spec
from services.auth.settings import AuthOptions
from tests.helpers import free_port, stream_messages, unique, wait_for

ADMIN_EMAIL = "admin@example.com"
PASSWORD = "correct horse battery staple"
Metadata = tuple[tuple[str, str], ...]

# The key-encryption key every test stack seals its secrets with (kek.py).
TEST_KEK = "test1:" + base64.b64encode(bytes(range(32))).decode()
# Fast enough for tests, still at the OWASP minimum (the service refuses less).
BASE_ENV = {
    "KLIK_ADMIN_EMAILS": f" {ADMIN_EMAIL.upper()} , second-admin@example.com",
    "KLIK_AUTH_KEK": TEST_KEK,
}


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


async def failure(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    """(code, ErrorInfo reason) of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    details = error_details(error.value.trailing_metadata())
    return error.value.code(), details.reason if details else ""


async def failure_details(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


@dataclass
class Session:
    """A signed-in user: the tokens of their latest login or refresh."""

    user: auth_pb2.User
    access_token: str
    refresh_token: str
    password: str = PASSWORD

    @property
    def metadata(self) -> Metadata:
        return bearer(self.access_token)


@dataclass
class Auth:
    """One running auth replica and the environment it was started with."""

    server: Server
    channel: grpc.aio.Channel
    env: dict[str, str]

    @property
    def stub(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.channel)

    @property
    def engine(self) -> AsyncEngine:
        return self.server.resources.engine

    @property
    def uow(self) -> db.UnitOfWork:
        return self.server.resources.uow

    @property
    def port(self) -> int:
        return self.server.port

    async def register(
        self, email: str | None = None, password: str = PASSWORD, name: str = "Someone"
    ) -> Session:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        await self.stub.Register(
            auth_pb2.RegisterRequest(email=email, password=password, display_name=name),
            timeout=10,
        )
        return await self.login(email, password)

    async def login(self, email: str, password: str = PASSWORD, **kwargs: Any) -> Session:
        reply = await self.stub.Login(
            auth_pb2.LoginRequest(email=email, password=password), timeout=10, **kwargs
        )
        return Session(reply.user, reply.access_token, reply.refresh_token, password)

    async def refresh(self, session: Session) -> Session:
        reply = await self.stub.Refresh(
            auth_pb2.RefreshRequest(refresh_token=session.refresh_token), timeout=10
        )
        return Session(reply.user, reply.access_token, reply.refresh_token, session.password)

    async def me(self, token: str) -> auth_pb2.User:
        reply: auth_pb2.GetMeResponse = await self.stub.GetMe(
            auth_pb2.GetMeRequest(), metadata=bearer(token), timeout=10
        )
        return reply.user

    async def admin(self) -> Session:
        try:
            return await self.register(ADMIN_EMAIL)
        except grpc.aio.AioRpcError:
            return await self.login(ADMIN_EMAIL)

    async def outbox_drained(self) -> bool:
        """Every event written so far has been published to JetStream."""
        async with self.engine.connect() as conn:
            pending = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return pending == 0


@dataclass
class AuthStack:
    database_url: str
    nats_url: str
    keys_dir: Path
    smtp: SmtpSink
    started: list[Auth] = field(default_factory=list)
    # The stream is shared by the session: each stack's durable consumers are its own.
    consumer_prefix: str = field(default_factory=lambda: unique("auth-test-"))

    def settings(self, env: dict[str, str]) -> ServiceSettings:
        return dataclasses.replace(
            ServiceSettings.from_env("auth", env=env),
            metrics_port=0,
            database_url=self.database_url,
            nats_url=self.nats_url,
            grace_seconds=2.0,
        )

    async def start(self, port: int | None = None, **overrides: str) -> Auth:
        """An auth replica. Its own port is where every kit service (auth included)
        fetches the JWKS, so the first replica's port is reused by later ones' env."""
        env = {
            **BASE_ENV,
            "KLIK_SERVICE_KEYS_DIR": str(self.keys_dir),
            "KLIK_AUTH_PORT": str(port or free_port()),
            "KLIK_SMTP_PORT": str(self.smtp.port),
            "KLIK_MAIL_POLL_SECONDS": "0.2",
            "KLIK_MAIL_RETRY_MAX_SECONDS": "1",
            **overrides,
        }
        if self.started and port is None:
            env["KLIK_AUTH_ADDR"] = f"127.0.0.1:{self.started[0].port}"
        options = dataclasses.replace(
            AuthOptions.from_env(env), consumer_prefix=self.consumer_prefix
        )
        server = Server(make_spec(options), self.settings(env))
        await server.start()
        await asyncio.wait_for(server.ready.wait(), 30)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        self.started.append(Auth(server, channel, env))
        return self.started[-1]

    async def stop(self, auth: Auth) -> None:
        self.started.remove(auth)
        await auth.channel.close()
        await auth.server.shutdown()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """The sandbox's SMTP mail sink on a free port, with a mailbox of its own."""
    sink = SmtpSink(Mailbox(), port=free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture
async def stack(
    database_url: str, nats_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> AsyncIterator[AuthStack]:
    keys = tmp_path / "keys"
    generate_keys(keys, ["auth", "content"])
    running = AuthStack(database_url, nats_url, keys, smtp_sink)
    yield running
    for auth in list(running.started):
        await running.stop(auth)


@dataclass
class MailReader:
    """The sandbox's HTTP side of the stack's mail sink (GET /_sandbox/mail)."""

    http: httpx.AsyncClient
    smtp: SmtpSink

    async def messages(self, to: str) -> list[dict[str, Any]]:
        reply = await self.http.get("/_sandbox/mail", params={"to": to})
        assert reply.status_code == 200, reply.text
        messages: list[dict[str, Any]] = reply.json()["messages"]
        return messages

    async def arrived(self, to: str, count: int = 1) -> list[dict[str, Any]]:
        """The mail to `to` once `count` messages arrived (fails after 10 s)."""

        async def enough() -> bool:
            return len(await self.messages(to)) >= count

        await wait_for(enough, interval=0.05, message=f"mail to {to}")
        return await self.messages(to)

    async def token(self, to: str, path: str, index: int = -1) -> str:
        """The `token` of the link to `path` in the `index`-th mail to `to`."""
        messages = await self.arrived(to, index + 1 if index >= 0 else 1)
        text = messages[index]["text"]
        match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_\-]+)", text)
        assert match, text
        return match.group(1)


@pytest.fixture
async def mail(smtp_sink: SmtpSink) -> AsyncIterator[MailReader]:
    """The sandbox app over real HTTP, reading the stack's sink."""
    app = create_app()
    app.state.mailbox = smtp_sink.mailbox
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, message="sandbox started")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield MailReader(http, smtp_sink)
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


@pytest.fixture
def start_auth(stack: AuthStack) -> Callable[..., Awaitable[Auth]]:
    return stack.start


@pytest.fixture
async def auth(stack: AuthStack) -> Auth:
    return await stack.start()


@pytest.fixture
def js(nats: Client) -> JetStreamContext:
    return nats.jetstream()


async def published(
    js: JetStreamContext, auth: Auth, event_type: str, user_id: str
) -> list[Envelope]:
    """The `event_type` events about `user_id` in the stream, once auth's outbox has
    published everything it holds (the stream is shared by the whole session)."""
    await wait_for(auth.outbox_drained, message="outbox drained")
    messages = await stream_messages(js, bus.EVENTS_STREAM, bus.event_subject(event_type))
    envelopes = [Envelope.FromString(msg.data) for msg in messages]
    return [env for env in envelopes if env.aggregate_id == user_id]
