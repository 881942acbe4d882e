"""The places Workers.reserve holds for jobs started as they are queued: taken only
while a claim loop is idle, never past the per-user cap, the per-provider limit or
the replica's in-flight bound, and given back by `unreserve`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from services.generation.domain import Job, Kind, Options, Status
from services.generation.queue import JobQueue
from services.generation.settings import JobSettings
from services.generation.worker import Workers

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def job(user: str, provider: str = "sandbox") -> Job:
    return Job(
        id=f"job-{user}",
        seq=0,
        user_id=user,
        kind=Kind.TEXT,
        status=Status.PENDING,
        prompt="p",
        provider=provider,
        model="m",
        options=Options(),
        estimate=1,
        cost_credits=1,
        hold_id="",
        hold_expires_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


class NoJobs:
    """Nothing here reads or writes a job: only the places are counted."""

    async def save_partial_texts(self, texts: object) -> None:
        raise AssertionError("not used")


def workers(**settings: Any) -> Workers:
    queue = JobQueue(None, 30.0)  # type: ignore[arg-type]  # no claim is made here
    return Workers(
        NoJobs(),  # type: ignore[arg-type]
        queue,
        None,  # type: ignore[arg-type]
        replace(JobSettings(), **settings),
        None,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def idle_loop(w: Workers) -> AsyncIterator[None]:
    waiting = asyncio.create_task(w.queue.wait(60))
    await asyncio.sleep(0)  # let it reach its wait (an await of the loop, not a delay)
    try:
        yield
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)


async def test_no_place_without_an_idle_claim_loop() -> None:
    w = workers()
    assert w.reserve(job("ann")) is None
    async with idle_loop(w):
        assert w.reserve(job("ann")) is not None
        w.queue.ring()  # a job was queued: the idle loop is about to claim it
        assert w.reserve(job("bob")) is None


async def test_places_keep_to_the_per_user_cap_and_are_given_back() -> None:
    w = workers(per_user=2)
    async with idle_loop(w):
        owners = [w.reserve(job("ann")) for _ in range(3)]
        assert owners[0] and owners[1] and owners[0] != owners[1]
        assert owners[2] is None, "a third place for the same user"
        assert w.reserve(job("bob")) is not None
        w.unreserve(job("ann"))
        assert w.reserve(job("ann")) is not None


async def test_places_keep_to_the_provider_limit_and_the_replica_bound() -> None:
    w = workers(provider_in_flight={"slow": 1}, max_in_flight=3)
    async with idle_loop(w):
        assert w.reserve(job("ann", "slow")) is not None
        assert w.reserve(job("bob", "slow")) is None
        assert w.reserve(job("bob")) is not None
        assert w.reserve(job("cat")) is not None
        assert w.reserve(job("dan")) is None, "the replica is full"
