"""GetPricing, ListProviders and GetGenerationSummary through real gRPC on a real kit Server (real
database, real nats-server), its providers pointed at the sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import insert

from kit import db
from kit.config import ServiceSettings
from kit.errors import error_details
from kit.server import Server
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from services.generation import store
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


async def add_job(
    server: Server, kind: str, status: str, created_at: datetime, provider: str = "sandbox"
) -> None:
    """A job row as the service keeps it (the summary reads only the table)."""
    async with db.session_factory(server.resources.engine)() as session, session.begin():
        await session.execute(
            insert(store.jobs).values(
                id=str(uuid.uuid4()),
                user_id="user-1",
                fingerprint="f",
                kind=kind,
                status=status,
                prompt="p",
                provider=provider,
                model="m",
                options="{}",
                estimate=1,
                cost_credits=1,
                hold_id="h",
                hold_expires_at=created_at,
                settlement="none",
                provider_job_id="",
                error_code="",
                error_message="",
                attempts=0,
                created_at=created_at,
                updated_at=created_at,
            )
        )


async def test_generation_summary_counts_jobs_per_day_and_provider_errors(
    generation: Running, sandbox: SandboxServer
) -> None:
    stub, admin = generation.stub, generation.authority.user("admin-1", "admin")
    now = datetime.now(UTC)
    for kind, status in [("IMAGE", "SUCCEEDED"), ("IMAGE", "FAILED"), ("TEXT", "SUCCEEDED")]:
        await add_job(generation.server, kind, status, now)
    await add_job(generation.server, "CHAT", "QUEUED", now)
    await add_job(generation.server, "CHAT", "PENDING", now)  # internal: never counted
    await add_job(generation.server, "AVATAR_VIDEO", "FAILED", now, provider="heygen")
    await add_job(generation.server, "TEXT", "CANCELLED", now - timedelta(days=2))
    await add_job(generation.server, "TEXT", "FAILED", now - timedelta(days=2))

    await sandbox.fault("500", path="/v2/")
    await stub.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=generation.authority.user("u"), timeout=5
    )  # its failures open the sandbox's circuit
    reply = await stub.GetGenerationSummary(
        generation_pb2.GetGenerationSummaryRequest(days=4), metadata=admin, timeout=5
    )
    today = now.date()
    assert [d.date for d in reply.days] == [
        (today - timedelta(days=back)).isoformat() for back in (3, 2, 1, 0)
    ]
    last, two_ago, yesterday = reply.days[-1], reply.days[1], reply.days[2]
    assert last.jobs == 5
    assert [(c.label, c.jobs) for c in last.by_status] == [
        ("QUEUED", 1),
        ("RUNNING", 0),
        ("SUCCEEDED", 2),
        ("FAILED", 2),
        ("CANCELLED", 0),
    ]
    assert {c.label: c.jobs for c in last.by_kind} == {
        "TEXT": 1,
        "CHAT": 1,
        "IMAGE": 2,
        "AVATAR_VIDEO": 1,
        "IMAGE_TO_VIDEO": 0,
    }
    assert {c.label: c.jobs for c in two_ago.by_status if c.jobs} == {"CANCELLED": 1, "FAILED": 1}
    assert (yesterday.jobs, {c.jobs for c in yesterday.by_kind}) == (0, {0})
    health = {p.provider: p for p in reply.providers}
    sandboxed = health["sandbox"]
    assert (sandboxed.circuit_state, sandboxed.jobs, sandboxed.failed) == ("open", 3, 1)
    assert abs(sandboxed.error_rate - 1 / 3) < 1e-9
    # heygen is not configured here: its recent jobs show, without a circuit.
    assert (health["heygen"].circuit_state, health["heygen"].error_rate) == ("", 1.0)

    for role in ("user", "moderator"):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.GetGenerationSummary(
                generation_pb2.GetGenerationSummaryRequest(),
                metadata=generation.authority.user("u", role),
                timeout=5,
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetGenerationSummary(
            generation_pb2.GetGenerationSummaryRequest(days=367), metadata=admin, timeout=5
        )
    details = error_details(bad.value.trailing_metadata())
    assert (bad.value.code(), details and details.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DAYS",
    )
