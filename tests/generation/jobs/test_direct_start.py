"""A job queued while this replica's workers would claim it next anyway (a claim loop
idle, room for its user and provider) is leased and started in the commit that
queues it: one transaction instead of two, and no wait for a loop to wake. What the
queue promises holds the same: both events, in order; the per-user cap, even for
jobs created at once; and a replica with no claim loop starts nothing."""

from __future__ import annotations

import asyncio

from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.generation.jobs.test_waiting import SLOW, cancel
from tests.helpers import wait_for


async def test_a_job_queued_on_an_idle_replica_starts_in_the_same_commit(
    stack: JobsStack,
) -> None:
    _, who = await stack.user()
    # The claim loop may be in its safety-net poll at that very moment (then it is
    # not idle, and the job is queued): the next job finds it waiting.
    for attempt in range(5):
        job = await stack.create(who, kind="TEXT", prompt=f"hello {attempt}")
        if job.status == "RUNNING":
            break
        await stack.finished(who, job.id)
    assert job.status == "RUNNING"
    assert await stack.column(job.id, "attempts") == 1
    assert "/" in await stack.column(job.id, "lease_owner")  # <replica>/<claim>
    events = await stack.events(job.id, 3)
    assert [(e.previous_status, e.job.status) for e in events] == [
        ("", "QUEUED"),
        ("QUEUED", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED", done.error


async def test_jobs_created_at_once_keep_to_the_per_user_cap(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=1, deadline=60.0, per_user=2)
    _, who = await stack.user()
    created = await asyncio.gather(
        *(stack.create(who, kind="IMAGE", prompt=SLOW) for _ in range(6))
    )
    ids = [job.id for job in created]
    # Started as they were queued, or left in the queue: never past the cap.
    assert sum(job.status == "RUNNING" for job in created) <= 2

    async def two_running() -> list[str] | None:
        statuses = [(await stack.get(who, job_id)).status for job_id in ids]
        return statuses if statuses.count("RUNNING") == 2 else None

    statuses = await wait_for(two_running, 20, message="two of the user's jobs running")
    assert statuses is not None and statuses.count("QUEUED") == 4, statuses
    for job_id in ids:
        await cancel(stack, who, job_id)


async def test_a_replica_without_claim_loops_starts_nothing(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=0)
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="hello")
    assert job.status == "QUEUED"
    assert (await stack.get(who, job.id)).status == "QUEUED"
    await cancel(stack, who, job.id)
