"""GetPricing and ListProviders through real gRPC on a real kit Server (real
database, real nats-server), its providers pointed at the sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from kit.config import ServiceSettings
from kit.errors import error_details
from kit.server import Server
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from services.generation.providers.registry import Providers
from services.generation.service import make_spec
from services.generation.settings import GenerationSettings, catalogue_from_env
from tests.generation.conftest import POLICY, FakeClock, SandboxServer
from tests.tokens import TokenAuthority


@dataclass
class Running:
    server: Server
    stub: generation_pb2_grpc.GenerationServiceStub
    authority: TokenAuthority
    providers: Providers


@pytest.fixture
async def generation(
    database_url: str, nats_url: str, sandbox: SandboxServer, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Running]:
    authority = TokenAuthority()
    async with authority.serve() as jwks:
        env = {"KLIK_AUTH_PORT": str(jwks.port), "KLIK_SERVICE_KEYS_DIR": str(tmp_path)}
        settings = dataclasses.replace(
            ServiceSettings.from_env("generation", env=env),
            port=0,
            metrics_port=0,
            database_url=database_url,
            nats_url=nats_url,
        )
        own = GenerationSettings(
            catalogue_from_env({"KLIK_SANDBOX_URL": sandbox.url}), policy=POLICY
        )
        providers = Providers(own.catalogue, own.policy, clock=clock)
        server = Server(make_spec(own, providers), settings)
        await server.start()
        await asyncio.wait_for(server.ready.wait(), 30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Running(
                server, generation_pb2_grpc.GenerationServiceStub(channel), authority, providers
            )
        await server.shutdown()


async def failure(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    details = error_details(error.value.trailing_metadata())
    return error.value.code(), details.reason if details else ""


async def test_get_pricing_is_public(generation: Running) -> None:
    reply = await generation.stub.GetPricing(generation_pb2.GetPricingRequest(), timeout=5)
    prices = [
        (p.kind, p.model, p.unit, p.credits_per_unit, p.minimum_credits) for p in reply.prices
    ]
    assert prices == [
        ("TEXT", "", "million_tokens", 1000, 1),
        ("TEXT", "default-chat", "million_tokens", 1000, 1),
        ("CHAT", "", "million_tokens", 1000, 1),
        ("CHAT", "default-chat", "million_tokens", 1000, 1),
        ("IMAGE", "", "image", 5, 5),
        ("AVATAR_VIDEO", "", "second", 1, 1),
        ("IMAGE_TO_VIDEO", "", "clip", 20, 20),
    ]


async def test_list_providers_needs_a_signed_in_user(generation: Running) -> None:
    assert await failure(
        generation.stub.ListProviders(generation_pb2.ListProvidersRequest(), timeout=5)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_list_providers_shows_the_sandbox_with_its_catalogue(
    generation: Running, sandbox: SandboxServer
) -> None:
    reply = await generation.stub.ListProviders(
        generation_pb2.ListProvidersRequest(),
        metadata=generation.authority.user("user-1"),
        timeout=5,
    )
    provider, messages = reply.providers
    assert (provider.name, provider.sandbox, provider.circuit_state) == ("sandbox", True, "closed")
    assert (messages.name, messages.sandbox, list(messages.kinds)) == (
        "sandbox-anthropic",
        True,
        ["TEXT", "CHAT"],
    )
    [alias] = reply.aliases
    assert (alias.name, list(alias.kinds), list(alias.models)) == (
        "default-chat",
        ["TEXT", "CHAT"],
        ["sandbox/sandbox-text", "sandbox-anthropic/sandbox-text"],
    )
    assert alias.credits_per_million_tokens == 1000
    assert list(provider.kinds) == ["TEXT", "CHAT", "IMAGE", "AVATAR_VIDEO", "IMAGE_TO_VIDEO"]
    assert [
        (m.id, list(m.kinds), m.credits_per_million_tokens, m.is_default) for m in provider.models
    ] == [
        ("sandbox-text", ["TEXT", "CHAT"], 1000, True),
        ("sandbox-image", ["IMAGE"], 0, True),
        ("sandbox-avatar", ["AVATAR_VIDEO"], 0, True),
        ("sandbox-motion", ["IMAGE_TO_VIDEO"], 0, True),
    ]
    assert [(a.id, a.name) for a in provider.avatars] == [
        ("sandbox-avatar-ada", "Ada (sandbox)"),
        ("sandbox-avatar-ben", "Ben (sandbox)"),
    ]
    assert all(a.preview_url.startswith(sandbox.url + "/files/images/") for a in provider.avatars)
    assert [(v.id, v.language) for v in provider.voices] == [
        ("sandbox-voice-en-1", "English"),
        ("sandbox-voice-en-2", "English"),
    ]


async def test_list_providers_shows_the_circuit_open_then_recovered(
    generation: Running, sandbox: SandboxServer, clock: FakeClock
) -> None:
    user = generation.authority.user("user-1")
    await sandbox.fault("500", path="/v2/")
    reply = await generation.stub.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=user, timeout=5
    )
    provider = reply.providers[0]
    assert provider.circuit_state == "open", "the listing's three failures opened it"
    assert (list(provider.avatars), list(provider.voices)) == ([], [])
    assert provider.models, "the rest of the catalogue is still shown"
    assert await sandbox.count("/v2/") == 3

    again = await generation.stub.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=user, timeout=5
    )
    assert again.providers[0].circuit_state == "open"
    assert await sandbox.count("/v2/") == 3, "open: the sandbox is not asked"

    await sandbox.clear_faults()
    clock.advance(30)
    assert generation.providers.circuit_state("sandbox") == "half_open"
    recovered = await generation.stub.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=user, timeout=5
    )
    assert recovered.providers[0].circuit_state == "closed"
    assert len(recovered.providers[0].avatars) == 2


async def test_draining_closes_the_providers_http_client(generation: Running) -> None:
    assert not generation.providers.closed
    await generation.server.shutdown()
    assert generation.providers.closed
