"""Where a generation job meets the chat turn or lesson it was started for.

The race: SendMessage and CreateLesson learn their job's id from CreateJob's reply
and record it afterwards, but the job's `generation.job.succeeded` (or `failed`)
event can be consumed before that transaction commits, and the reply can be lost
after the job was created. So:

1. The message or lesson row is written (unconfirmed, hidden from reads) *before*
   CreateJob is called, and CreateJob gets an idempotency key derived from that
   row's id (`domain.job_key`): a retried call, or a retried RPC with the client's
   idempotency key, reaches the same job instead of starting (and charging) another.
2. Neither side waits for the other. Both write their half into one `job_links`
   row keyed by the job id, with an upsert: the RPC writes the target (message or
   lesson), the event consumer writes the outcome (text or error). An upsert on a
   row another open transaction is writing waits for it and then sees its values,
   so whichever side commits second sees both halves and applies the outcome, on
   PostgreSQL and SQLite alike. `applied` makes that happen once.

Lock order: a transaction here writes the `job_links` row first and only then the
rows it leads to (the chat and its reply, or the lesson); the RPCs that record a job
do the same, so the two sides never wait on each other in a cycle.

Rejected alternative: NAK the event until the mapping lands. Most jobs are not
content's (users create them directly), so "not found yet" and "never ours" look the
same and the event would be retried into the DLQ; storing the outcome costs one
small row per TEXT/CHAT job instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import UnitOfWork
from kit.errors import DomainError
from klik.generation.v1 import generation_pb2
from services.content import domain, store
from services.content.domain import LessonStatus, Message, Role
from services.content.generation_client import Generation, OutcomeUnknown
from services.content.store import JobLink

T = TypeVar("T")

MESSAGE = "message"
LESSON = "lesson"
SUCCEEDED = "succeeded"
FAILED = "failed"


async def start_job(
    uow: UnitOfWork,
    generation: Generation,
    token: str,
    request: generation_pb2.CreateJobRequest,
    *,
    resumable: bool,
    forget: Callable[[AsyncSession], Awaitable[None]],
    record: Callable[[AsyncSession, str], Awaitable[T]],
) -> tuple[str, T]:
    """Start the job a stored (unconfirmed) row waits for, then `record` it in one
    transaction; returns the job id and what `record` returned.

    A refused job `forget`s the row. When the outcome is unknown the job may exist:
    a `resumable` row (stored under the client's idempotency key) is kept so a retry
    resumes it and reaches the same job; without a key nobody can, so it is dropped.
    When `record` finds the row superseded, the job is cancelled (its hold released).
    """
    try:
        job = await generation.create_job(token, request)
    except OutcomeUnknown:
        if not resumable:
            async with uow.write() as session:
                await forget(session)
        raise
    except DomainError:
        async with uow.write() as session:
            await forget(session)
        raise
    try:
        async with uow.write() as session:
            recorded = await record(session, job.id)
    except domain.Superseded:
        await generation.cancel_job(token, job.id)
        raise
    return job.id, recorded


async def link_target(
    session: AsyncSession, job_id: str, kind: str, target_id: str, now: datetime
) -> None:
    """The RPC's half: the job answers this message or writes this lesson."""
    await settle(session, await store.link_target(session, job_id, kind, target_id, now), now)


async def link_outcome(
    session: AsyncSession, job_id: str, outcome: str, text: str, error: str, now: datetime
) -> None:
    """The event's half: the job ended with this text or error."""
    await settle(session, await store.link_outcome(session, job_id, outcome, text, error, now), now)


async def settle(session: AsyncSession, link: JobLink, now: datetime) -> None:
    """Apply the outcome to its target once both are known."""
    if not link.ready or link.target_id is None:
        return
    if link.target_kind == MESSAGE:
        await _answer(session, link, link.target_id, now)
    elif link.target_kind == LESSON:
        await _finish(session, link, link.target_id, now)
    await store.mark_applied(session, link.job_id)


async def _answer(session: AsyncSession, link: JobLink, message_id: str, now: datetime) -> None:
    asked = await store.get_user_message(session, message_id)
    if asked is None:
        return
    failed = link.outcome != SUCCEEDED
    reply = Message(
        id=str(uuid.uuid4()),
        chat_id=asked.message.chat_id,
        role=Role.ASSISTANT,
        content=domain.failure_note(link.error) if failed else link.text,
        job_id=link.job_id,
        created_at=now,
        turn=asked.message.turn,
        failed=failed,
    )
    if await store.add_reply(session, reply, asked.owner_id):
        await store.touch_chat(session, reply.chat_id, now)


async def _finish(session: AsyncSession, link: JobLink, lesson_id: str, now: datetime) -> None:
    if link.outcome == SUCCEEDED:
        await store.finish_lesson(session, lesson_id, LessonStatus.READY, link.text, "", now)
    else:
        await store.finish_lesson(session, lesson_id, LessonStatus.FAILED, "", link.error, now)
