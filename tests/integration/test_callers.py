"""Caller authentication through real gRPC: a service fetches the JWKS from auth over
gRPC, admits users by role, and keeps internal RPCs for service identities."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit import rpc
from kit.config import ServiceSettings
from kit.errors import error_details
from kit.identity import generate_keys, load_identity
from kit.server import Resources, Server, ServiceParts
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth.service import SPEC as AUTH_SPEC
from tests.helpers import free_port

SIGNING_KEY = Ed25519PrivateKey.generate()


def access_token(role: str = "user", subject: str = "user-1") -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "iss": "klik-auth",
            "aud": "klik",
            "sub": subject,
            "role": role,
            "iat": now,
            "exp": now + 900,
            "jti": uuid.uuid4().hex,
        },
        SIGNING_KEY,
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )


class GuardedAuth(auth_pb2_grpc.AuthServiceServicer):
    """Publishes the JWKS; GetMe needs a user, ListUsers an admin, SetRole stands in
    for an internal RPC that only the generation service may call."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def GetJwks(self, request: Any, context: Any) -> auth_pb2.GetJwksResponse:
        jwk = OKPAlgorithm.to_jwk(SIGNING_KEY.public_key(), as_dict=True)
        return auth_pb2.GetJwksResponse(
            keys=[
                auth_pb2.Jwk(kid="k1", alg="EdDSA", use="sig", kty="OKP", crv="Ed25519", x=jwk["x"])
            ]
        )

    async def GetMe(self, request: Any, context: Any) -> auth_pb2.GetMeResponse:
        caller = await self.resources.callers.user(context)
        return auth_pb2.GetMeResponse(user=auth_pb2.User(id=caller.user_id, role=caller.role))

    async def ListUsers(self, request: Any, context: Any) -> auth_pb2.ListUsersResponse:
        await self.resources.callers.user(context, "admin")
        return auth_pb2.ListUsersResponse()

    async def SetRole(self, request: Any, context: Any) -> auth_pb2.SetRoleResponse:
        caller = await self.resources.callers.service(context, "generation")
        return auth_pb2.SetRoleResponse(user=auth_pb2.User(id=caller.subject))


@pytest.fixture
async def server(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Server, Path]]:
    keys = tmp_path / "keys"
    generate_keys(keys, ["auth", "generation", "content"])
    port = free_port()

    def build(resources: Resources) -> ServiceParts:
        def register(server: grpc.aio.Server) -> Sequence[str]:
            auth_pb2_grpc.add_AuthServiceServicer_to_server(GuardedAuth(resources), server)
            return ("klik.auth.v1.AuthService",)

        return ServiceParts(register)

    env = {"KLIK_AUTH_PORT": str(port), "KLIK_SERVICE_KEYS_DIR": str(keys)}
    settings = dataclasses.replace(
        ServiceSettings.from_env("auth", env=env),
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
    )
    running = Server(dataclasses.replace(AUTH_SPEC, build=build), settings)
    await running.start()
    await asyncio.wait_for(running.ready.wait(), 30)
    yield running, keys
    await running.shutdown()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def failure(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    details = error_details(error.value.trailing_metadata())
    return error.value.code(), details.reason if details else ""


async def test_users_and_roles(server: tuple[Server, Path]) -> None:
    running, _ = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        me = await stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(access_token()), timeout=5)
        assert (me.user.id, me.user.role) == ("user-1", "user")
        assert await failure(stub.GetMe(auth_pb2.GetMeRequest(), timeout=5)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )
        for role in ("user", "premium", "moderator"):
            assert await failure(
                stub.ListUsers(
                    auth_pb2.ListUsersRequest(), metadata=bearer(access_token(role)), timeout=5
                )
            ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
        await stub.ListUsers(
            auth_pb2.ListUsersRequest(), metadata=bearer(access_token("admin")), timeout=5
        )


async def test_internal_rpcs_take_service_identities_only(server: tuple[Server, Path]) -> None:
    running, keys = server
    target = f"127.0.0.1:{running.port}"
    generation = load_identity(keys, "generation")
    content = load_identity(keys, "content")
    assert generation is not None and content is not None

    async with rpc.channel(target, bearer=lambda: generation.token("auth")) as channel:
        reply = await auth_pb2_grpc.AuthServiceStub(channel).SetRole(auth_pb2.SetRoleRequest())
        assert reply.user.id == "service:generation"
    async with rpc.channel(target, bearer=lambda: content.token("auth")) as channel:
        assert await failure(
            auth_pb2_grpc.AuthServiceStub(channel).SetRole(auth_pb2.SetRoleRequest())
        ) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "SERVICE_IDENTITY_REQUIRED",
        )
    async with grpc.aio.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        admin = bearer(access_token("admin"))
        assert await failure(
            stub.SetRole(auth_pb2.SetRoleRequest(), metadata=admin, timeout=5)
        ) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "SERVICE_IDENTITY_REQUIRED",
        )
        # A service token meant for another service is refused.
        elsewhere = bearer(generation.token("wallet"))
        assert await failure(
            stub.SetRole(auth_pb2.SetRoleRequest(), metadata=elsewhere, timeout=5)
        ) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_TOKEN",
        )
        # And a service identity is no end user.
        as_user = bearer(generation.token("auth"))
        assert await failure(stub.GetMe(auth_pb2.GetMeRequest(), metadata=as_user, timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "USER_TOKEN_REQUIRED",
        )


async def test_revoked_users_are_refused_at_once(server: tuple[Server, Path]) -> None:
    running, _ = server
    token = access_token(subject="doomed")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(token), timeout=5)
        running.resources.callers.revoke("doomed")
        assert await failure(
            stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(token), timeout=5)
        ) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_TOKEN",
        )
