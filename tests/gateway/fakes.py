"""Small fake Auth, Wallet and Content services on a real kit server (real database
and nats-server), and a gateway in front of them on real sockets: the fixtures of the
gateway's end-to-end tests (registered in conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.app import create_app
from gateway.contracts import EVENT_FILES, PUBLIC_SERVICES
from gateway.server import GatewayServer, server_config
from gateway.settings import GatewaySettings
from kit import errors
from kit.config import ServiceSettings
from kit.server import Server, ServiceParts, ServiceSpec
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from klik.content.v1 import content_pb2, content_pb2_grpc
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from services.auth.service import SPEC as AUTH_SPEC
from tests.gateway.test_gateway_routes import assert_error_shape
from tests.helpers import free_port, wait_for
from tests.tokens import TokenAuthority

SECRET = "password=hunter2 SELECT * FROM users"
Seen = dict[str, tuple[Any, dict[str, str]]]


def remember(seen: Seen, name: str, request: Message, context: Any) -> None:
    metadata = {key: value for key, value in context.invocation_metadata() or ()}
    seen[name] = (request, metadata)


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.release = asyncio.Event()
        self.authority = TokenAuthority()

    async def GetJwks(self, request: Any, context: Any) -> auth_pb2.GetJwksResponse:
        return self.authority.jwks()

    async def Login(self, request: Any, context: Any) -> auth_pb2.LoginResponse:
        remember(self.seen, "Login", request, context)
        user = auth_pb2.User(id="u-1", email=request.email, role="user")
        user.created_at.FromJsonString("2024-01-02T03:04:05Z")
        return auth_pb2.LoginResponse(
            access_token="at", token_type="Bearer", expires_in=900, user=user
        )

    async def Register(self, request: Any, context: Any) -> auth_pb2.RegisterResponse:
        remember(self.seen, "Register", request, context)
        return auth_pb2.RegisterResponse(
            user=auth_pb2.User(id="u-2", email=request.email, display_name=request.display_name)
        )

    async def SetRole(self, request: Any, context: Any) -> auth_pb2.SetRoleResponse:
        remember(self.seen, "SetRole", request, context)
        return auth_pb2.SetRoleResponse(user=auth_pb2.User(id=request.user_id, role=request.role))

    async def ListUsers(self, request: Any, context: Any) -> auth_pb2.ListUsersResponse:
        remember(self.seen, "ListUsers", request, context)
        return auth_pb2.ListUsersResponse(users=[auth_pb2.User(id="a"), auth_pb2.User(id="b")])

    async def DeleteUser(self, request: Any, context: Any) -> auth_pb2.DeleteUserResponse:
        raise errors.NotFound("USER_NOT_FOUND", f"no user {request.user_id}")

    async def GetMe(self, request: Any, context: Any) -> auth_pb2.GetMeResponse:
        await self.release.wait()  # outlives any gateway deadline in these tests
        return auth_pb2.GetMeResponse()

    async def Refresh(self, request: Any, context: Any) -> auth_pb2.RefreshResponse:
        raise errors.ResourceExhausted("TOO_MANY_ATTEMPTS", "slow down", retry_after_seconds=2.5)

    async def ChangePassword(self, request: Any, context: Any) -> auth_pb2.ChangePasswordResponse:
        raise RuntimeError(SECRET)


class FakeWallet(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetWallet(self, request: Any, context: Any) -> wallet_pb2.GetWalletResponse:
        remember(self.seen, "GetWallet", request, context)
        wallet = wallet_pb2.Wallet(
            user_id="u-1",
            balance=100,
            held=30,
            available=70,
            buckets=wallet_pb2.CreditBuckets(allowance=40, bonus=60),
            next_expiry=wallet_pb2.CreditExpiry(
                amount=10, expires_at=Timestamp(seconds=1_900_000_000)
            ),
        )
        return wallet_pb2.GetWalletResponse(wallet=wallet)

    async def Transfer(self, request: Any, context: Any) -> wallet_pb2.TransferResponse:
        remember(self.seen, "Transfer", request, context)
        raise errors.FailedPrecondition(
            "INSUFFICIENT_CREDITS",
            "need 5 credits, 3 available",
            details={"required": 5, "available": 3, "wallet": "w-1"},
        )

    async def GrantCredits(self, request: Any, context: Any) -> wallet_pb2.GrantCreditsResponse:
        remember(self.seen, "GrantCredits", request, context)
        row = wallet_pb2.Transaction(
            id="t-1", kind="grant", amount=request.amount, balance_after=request.amount
        )
        return wallet_pb2.GrantCreditsResponse(transaction=row)


class FakeContent(content_pb2_grpc.ContentServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def UpdatePost(self, request: Any, context: Any) -> content_pb2.UpdatePostResponse:
        remember(self.seen, "UpdatePost", request, context)
        post = content_pb2.Post(id=request.post_id, title=request.post.title, status="draft")
        return content_pb2.UpdatePostResponse(post=post)


@dataclasses.dataclass
class Upstream:
    server: Server
    seen: Seen
    auth: FakeAuth


@pytest.fixture
async def upstream(database_url: str, nats_url: str) -> AsyncIterator[Upstream]:
    seen: Seen = {}
    auth = FakeAuth(seen)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
        wallet_pb2_grpc.add_WalletServiceServicer_to_server(FakeWallet(seen), server)
        content_pb2_grpc.add_ContentServiceServicer_to_server(FakeContent(seen), server)
        return (
            "klik.auth.v1.AuthService",
            "klik.wallet.v1.WalletService",
            "klik.content.v1.ContentService",
        )

    settings = dataclasses.replace(
        ServiceSettings.from_env("auth", env={}),
        port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
        grace_seconds=2.0,
    )
    server = Server(
        ServiceSpec("fakes", lambda resources: ServiceParts(register), AUTH_SPEC.migrations),
        settings,
    )
    await server.start()
    await asyncio.wait_for(server.ready.wait(), 30)
    yield Upstream(server, seen, auth)
    auth.release.set()
    await server.shutdown()


StartGateway = Callable[..., Awaitable[httpx.AsyncClient]]
USER_ID = "u-1"
# The server behind each client start_gateway returned (to stop one mid-test).
SERVERS: dict[httpx.AsyncClient, tuple[GatewayServer, asyncio.Task[None]]] = {}


@pytest.fixture
async def start_gateway(upstream: Upstream, nats_url: str) -> AsyncIterator[StartGateway]:
    """Start a gateway in front of the fakes (generation: nothing listens there);
    keyword arguments override its environment, `services` and `events` the contracts
    it serves (create_app's). Its client signs in as USER_ID."""
    running: list[tuple[GatewayServer, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(
        *,
        services: Mapping[str, Sequence[ServiceDescriptor]] = PUBLIC_SERVICES,
        events: Sequence[FileDescriptor] = EVENT_FILES,
        **overrides: str,
    ) -> httpx.AsyncClient:
        address = f"127.0.0.1:{upstream.server.port}"
        env = {
            "KLIK_AUTH_ADDR": address,
            "KLIK_WALLET_ADDR": address,
            "KLIK_CONTENT_ADDR": address,
            "KLIK_GENERATION_ADDR": f"127.0.0.1:{free_port()}",
            "KLIK_NATS_URL": nats_url,
            "KLIK_GATEWAY_TIMEOUT_SECONDS": "1",
            **overrides,
        }
        port = free_port()
        settings = GatewaySettings.from_env(env)
        app = create_app(settings, services, events=events)
        server = GatewayServer(server_config(app, settings, port=port), app)
        task = asyncio.create_task(server.serve())
        await wait_for(lambda: server.started, message="gateway started")
        token = upstream.auth.authority.access_token(USER_ID, role="admin")
        client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        running.append((server, task, client))
        SERVERS[client] = (server, task)
        return client

    yield start
    for server, task, client in running:
        SERVERS.pop(client, None)
        await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> httpx.AsyncClient:
    return await start_gateway()


async def wait_slot_free(
    client: httpx.AsyncClient, path: str, headers: Mapping[str, str] | None = None
) -> None:
    """Wait until a stream of `path` is no longer refused with 429 (a client left and
    the gateway noticed)."""

    async def slot_free() -> bool:
        async with client.stream("GET", path, headers=headers) as reply:
            assert reply.status_code in (200, 429)
            return reply.status_code == 200

    await wait_for(slot_free, message="stream slot freed")


async def lines_until_heartbeats(lines: AsyncIterator[str], count: int = 2) -> list[str]:
    """A stream's lines up to its `count`th heartbeat comment (within 10 s)."""
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for line in lines:
            seen.append(line)
            if seen.count(": keep-alive") >= count:
                break
    return seen


def error_of(reply: httpx.Response, code: str, status: str) -> dict[str, Any]:
    body = reply.json()
    assert_error_shape(body, code, status)
    assert body["error"]["request_id"] == reply.headers["x-request-id"]
    error: dict[str, Any] = body["error"]
    return error


class FakeStreams:
    """The streaming RPCs of the test contract's RouteTest (tests/gateway/protos/
    test_routes.proto), on a plain grpc.aio server. WatchThing behaves by thing id:
    `t-1` sends three events and ends; `missing` fails before its first message;
    `flaky` fails after one; `idle` sends initial metadata and then nothing (until
    `release` is set); `silent` sends nothing at all; `resume` echoes last_event_id."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls: list[Any] = []
        self.metadata: list[dict[str, str]] = []
        self.cancelled: list[str] = []  # thing ids of calls whose client went away
        self.release = asyncio.Event()

    async def watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.calls.append(request)
        self.metadata.append(dict(context.invocation_metadata() or ()))
        events = self.module.ThingEvent
        try:
            if request.thing_id == "t-1":
                thing = self.module.Thing(id="t-1", name="one", size=7)
                yield events(event_id="e-1", thing=thing, hint="h")
                yield events(event_id="e-2", note="hello")
                yield events(count=9007199254740993)
                yield events(event_id="e-4")  # no oneof field set: not sent
                yield events(event_id="e-5", label=self.module.Label(text="done"))
            elif request.thing_id == "missing":
                missing = errors.NotFound("THING_NOT_FOUND", "no thing missing")
                await context.abort_with_status(errors.domain_status(missing))
            elif request.thing_id == "flaky":
                yield events(event_id="e-1", note="first")
                refusal = errors.FailedPrecondition(
                    "THING_MELTED", "the thing melted", details={"at": 1}
                )
                await context.abort_with_status(errors.domain_status(refusal))
            elif request.thing_id == "idle":
                await context.send_initial_metadata((("klik-stream", "open"),))
                await self.release.wait()
            elif request.thing_id == "silent":
                await self.release.wait()
            elif request.thing_id == "resume":
                yield events(event_id="r-2", note=f"after {request.last_event_id}")
        except asyncio.CancelledError:
            self.cancelled.append(request.thing_id)
            raise

    async def stream_things(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.calls.append(request)
        for index in range(2):
            yield self.module.Thing(id=f"{request.thing_id}-{index}", name=request.reason)


@dataclasses.dataclass
class StreamUpstream:
    address: str
    fake: FakeStreams


@pytest.fixture
async def stream_upstream(contract: Any) -> AsyncIterator[StreamUpstream]:
    """A gRPC server of the test contract's streaming RPCs; its address."""
    module = contract.module
    fake = FakeStreams(module)
    methods = {
        "WatchThing": grpc.unary_stream_rpc_method_handler(
            fake.watch,
            request_deserializer=module.WatchThingRequest.FromString,
            response_serializer=module.ThingEvent.SerializeToString,
        ),
        "StreamThings": grpc.unary_stream_rpc_method_handler(
            fake.stream_things,
            request_deserializer=module.ArchiveThingRequest.FromString,
            response_serializer=module.Thing.SerializeToString,
        ),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("gatewaytest.v1.RouteTest", methods),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield StreamUpstream(f"127.0.0.1:{port}", fake)
    fake.release.set()
    await server.stop(None)
