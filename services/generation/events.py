"""Events the generation service publishes (through the outbox) and consumes.

Every public status change of a job publishes `generation.job.<status in lower
case>` with the job as it is after the change (JobTransitioned), written in the
same transaction as the change itself.

It consumes `user.deleted`: the user's prompts and results are blanked and their
result files removed from the asset store. A job of theirs still running then keeps
nothing it gets back: it finishes with its result blanked and its files removed
(jobs.py `_finish`). The files go before the consumer's
transaction commits; a redelivery finds the same jobs and removes nothing twice
(a missing file ends the walk over a job's outputs)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from kit.assets import AssetStore, asset_key
from kit.bus import event_type_of
from kit.consumer import EventConsumer
from kit.outbox import add_event
from kit.server import Resources
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import JobTransitioned, UserDeleted
from services.generation import store
from services.generation.api import job_message
from services.generation.domain import Job, Status


def event_type(status: Status) -> str:
    """`generation.job.<status in lower case>`, as JobTransitioned declares it."""
    return event_type_of(JobTransitioned, status.value.lower())


async def job_transitioned(session: AsyncSession, job: Job, previous: Status | None) -> None:
    """Record the job's new status as an event in the caller's transaction."""
    payload = JobTransitioned(
        job=job_message(job), previous_status="" if previous is None else previous.value
    )
    await add_event(
        session, event_type(job.status), payload, aggregate_id=job.id, user_id=job.user_id
    )


USER_DELETED = event_type_of(UserDeleted)


def consumers(
    resources: Resources, assets: AssetStore, prefix: str = "generation"
) -> Sequence[EventConsumer]:
    """The durable consumers this service runs (replicas share them); tests give
    each run its own `prefix`."""
    assert resources.js is not None

    async def user_deleted(session: AsyncSession, envelope: Envelope, event: UserDeleted) -> None:
        for job in await store.purge_user(session, event.user_id):
            if job.result is not None and job.result.asset_url:
                await remove_outputs(assets, job)

    return (
        EventConsumer(
            resources.engine,
            resources.js,
            consumer=f"{prefix}-user-deleted",
            event_type=USER_DELETED,
            handler=user_deleted,
            payload_type=UserDeleted,
        ),
    )


async def remove_outputs(assets: AssetStore, job: Job) -> None:
    """Delete the job's stored outputs, `<job_id>/0…n` (runner.py stores them in
    order), up to the first one missing."""
    assert job.result is not None
    for index in itertools.count():
        key = asset_key(job.id, index, job.result.mime_type)
        if await assets.stat(key) is None:
            return
        await assets.delete(key)
