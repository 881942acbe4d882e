"""The service lifecycle and the interceptor, through real gRPC against a server built
by the kit on a real database and nats-server."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from kit import errors, rpc
from kit.config import ServiceSettings
from kit.logs import JsonFormatter
from kit.server import LIVENESS, Server, ServiceParts
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth.service import SPEC as AUTH_SPEC
from tests.helpers import wait_for

SECRET = "password=hunter2 SELECT * FROM users"


class ProbeAuth(auth_pb2_grpc.AuthServiceServicer):
    """An AuthService whose RPCs exercise the kit: GetMe blocks until released,
    Login raises a domain error, Logout an unexpected one."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def GetMe(self, request: Any, context: Any) -> auth_pb2.GetMeResponse:
        self.started.set()
        await self.release.wait()
        return auth_pb2.GetMeResponse(user=auth_pb2.User(id="slow"))

    async def Login(self, request: Any, context: Any) -> auth_pb2.LoginResponse:
        raise errors.FailedPrecondition(
            "INSUFFICIENT_CREDITS",
            "need 5 credits, 3 available",
            details={"required": 5, "available": 3},
        )

    async def Logout(self, request: Any, context: Any) -> auth_pb2.LogoutResponse:
        logging.getLogger("probe").info("about to fail")
        raise RuntimeError(SECRET)

    async def Refresh(self, request: Any, context: Any) -> auth_pb2.RefreshResponse:
        raise errors.ResourceExhausted("TOO_MANY_ATTEMPTS", "slow down", retry_after_seconds=2.5)


@dataclasses.dataclass
class Running:
    server: Server
    channel: grpc.aio.Channel
    servicer: ProbeAuth

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.channel)

    async def health(self, service: str = "") -> str:
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def settings(database_url: str, nats_url: str, grace: float = 5.0) -> ServiceSettings:
    return dataclasses.replace(
        ServiceSettings.from_env("auth", env={}),
        port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
        grace_seconds=grace,
    )


@pytest.fixture
async def start(
    database_url: str, nats_url: str
) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start the auth service's spec with ProbeAuth in place of its servicer."""
    running: list[Running] = []

    async def _start(grace: float = 5.0, ready: bool = True, bus: str = nats_url) -> Running:
        servicer = ProbeAuth()

        def register(server: grpc.aio.Server) -> Sequence[str]:
            auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
            return ("klik.auth.v1.AuthService",)

        spec = dataclasses.replace(AUTH_SPEC, build=lambda resources: ServiceParts(register))
        server = Server(spec, settings(database_url, bus, grace))
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        if ready:
            await asyncio.wait_for(server.ready.wait(), 30)
        running.append(Running(server, channel, servicer))
        return running[-1]

    yield _start
    for item in running:
        item.servicer.release.set()
        await item.server.shutdown()
        await item.channel.close()


def reason_of(error: grpc.aio.AioRpcError) -> errors.ErrorDetails | None:
    return errors.error_details(error.trailing_metadata())


async def test_health_is_serving_for_every_name_once_ready(start: Any) -> None:
    running: Running = await start()
    assert await running.health() == "SERVING"
    assert await running.health("klik.auth.v1.AuthService") == "SERVING"


async def test_calls_are_refused_until_dependencies_are_ready(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Auth's options come from the environment here; it needs a KEK (services/auth/kek.py).
    monkeypatch.setenv("KLIK_AUTH_KEK", base64.b64encode(bytes(32)).decode())
    # A bus that never answers: the server binds, says NOT_SERVING, refuses work.
    server = Server(AUTH_SPEC, settings(database_url, "nats://127.0.0.1:1"))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            alive = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=LIVENESS), timeout=2
            )
            assert alive.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await auth_pb2_grpc.AuthServiceStub(channel).GetMe(
                    auth_pb2.GetMeRequest(), timeout=2
                )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not server.ready.is_set()
    finally:
        await server.shutdown()


async def test_domain_error_reaches_the_client_with_code_reason_and_details(
    start: Any,
) -> None:
    running: Running = await start()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await running.auth.Login(
            auth_pb2.LoginRequest(), metadata=(("x-request-id", "req-123"),), timeout=5
        )
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failed.value.details() == "need 5 credits, 3 available"
    details = reason_of(failed.value)
    assert details is not None
    assert details.reason == "INSUFFICIENT_CREDITS"
    assert details.metadata == {"required": "5", "available": "3"}
    assert ("x-request-id", "req-123") in tuple(failed.value.trailing_metadata() or ())


async def test_nul_in_request_text_is_invalid_argument_before_the_handler(start: Any) -> None:
    running: Running = await start()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        # Login would answer FAILED_PRECONDITION: INVALID_ARGUMENT proves it never ran.
        await running.auth.Login(auth_pb2.LoginRequest(email="a\x00@b.c"), timeout=5)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = reason_of(failed.value)
    assert details is not None
    assert details.reason == "INVALID_CHARACTERS"
    assert details.metadata == {"field": "email"}


