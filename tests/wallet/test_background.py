"""The kit's hook for a service's background jobs (`ServiceParts.background`), which
runs the wallet's sweeper: started only once the service is ready, cancelled when it
drains."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from kit.config import ServiceSettings
from kit.server import Resources, Server, ServiceParts, ServiceSpec
from services.wallet.service import make_spec
from tests.helpers import wait_for


async def test_background_jobs_run_while_serving_and_stop_on_drain(
    database_url: str, nats_url: str
) -> None:
    events: list[str] = []

    async def job(name: str) -> None:
        events.append(f"{name} started")
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            events.append(f"{name} cancelled")
            raise

    def background(resources: Resources) -> Sequence[Coroutine[Any, Any, None]]:
        # Called only once the service is ready: the database and bus are there.
        assert resources.js is not None and resources.relay is not None
        return (job("one"), job("two"))

    spec = with_background(background)
    settings = dataclasses.replace(
        ServiceSettings.from_env("wallet", env={}),
        port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
        grace_seconds=2.0,
    )
    server = Server(spec, settings)
    await server.start()
    try:
        await asyncio.wait_for(server.ready.wait(), 30)
        await wait_for(lambda: len(events) == 2, 5, message="both jobs started")
        assert sorted(events) == ["one started", "two started"]
    finally:
        await server.shutdown()
    assert sorted(events) == ["one cancelled", "one started", "two cancelled", "two started"]


async def test_no_background_jobs_start_before_the_service_is_ready(database_url: str) -> None:
    calls: list[Resources] = []

    def background(resources: Resources) -> Sequence[Coroutine[Any, Any, None]]:
        calls.append(resources)
        return ()

    spec = with_background(background)
    settings = dataclasses.replace(
        ServiceSettings.from_env("wallet", env={}),
        port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url="nats://127.0.0.1:1",  # never reachable: never ready
        grace_seconds=1.0,
    )
    server = Server(spec, settings)
    await server.start()
    try:
        assert not server.ready.is_set()
    finally:
        await server.shutdown()
    assert calls == []


def with_background(
    background: Callable[[Resources], Sequence[Coroutine[Any, Any, None]]],
) -> ServiceSpec:
    """The wallet's spec with `background` in place of its own loops."""
    wallet = make_spec()

    def build(resources: Resources) -> ServiceParts:
        parts = wallet.build(resources)
        return dataclasses.replace(parts, background=lambda: background(resources))

    return dataclasses.replace(wallet, build=build)
