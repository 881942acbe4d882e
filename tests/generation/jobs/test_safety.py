"""What must hold when things go wrong: no credits means no job; a key replayed (or
raced) makes one job and one hold; a dead worker's job is finished by another
replica with one provider job and one charge; an interrupted creation is undone;
an open circuit refuses new jobs without holding anything."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from kit import rpc
from kit.clock import utc_now
from klik.generation.v1 import generation_pb2
from services.generation import store
from services.generation.api import new_job
from services.generation.domain import Job, Kind, Options, Status
from services.generation.wallet_client import Holds
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.helpers import wait_for
from tests.wallet.support import failure

GENERATIONS = "/api/rest/v1/generations"


async def test_insufficient_credits_is_refused_and_no_job_exists(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    refused = await failure(
        stack.stub().CreateJob(
            generation_pb2.CreateJobRequest(
                kind="AVATAR_VIDEO",
                prompt="a long speech",
                options=generation_pb2.JobOptions(max_video_seconds=150),
                idempotency_key="big",
            ),
            metadata=who,
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_CREDITS",
    )
    assert refused.metadata == {"required": "150", "available": "100"}
    assert await stack.rows() == 0
    listed = await stack.stub().ListJobs(generation_pb2.ListJobsRequest(), metadata=who)
    assert list(listed.jobs) == []
    assert await stack.money(user_id) == (100, 0)
    assert await stack.sandbox.count() == 0, "nothing reached the provider"
    # Nothing was kept for the key: a smaller request may use it.
    job = await stack.create(
        who,
        kind="AVATAR_VIDEO",
        prompt="a short speech",
        options=generation_pb2.JobOptions(max_video_seconds=10),
        idempotency_key="big",
    )
    assert job.status in ("QUEUED", "RUNNING")  # (RUNNING: started as it was queued)


async def test_a_replayed_key_returns_the_same_job_and_holds_once(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    request: dict[str, Any] = {"kind": "IMAGE", "prompt": "a red door", "idempotency_key": "once"}
    first = await stack.create(who, **request)
    again = await stack.create(who, **request)
    assert again.id == first.id
    assert (await stack.money(user_id))[1] in (first.cost_credits, 0)
    done = await stack.finished(who, first.id)
    replayed = await stack.create(who, **request)
    assert replayed.id == first.id and replayed.status == "SUCCEEDED"
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.charges(user_id) == [-done.cost_credits]
    assert await stack.sandbox.count(GENERATIONS) >= 1
    assert len([r for r in await stack.sandbox.requests(GENERATIONS) if r["method"] == "POST"]) == 1

    reused = await failure(
        stack.stub().CreateJob(
            generation_pb2.CreateJobRequest(**{**request, "prompt": "a blue door"}),
            metadata=who,
        )
    )
    assert (reused.code, reused.reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    # Keys are the caller's own: another user's same key is another job.
    _, other = await stack.user()
    assert (await stack.create(other, **request)).id != first.id


async def test_concurrent_copies_of_one_key_make_one_job_and_one_hold(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=2, workers=0)
    user_id, who = await stack.user()
    request: dict[str, Any] = {"kind": "IMAGE", "prompt": "twins", "idempotency_key": "race"}
    jobs = await asyncio.gather(*(stack.create(who, i % 2, **request) for i in range(10)))
    assert len({job.id for job in jobs}) == 1
    assert all(job.status == "QUEUED" for job in jobs)
    assert await stack.rows() == 1
    assert await stack.money(user_id) == (100, jobs[0].cost_credits), "one hold"
    events = await stack.events(jobs[0].id, 1)
    assert [e.job.status for e in events] == ["QUEUED"]


async def provider_job_polled(stack: JobsStack) -> None:
    """Wait until the first replica is polling the provider job it started."""

    async def polling() -> bool:
        polls = [r for r in await stack.sandbox.requests(GENERATIONS) if r["method"] == "GET"]
        return len(polls) >= 2

    await wait_for(polling, 10, message="the first replica polls the provider job")


async def test_a_worker_killed_mid_job_is_resumed_once_by_another_replica(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=1, deadline=20.0)
    user_id, who = await stack.user()
    # About three seconds of polling (60 polls), so the kill lands mid-job.
    job = await stack.create(who, kind="IMAGE", prompt="patience [[fault:polls=60]]")

    await provider_job_polled(stack)
    second = await stack.start()
    await stack.replicas[0].kill()

    done = await stack.finished(who, job.id, within=30)
    assert done.status == "SUCCEEDED", done.error
    starts = [r for r in await stack.sandbox.requests(GENERATIONS) if r["method"] == "POST"]
    assert len(starts) == 1, "one provider job, never a second paid one"
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.charges(user_id) == [-done.cost_credits]
    events = await stack.events(job.id, 3)
    assert [e.job.status for e in events] == ["QUEUED", "RUNNING", "SUCCEEDED"]

    async def settled() -> Any:
        async with stack.engine.connect() as conn:
            row = (await conn.execute(store.jobs.select())).one()
        return row if row.settlement == "done" else None

    row = await wait_for(settled, 10, message="the capture is recorded")
    assert row.attempts == 2, "claimed by the dead worker, then by the survivor"
    assert second.server.ready.is_set()


async def test_each_worker_leases_under_its_own_name(make_jobs_stack: MakeJobsStack) -> None:
    """Two jobs in flight on one replica's two workers: distinct lease owners, so a
    job one worker lost and another took over never still looks like the first's."""
    stack = await make_jobs_stack(replicas=1, deadline=30.0)
    _, who = await stack.user()
    first = await stack.create(who, kind="IMAGE", prompt="one [[fault:polls=40]]")
    second = await stack.create(who, kind="IMAGE", prompt="two [[fault:polls=40]]")

    async def both_leased() -> dict[str, str] | None:
        async with stack.engine.connect() as conn:
            rows = (await conn.execute(store.jobs.select())).all()
        owners = {row.id: row.lease_owner for row in rows if row.lease_owner}
        return owners if len(owners) == 2 else None

    owners = await wait_for(both_leased, 10, message="both jobs claimed")
    assert owners is not None
    assert owners[first.id] != owners[second.id]
    replica = stack.replicas[0].server  # both names are that replica's, then /<n>
    prefixes = {owner.rpartition("/")[0] for owner in owners.values()}
    assert len(prefixes) == 1, prefixes
    assert replica.ready.is_set()


