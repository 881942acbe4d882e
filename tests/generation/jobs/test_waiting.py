"""Waiting is not work: a job waiting for its provider holds no claim loop, so a
replica runs many more jobs than it has loops; the per-user cap and the
per-provider limits bound what is in flight, and a capped user's or provider's
jobs never hold up anyone else's."""

from __future__ import annotations

import asyncio

from klik.generation.v1 import generation_pb2
from services.generation.catalogue import SANDBOX
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.generation.jobs.test_safety import GENERATIONS
from tests.helpers import wait_for
from tests.tokens import Metadata

# About twenty seconds of provider polling per job (cancelled before): long enough
# that no job finishes while a test still counts it in flight, however loaded the
# machine.
SLOW = "slow [[fault:polls=400]]"


async def cancel(stack: JobsStack, who: Metadata, job_id: str) -> None:
    await stack.stub().CancelJob(
        generation_pb2.CancelJobRequest(job_id=job_id), metadata=who, timeout=5
    )


async def all_running(stack: JobsStack, who: Metadata, ids: list[str]) -> None:
    async def running() -> bool:
        jobs = await asyncio.gather(*(stack.get(who, job_id) for job_id in ids))
        return all(job.status == "RUNNING" for job in jobs)

    await wait_for(running, 20, message=f"{len(ids)} jobs RUNNING at once")


async def test_jobs_waiting_for_the_provider_hold_no_worker(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=1, deadline=60.0)
    _, media_user = await stack.user()
    _, chat_user = await stack.user()
    images = [(await stack.create(media_user, kind="IMAGE", prompt=SLOW)).id for _ in range(4)]

    # One claim loop, four jobs waiting for the provider at once.
    await all_running(stack, media_user, images)
    # And a text job still goes straight through meanwhile.
    text = await stack.create(chat_user, kind="TEXT", prompt="hello")
    done = await stack.finished(chat_user, text.id, within=10)
    assert done.status == "SUCCEEDED", done.error
    assert all([(await stack.get(media_user, job_id)).status == "RUNNING" for job_id in images]), (
        "the text job finished while every image job was still waiting"
    )
    for job_id in images:
        await cancel(stack, media_user, job_id)


async def test_the_per_user_cap_leaves_room_for_other_users(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=2, deadline=60.0, per_user=2)
    _, busy = await stack.user()
    _, other = await stack.user()
    jobs = [(await stack.create(busy, kind="IMAGE", prompt=SLOW)).id for _ in range(3)]

    await all_running(stack, busy, jobs[:2])
    text = await stack.create(other, kind="TEXT", prompt="hello")
    done = await stack.finished(other, text.id, within=10)
    assert done.status == "SUCCEEDED", done.error
    assert (await stack.get(busy, jobs[2])).status == "QUEUED", "over the user's cap: waits"
    await cancel(stack, busy, jobs[0])
    # A slot of the user's freed: the third is claimed.
    await stack.status(busy, jobs[2], "RUNNING")
    for job_id in jobs[1:]:
        await cancel(stack, busy, job_id)


async def test_a_provider_at_its_limit_gets_no_more_jobs_here(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=2, deadline=60.0, provider_in_flight={SANDBOX: 1})
    _, who = await stack.user()
    first = await stack.create(who, kind="IMAGE", prompt=SLOW)
    await stack.status(who, first.id, "RUNNING")
    second = await stack.create(who, kind="IMAGE", prompt=SLOW)

    # The second waits in the queue while the first is polled twenty more times
    # (about a second: several of the queue's safety-net polls, 0.2 s each)...
    async def polls() -> int:
        return len([r for r in await stack.sandbox.requests(GENERATIONS) if r["method"] == "GET"])

    seen = await polls()

    async def polled_on() -> bool:
        return await polls() >= seen + 20

    await wait_for(polled_on, 10, message="the first job polled on")
    assert (await stack.get(who, first.id)).status == "RUNNING"
    assert (await stack.get(who, second.id)).status == "QUEUED"
    # ...until the provider has room again.
    await cancel(stack, who, first.id)
    await stack.status(who, second.id, "RUNNING")
    await cancel(stack, who, second.id)
