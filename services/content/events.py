"""Events the content service publishes (through the outbox) and consumes.

Publishes `content.post.published` when a draft is published and
`content.notification.created` for each new notification (see `notifications`),
including "your generation is ready / failed" on a job's end. Consumes
`generation.job.succeeded` (every succeeded job becomes one asset of its owner; a
CHAT or TEXT job's text is offered to the chat turn or lesson it was started for),
`generation.job.failed` and `generation.job.cancelled` (the turn gets a failure
note, the lesson becomes `failed`), `user.registered` and `user.profile_changed`
(the public profiles read model: handle, display name, avatar; a change older than
the one held changes nothing), and `user.deleted` (the user's posts, chats, lessons
and comments are soft-deleted, their assets and chat messages purged, their likes
and follows removed, every counter moved back).
Each event is applied in the consumer's transaction, which also records its id;
on top of that, assets are unique per job and replies per chat turn,
so even the same outcome under another event id changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.consumer import EventConsumer, PoisonMessage
from kit.outbox import add_event
from kit.server import Resources
from kit.timestamps import to_datetime
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import (
    JobTransitioned,
    PostPublished,
    UserDeleted,
    UserProfileChanged,
    UserRegistered,
)
from klik.generation.v1 import generation_pb2
from services.content import domain, job_links, store
from services.content.domain import Asset, NotificationKind, Post
from services.content.notifications import notify

POST_PUBLISHED = event_type_of(PostPublished)
JOB_SUCCEEDED = event_type_of(JobTransitioned, "succeeded")
JOB_FAILED = event_type_of(JobTransitioned, "failed")
JOB_CANCELLED = event_type_of(JobTransitioned, "cancelled")
USER_DELETED = event_type_of(UserDeleted)
USER_REGISTERED = event_type_of(UserRegistered)
USER_PROFILE_CHANGED = event_type_of(UserProfileChanged)

# Kinds whose text may answer a chat turn or fill a lesson.
_TEXT_KINDS = ("TEXT", "CHAT")


async def post_published(session: AsyncSession, post: Post) -> None:
    """Record `content.post.published` in the caller's transaction."""
    event = PostPublished(post_id=post.id, author_id=post.author_id)
    if post.published_at is not None:
        event.published_at.FromDatetime(post.published_at)
    await add_event(session, POST_PUBLISHED, event, aggregate_id=post.id, user_id=post.author_id)


def _job(event: JobTransitioned) -> generation_pb2.Job:
    job = event.job
    if not domain.plausible_id(job.id) or not domain.plausible_id(job.user_id):
        # No retry can fix it: straight to the dead-letter subject.
        raise PoisonMessage(f"event names no valid job: {job.id!r} of {job.user_id!r}")
    return job


async def job_succeeded(session: AsyncSession, envelope: Envelope, event: JobTransitioned) -> None:
    job = _job(event)
    now = datetime.now(UTC)
    await store.add_asset(
        session,
        Asset(
            id=str(uuid.uuid4()),
            owner_id=job.user_id,
            job_id=job.id,
            kind=job.kind,
            text=job.result.text,
            url=job.result.asset_url,
            mime_type=job.result.mime_type,
            created_at=now,
        ),
    )
    if job.kind in _TEXT_KINDS:
        await job_links.link_outcome(session, job.id, job_links.SUCCEEDED, job.result.text, "", now)
    await _generation_finished(session, job, "Your generation is ready")


async def _generation_finished(session: AsyncSession, job: generation_pb2.Job, text: str) -> None:
    """Notify the owner; a chat reply shows in its chat instead."""
    if job.kind != "CHAT":
        await notify(session, job.user_id, NotificationKind.GENERATION, subject=job.id, note=text)


async def job_failed(session: AsyncSession, envelope: Envelope, event: JobTransitioned) -> None:
    job = _job(event)
    if job.kind in _TEXT_KINDS:
        reason = job.error.message or job.error.code or "the generation failed"
        await job_links.link_outcome(
            session, job.id, job_links.FAILED, "", reason, datetime.now(UTC)
        )
    await _generation_finished(session, job, "Your generation failed")


async def job_cancelled(session: AsyncSession, envelope: Envelope, event: JobTransitioned) -> None:
    job = _job(event)
    if job.kind in _TEXT_KINDS:
        reason = "the generation was cancelled"
        await job_links.link_outcome(
            session, job.id, job_links.FAILED, "", reason, datetime.now(UTC)
        )


async def user_deleted(session: AsyncSession, envelope: Envelope, event: UserDeleted) -> None:
    if not domain.plausible_id(event.user_id):
        raise PoisonMessage(f"event names no valid user id: {event.user_id!r}")
    now = datetime.now(UTC)
    await store.delete_user_content(session, event.user_id, now)
    await store.delete_user_social(session, event.user_id, now)
    await store.forget_follows(session, event.user_id)
    await store.forget_notifications(session, event.user_id)


def _user_id(user_id: str) -> str:
    if not domain.plausible_id(user_id):
        raise PoisonMessage(f"event names no valid user id: {user_id!r}")
    return user_id


def _occurred(envelope: Envelope) -> datetime:
    if envelope.HasField("occurred_at"):
        return to_datetime(envelope.occurred_at)
    return datetime.now(UTC)


async def user_registered(session: AsyncSession, envelope: Envelope, event: UserRegistered) -> None:
    await store.register_profile(
        session,
        _user_id(event.user_id),
        handle=event.handle[: domain.MAX_HANDLE],
        display_name=event.display_name[: domain.MAX_DISPLAY_NAME],
        at=_occurred(envelope),
    )


async def user_profile_changed(
    session: AsyncSession, envelope: Envelope, event: UserProfileChanged
) -> None:
    await store.change_profile(
        session,
        _user_id(event.user_id),
        handle=event.handle[: domain.MAX_HANDLE],
        display_name=event.display_name[: domain.MAX_DISPLAY_NAME],
        avatar_url=event.avatar_url,
        at=_occurred(envelope),
    )


def consumers(resources: Resources, prefix: str = "content") -> Sequence[EventConsumer]:
    """The durable consumers this service runs (replicas share them)."""
    assert resources.js is not None
    js, engine = resources.js, resources.engine
    return (
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-job-succeeded",
            event_type=JOB_SUCCEEDED,
            handler=job_succeeded,
            payload_type=JobTransitioned,
        ),
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-job-failed",
            event_type=JOB_FAILED,
            handler=job_failed,
            payload_type=JobTransitioned,
        ),
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-job-cancelled",
            event_type=JOB_CANCELLED,
            handler=job_cancelled,
            payload_type=JobTransitioned,
        ),
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-user-deleted",
            event_type=USER_DELETED,
            handler=user_deleted,
            payload_type=UserDeleted,
        ),
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-user-registered",
            event_type=USER_REGISTERED,
            handler=user_registered,
            payload_type=UserRegistered,
        ),
        EventConsumer(
            engine,
            js,
            consumer=f"{prefix}-user-profile-changed",
            event_type=USER_PROFILE_CHANGED,
            handler=user_profile_changed,
            payload_type=UserProfileChanged,
        ),
    )