async def test_retry_delay_travels_with_resource_exhausted(start: Any) -> None:
    running: Running = await start()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await running.auth.Refresh(auth_pb2.RefreshRequest(), timeout=5)
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = reason_of(failed.value)
    assert details is not None
    assert details.reason == "TOO_MANY_ATTEMPTS"
    assert details.retry_after_seconds == 2.5


async def test_unexpected_exception_is_internal_without_its_text(start: Any) -> None:
    running: Running = await start()
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter("auth"))
    logging.getLogger().addHandler(handler)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await running.auth.Logout(
                auth_pb2.LogoutRequest(), metadata=(("x-request-id", "req-boom"),), timeout=5
            )
    finally:
        logging.getLogger().removeHandler(handler)
    error = failed.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == errors.INTERNAL_MESSAGE
    wire = repr(error.trailing_metadata()) + repr(error.initial_metadata()) + str(error.details())
    assert "hunter2" not in wire and "SELECT" not in wire
    details = reason_of(error)
    assert details is not None and details.reason == "INTERNAL"
    # The server keeps the whole story, tagged with the request id, on every line.
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert {line["request_id"] for line in lines} == {"req-boom"}
    assert any("hunter2" in line.get("exception", "") for line in lines)


async def test_a_request_id_is_made_when_the_caller_sends_none(start: Any) -> None:
    running: Running = await start()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await running.auth.Login(auth_pb2.LoginRequest(), timeout=5)
    ids = [v for k, v in failed.value.trailing_metadata() or () if k == "x-request-id"]
    assert len(ids) == 1 and len(ids[0]) == 32


async def test_rpcs_not_built_yet_answer_unimplemented(database_url: str, nats_url: str) -> None:
    def register(server: grpc.aio.Server) -> Sequence[str]:
        # The generated base servicer: every RPC is one "not built yet".
        auth_pb2_grpc.add_AuthServiceServicer_to_server(auth_pb2_grpc.AuthServiceServicer(), server)
        return ("klik.auth.v1.AuthService",)

    spec = dataclasses.replace(AUTH_SPEC, build=lambda resources: ServiceParts(register))
    server = Server(spec, settings(database_url, nats_url))
    await server.start()
    try:
        await asyncio.wait_for(server.ready.wait(), 30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await auth_pb2_grpc.AuthServiceStub(channel).GetJwks(
                    auth_pb2.GetJwksRequest(), timeout=5
                )
        assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.shutdown()


async def test_drain_finishes_in_flight_calls_refuses_new_ones_and_says_not_serving(
    start: Any,
) -> None:
    running: Running = await start(grace=30)
    slow = asyncio.ensure_future(running.auth.GetMe(auth_pb2.GetMeRequest(), timeout=30))
    await asyncio.wait_for(running.servicer.started.wait(), 10)
    draining = asyncio.create_task(running.server.shutdown())

    await wait_for(lambda: running.health(), message="health answers during drain")
    assert await running.health() == "NOT_SERVING"
    assert await running.health("klik.auth.v1.AuthService") == "NOT_SERVING"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.auth.GetMe(auth_pb2.GetMeRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not draining.done(), "drain must wait for the call in flight"

    running.servicer.release.set()
    reply = await asyncio.wait_for(slow, 10)
    assert reply.user.id == "slow"
    await asyncio.wait_for(draining, 10)
    assert running.server.gate.in_flight == 0


async def test_drain_gives_up_on_calls_that_outlive_the_grace_period(start: Any) -> None:
    running: Running = await start(grace=0.5)
    slow = asyncio.ensure_future(running.auth.GetMe(auth_pb2.GetMeRequest(), timeout=30))
    await asyncio.wait_for(running.servicer.started.wait(), 10)
    await asyncio.wait_for(running.server.shutdown(), 10)
    with pytest.raises(grpc.aio.AioRpcError) as cut:
        await asyncio.wait_for(slow, 10)
    assert cut.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)


async def test_clients_retry_a_refusing_replica_on_a_serving_one(start: Any) -> None:
    # One replica stuck starting (its bus never answers) refuses every call with
    # UNAVAILABLE; a kit channel over both replicas must still reach the other.
    stuck: Running = await start(ready=False, bus="nats://127.0.0.1:1")
    serving: Running = await start()
    channel = rpc.channel(f"127.0.0.1:{stuck.server.port},127.0.0.1:{serving.server.port}")
    try:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for _ in range(6):
            with pytest.raises(grpc.aio.AioRpcError) as answered:
                await stub.Login(auth_pb2.LoginRequest(), timeout=5)
            # The serving replica's domain error, never the stuck one's refusal.
            assert answered.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await channel.close()


async def test_reflection_lists_the_service_and_health(start: Any) -> None:
    running: Running = await start()

    def list_services() -> list[str]:
        # The reflection client is synchronous: run it off the loop the server uses.
        with grpc.insecure_channel(f"127.0.0.1:{running.server.port}") as channel:
            return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())

    services = await asyncio.to_thread(list_services)
    assert "klik.auth.v1.AuthService" in services
    assert "grpc.health.v1.Health" in services