async def test_a_draining_replica_hands_its_running_job_over_at_once(
    make_jobs_stack: MakeJobsStack,
) -> None:
    # A lease far longer than the wait below: only the hand-over can explain the job
    # finishing in time.
    stack = await make_jobs_stack(replicas=1, deadline=60.0, lease_seconds=120.0)
    user_id, who = await stack.user()
    job = await stack.create(who, kind="IMAGE", prompt="rolling deploy [[fault:polls=40]]")

    await provider_job_polled(stack)
    await stack.start()
    await stack.replicas[0].server.shutdown()

    done = await stack.finished(who, job.id, within=20, replica=1)
    assert done.status == "SUCCEEDED", done.error
    starts = [r for r in await stack.sandbox.requests(GENERATIONS) if r["method"] == "POST"]
    assert len(starts) == 1, "the survivor polls the provider job already started"
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.charges(user_id) == [-done.cost_credits]


async def test_an_interrupted_creation_is_finished_by_a_retry_or_undone(
    make_jobs_stack: MakeJobsStack,
) -> None:
    """The crash window between storing a job and queuing it: a PENDING row whose
    hold was placed. A retry of the request finishes it; without one, the reaper
    releases the hold and forgets the row."""
    # Time enough to retry before the reaper gives up on the row.
    stack = await make_jobs_stack(pending_timeout_seconds=3.0)
    user_id, who = await stack.user()
    channel = rpc.channel(
        f"127.0.0.1:{stack.wallet.servers[0].port}",
        bearer=lambda: stack.wallet.identities["generation"].token("wallet"),
    )
    holds = Holds(channel)

    async def crashed_after_hold(key: str) -> Job:
        request = generation_pb2.CreateJobRequest(kind="IMAGE", prompt="p", idempotency_key=key)
        now = utc_now()
        pending = Job(
            id=f"00000000-0000-4000-8000-{key.rjust(12, '0')}",
            seq=0,
            user_id=user_id,
            kind=Kind.IMAGE,
            status=Status.PENDING,
            prompt="p",
            provider="sandbox",
            model="sandbox-image",
            options=Options(),
            estimate=5,
            cost_credits=5,
            hold_id="",
            hold_expires_at=now.replace(microsecond=0) + timedelta(hours=2),
            created_at=now,
            updated_at=now,
            idempotency_key=key,
            fingerprint=new_job(request).fingerprint,
        )
        async with AsyncSession(stack.engine) as session, session.begin():
            assert await store.add_pending(session, pending)
        await holds.place(pending)
        return pending

    try:
        retried = await crashed_after_hold("111")
        abandoned = await crashed_after_hold("222")
    finally:
        await channel.close()
    assert await stack.money(user_id) == (100, 10)
    job = await stack.create(who, kind="IMAGE", prompt="p", idempotency_key="111")
    assert job.id == retried.id and job.status in ("QUEUED", "RUNNING")
    with_retry = await stack.finished(who, job.id)
    assert with_retry.status == "SUCCEEDED"

    async def reaped() -> bool:
        return await stack.rows() == 1

    await wait_for(reaped, 10, message="the abandoned row is reaped")
    await stack.settled(user_id, 100 - with_retry.cost_credits)
    hidden = await failure(
        stack.stub().GetJob(generation_pb2.GetJobRequest(job_id=abandoned.id), metadata=who)
    )
    assert hidden.reason == "JOB_NOT_FOUND"


