"""Paid starts that were in flight when their worker died (issue 17, item 7): the
provider started (and bills) a job whose id was never stored. The intent stored
before the call lets the next worker look the job up on the provider by its
reference (HeyGen: the video's title and callback id; Leonardo: the account's
generations since the intent, matched by what was asked) and finish it with its
result, charged once; a job the provider does not show fails, its hold released."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit import rpc
from kit.clock import utc_now
from services.generation import store
from services.generation.domain import Job, Kind, Options, Status
from services.generation.wallet_client import Holds
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.helpers import wait_for

LEONARDO = "/api/rest/v1/generations"
LEONARDO_LIST = "/api/rest/v1/generations/user/"
HEYGEN = "/v2/video/generate"
HEYGEN_LIST = "/v1/video.list"


async def posts(stack: JobsStack, path: str) -> list[dict[str, Any]]:
    return [r for r in await stack.sandbox.requests(path) if r["method"] == "POST"]


async def stored(stack: JobsStack, job_id: str) -> Any:
    async with stack.engine.connect() as conn:
        return (await conn.execute(store.jobs.select().where(store.jobs.c.id == job_id))).one()


@pytest.mark.parametrize(
    ("kind", "start", "lookup"),
    [("IMAGE", LEONARDO, LEONARDO_LIST), ("AVATAR_VIDEO", HEYGEN, HEYGEN_LIST)],
)
async def test_a_worker_killed_while_its_start_is_in_flight_is_finished_by_the_next(
    make_jobs_stack: MakeJobsStack, kind: str, start: str, lookup: str
) -> None:
    stack = await make_jobs_stack(replicas=1, deadline=20.0)
    user_id, who = await stack.user()
    # `lost`: the sandbox starts the provider job, then never answers.
    job = await stack.create(who, kind=kind, prompt="an answer that never came [[fault:lost]]")

    async def accepted() -> bool:
        return any(r["fault"] == "lost" for r in await posts(stack, start))

    await wait_for(accepted, 10, message="the provider accepted the start")
    row = await stored(stack, job.id)
    assert row.start_requested_at is not None, "the intent is stored before the call"
    assert row.provider_job_id == "", "the answer never arrived"
    await stack.replicas[0].kill()  # the worker dies with the call in flight
    await stack.start()

    done = await stack.finished(who, job.id, within=30, replica=1)
    assert done.status == "SUCCEEDED", done.error
    assert done.result.asset_url
    assert len(await posts(stack, start)) == 1, "found again, never started again"
    assert await stack.sandbox.count(lookup) >= 1, "looked up in the provider's list"
    row = await stored(stack, job.id)
    assert row.provider_job_id, "the found provider job is stored"
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.charges(user_id) == [-done.cost_credits]


async def running_without_provider_job(
    stack: JobsStack, user_id: str, kind: Kind, *, intent: bool
) -> Job:
    """A media job as a dead worker left it: RUNNING, its hold placed, its lease
    over, no provider job id; with the intent to start stored (`intent`) or not."""
    channel = rpc.channel(
        f"127.0.0.1:{stack.wallet.servers[0].port}",
        bearer=lambda: stack.wallet.identities["generation"].token("wallet"),
    )
    now = utc_now()
    video = kind is Kind.AVATAR_VIDEO
    job = Job(
        id=f"00000000-0000-4000-8000-{(kind.value[:4] + str(int(intent))).encode().hex()[:12]}",
        seq=0,
        user_id=user_id,
        kind=kind,
        status=Status.PENDING,
        prompt="p",
        provider="sandbox",
        model="sandbox-avatar" if video else "sandbox-image",
        options=Options(max_video_seconds=10) if video else Options(),
        estimate=10 if video else 5,
        cost_credits=10 if video else 5,
        hold_id="",
        hold_expires_at=now.replace(microsecond=0) + timedelta(hours=2),
        created_at=now,
        updated_at=now,
    )
    try:
        hold_id = await Holds(channel).place(job)
    finally:
        await channel.close()
    async with AsyncSession(stack.engine) as session, session.begin():
        assert await store.add_pending(session, job)
        assert await store.transition(
            session,
            job.id,
            expect=[Status.PENDING],
            status=Status.RUNNING,
            hold_id=hold_id,
            deadline_at=now + timedelta(seconds=30),
            lease_owner="dead-worker",
            lease_expires_at=now,
            attempts=1,
            start_requested_at=now if intent else None,
        )
    return job


@pytest.mark.parametrize(
    ("kind", "start", "lookup"),
    [(Kind.IMAGE, LEONARDO, LEONARDO_LIST), (Kind.AVATAR_VIDEO, HEYGEN, HEYGEN_LIST)],
)
async def test_a_start_the_provider_does_not_show_fails_and_its_hold_is_released(
    stack: JobsStack, kind: Kind, start: str, lookup: str
) -> None:
    user_id, who = await stack.user()
    job = await running_without_provider_job(stack, user_id, kind, intent=True)
    failed = await stack.finished(who, job.id)
    assert failed.status == "FAILED" and failed.error.code == "PROVIDER_ERROR"
    assert "the provider has no such job" in failed.error.message
    assert await stack.sandbox.count(lookup) >= 1, "looked up before it was declared lost"
    assert await posts(stack, start) == [], "not started again"
    await stack.settled(user_id, 100)
    assert await stack.charges(user_id) == []


async def test_a_job_whose_start_was_never_asked_for_simply_starts(stack: JobsStack) -> None:
    """No intent stored: the worker died before the start call (an init image upload,
    a database write), so nothing can have been started; the job starts once."""
    user_id, who = await stack.user()
    job = await running_without_provider_job(stack, user_id, Kind.IMAGE, intent=False)
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED", done.error
    assert len(await posts(stack, LEONARDO)) == 1
    assert await stack.sandbox.count(LEONARDO_LIST) == 0, "nothing to look up"
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_a_provider_job_another_job_stored_is_not_taken(stack: JobsStack) -> None:
    """Leonardo keeps no reference: two jobs asking for the same thing match each
    other's generations. One already stored by a job is never taken by another."""
    user_id, who = await stack.user()
    first = await stack.create(who, kind="IMAGE", prompt="p")
    assert (await stack.finished(who, first.id)).status == "SUCCEEDED"
    job = await running_without_provider_job(stack, user_id, Kind.IMAGE, intent=True)
    failed = await stack.finished(who, job.id)
    assert failed.status == "FAILED", "the only match was the first job's own"
    async with stack.engine.connect() as conn:
        ids = (await conn.execute(select(store.jobs.c.provider_job_id))).scalars().all()
    assert sorted(ids)[0] == "" and len(set(ids)) == 2


async def test_a_lookup_that_fails_is_no_verdict_and_is_tried_again(stack: JobsStack) -> None:
    """The provider's list answers 500 (three times: one call with its retries): the
    job is not declared lost on that, but looked up again by its next claim."""
    await stack.sandbox.fault("500x3", LEONARDO_LIST)
    user_id, who = await stack.user()
    job = await running_without_provider_job(stack, user_id, Kind.IMAGE, intent=True)

    async def looked_up_once() -> bool:
        return len(await stack.sandbox.requests(LEONARDO_LIST)) >= 3

    await wait_for(looked_up_once, 10, message="the first lookup failed")
    stack.clock.advance(31)  # past the circuit's cool-down: those 500s opened it
    failed = await stack.finished(who, job.id)
    assert failed.status == "FAILED" and "no such job" in failed.error.message
    assert (await stored(stack, job.id)).attempts >= 3, "claimed again after the failure"
    statuses = [r["status"] for r in await stack.sandbox.requests(LEONARDO_LIST)]
    assert statuses[:3] == [500] * 3 and statuses[-1] == 200
    await stack.settled(user_id, 100)
