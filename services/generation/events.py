"""Events the generation service publishes (through the outbox) and consumes.

Every public status change of a job publishes `generation.job.<status in lower
case>` with the job as it is after the change (JobTransitioned), written in the
same transaction as the change itself."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.consumer import EventConsumer
from kit.outbox import add_event
from kit.server import Resources
from klik.events.v1.events_pb2 import JobTransitioned
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


def consumers(resources: Resources) -> Sequence[EventConsumer]:
    """The durable consumers this service runs: none (its job queue is a table)."""
    return ()