async def test_an_open_circuit_refuses_new_jobs_without_a_hold_then_half_opens(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    # Three 500s in a row (the test policy's threshold) open the sandbox's circuit.
    job = await stack.create(who, kind="TEXT", prompt="boom [[fault:500]]")
    assert (await stack.finished(who, job.id)).error.code == "PROVIDER_ERROR"
    providers = await stack.stub().ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=who
    )
    circuits = {p.name: p.circuit_state for p in providers.providers}
    assert circuits == {"sandbox": "open", "sandbox-anthropic": "closed"}
    before = await stack.sandbox.count()

    refused = await failure(
        stack.stub().CreateJob(
            generation_pb2.CreateJobRequest(kind="TEXT", prompt="hello"), metadata=who
        )
    )
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
    await stack.settled(user_id, 100)
    assert await stack.rows() == 1
    assert await stack.sandbox.count() == before, "failed fast: nothing was sent"

    stack.clock.advance(31)  # past the cool-down
    # (Read directly: ListProviders' own catalogue request would be the probe.)
    assert stack.replicas[0].providers.circuit_state("sandbox") == "half_open"
    probe = await stack.create(who, kind="TEXT", prompt="hello again")
    done = await stack.finished(who, probe.id)
    assert done.status == "SUCCEEDED"
    providers = await stack.stub().ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=who
    )
    assert [p.circuit_state for p in providers.providers] == ["closed", "closed"]
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_a_drain_hand_over_does_not_count_as_an_attempt(
    make_jobs_stack: MakeJobsStack,
) -> None:
    """A job may be claimed once (`max_attempts=1`): handed over by a draining
    replica, it is still run to the end by the next one, not failed INTERNAL."""
    stack = await make_jobs_stack(replicas=1, deadline=60.0, lease_seconds=120.0, max_attempts=1)
    user_id, who = await stack.user()
    job = await stack.create(who, kind="IMAGE", prompt="graceful [[fault:polls=40]]")

    await provider_job_polled(stack)
    await stack.start()
    await stack.replicas[0].server.shutdown()

    done = await stack.finished(who, job.id, within=20, replica=1)
    assert done.status == "SUCCEEDED", done.error
    async with stack.engine.connect() as conn:
        row = (await conn.execute(store.jobs.select())).one()
    assert row.attempts == 1, "the drained replica's claim was given back"
    await stack.settled(user_id, 100 - done.cost_credits)
