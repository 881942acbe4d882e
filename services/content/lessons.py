"""Use cases of lessons: CreateLesson stores the lesson (`generating`) and starts the
TEXT job that writes its body (see `services.content.job_links` for how the outcome
reaches the lesson); get, list, publish and unpublish; the owner's edit and delete;
duplicate (a copy owned by the caller, no job); the catalogue of published lessons."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit import idempotency
from kit.db import UnitOfWork
from klik.generation.v1 import generation_pb2
from services.content import domain, job_links, store
from services.content.domain import ContentType, Lesson, LessonStatus, Viewer
from services.content.generation_client import Generation
from services.content.store import StoredLesson


@dataclass(frozen=True)
class LessonPage:
    lessons: list[Lesson]
    next_after: tuple[datetime, str] | None


class Lessons:
    def __init__(self, uow: UnitOfWork, generation: Generation) -> None:
        self._uow = uow
        self._generation = generation

    async def create(
        self,
        viewer: Viewer,
        token: str,
        *,
        topic: str,
        content_type: str,
        difficulty: int,
        key: str,
    ) -> Lesson:
        topic = domain.text_field("topic", topic, domain.MAX_TOPIC, required=True)
        kind = domain.content_type(content_type)
        level = domain.difficulty(difficulty)
        key = idempotency.check_key(key)
        fingerprint = idempotency.fingerprint("CreateLesson", (topic, kind.value, level))
        stored = await self._store(viewer, topic, kind, level, key, fingerprint)
        if stored.confirmed:
            return stored.lesson
        lesson = stored.lesson
        request = generation_pb2.CreateJobRequest(
            kind="TEXT",
            prompt=domain.lesson_prompt(topic, kind, level),
            options=generation_pb2.JobOptions(system_prompt=domain.LESSON_SYSTEM_PROMPT),
            idempotency_key=domain.job_key(job_links.LESSON, lesson.id),
        )

        async def record(session: AsyncSession, job_id: str) -> StoredLesson | None:
            await record_job(session, lesson.id, job_id, datetime.now(UTC))
            return await store.get_lesson(session, lesson.id)

        _, current = await job_links.start_job(
            self._uow,
            self._generation,
            token,
            request,
            resumable=bool(key),
            forget=lambda session: store.forget_lesson(session, lesson.id),
            record=record,
        )
        # The job's outcome may already have been applied in that transaction.
        return current.lesson if current is not None else lesson

    async def _store(
        self,
        viewer: Viewer,
        topic: str,
        kind: ContentType,
        level: int,
        key: str,
        fingerprint: str,
    ) -> StoredLesson:
        """Store the new (unconfirmed) lesson, or find the one stored under the same
        key before; a concurrent create with the same key loses the insert race and
        then finds the winner's lesson."""
        for attempt in range(2):
            try:
                async with self._uow.write() as session:
                    earlier = (
                        await store.lesson_by_key(session, viewer.user_id, key) if key else None
                    )
                    if earlier is not None:
                        idempotency.check_replay(earlier.fingerprint, fingerprint)
                        return earlier
                    lesson = Lesson(
                        id=str(uuid.uuid4()),
                        owner_id=viewer.user_id,
                        topic=topic,
                        content_type=kind,
                        difficulty=level,
                        status=LessonStatus.GENERATING,
                        body="",
                        job_id="",
                        created_at=datetime.now(UTC),
                    )
                    await store.add_lesson(
                        session, lesson, idempotency_key=key, fingerprint=fingerprint
                    )
                    return StoredLesson(lesson, fingerprint, confirmed=False)
            except IntegrityError:
                if attempt or not key:
                    raise
        raise AssertionError("unreachable")

    async def get(self, viewer: Viewer, lesson_id: str) -> Lesson:
        async with self._uow.read() as session:
            return domain.lesson_visible(await _find(session, lesson_id), lesson_id, viewer)

    async def list(
        self,
        viewer: Viewer,
        *,
        content_type: ContentType | None = None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> LessonPage:
        async with self._uow.read() as session:
            rows = await store.list_lessons(
                session, viewer.user_id, content_type=content_type, after=after, limit=limit
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return LessonPage(rows, (rows[-1].created_at, rows[-1].id) if more else None)

    async def catalog(
        self,
        *,
        content_type: ContentType | None,
        difficulty: int,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> LessonPage:
        """Every owner's published lessons, newest publication first."""
        async with self._uow.read() as session:
            rows = await store.list_catalog(
                session, content_type=content_type, difficulty=difficulty, after=after, limit=limit
            )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        next_after = None
        if last is not None and last.published_at is not None:
            next_after = (last.published_at, last.id)
        return LessonPage(rows, next_after)

    async def update(self, viewer: Viewer, lesson_id: str, changes: Mapping[str, object]) -> Lesson:
        """The owner edits a lesson that is not generating."""
        async with self._uow.write() as session:
            lesson = domain.lesson_visible(
                await _find(session, lesson_id, lock=True), lesson_id, viewer
            )
            domain.require_lesson_owner(lesson, viewer)
            edited = domain.edit_lesson(lesson, changes)
            await store.save_lesson(session, edited, datetime.now(UTC))
        return edited

    async def delete(self, viewer: Viewer, lesson_id: str) -> None:
        async with self._uow.write() as session:
            lesson = domain.lesson_visible(
                await _find(session, lesson_id, lock=True), lesson_id, viewer
            )
            domain.require_lesson_owner(lesson, viewer)
            await store.delete_lesson(session, lesson.id, datetime.now(UTC))

    async def duplicate(self, viewer: Viewer, lesson_id: str, key: str) -> Lesson:
        """A `ready` copy, owned by the caller, of a lesson the caller sees (their
        own or a published one); the same key returns the first copy."""
        key = idempotency.check_key(key)
        fingerprint = idempotency.fingerprint("DuplicateLesson", (lesson_id,))
        for attempt in range(2):
            try:
                async with self._uow.write() as session:
                    earlier = (
                        await store.lesson_by_key(session, viewer.user_id, key) if key else None
                    )
                    if earlier is not None:
                        idempotency.check_replay(earlier.fingerprint, fingerprint)
                        return earlier.lesson
                    source = domain.lesson_visible(
                        await _find(session, lesson_id), lesson_id, viewer
                    )
                    copy = domain.lesson_copy(source, viewer, str(uuid.uuid4()), datetime.now(UTC))
                    await store.add_copy(
                        session, copy, idempotency_key=key, fingerprint=fingerprint
                    )
                    return copy
            except IntegrityError:
                if attempt or not key:
                    raise
        raise AssertionError("unreachable")

    async def publish(self, viewer: Viewer, lesson_id: str) -> Lesson:
        async with self._uow.write() as session:
            lesson = await _find(session, lesson_id, lock=True)
            if lesson is None or lesson.owner_id != viewer.user_id:
                raise domain.lesson_not_found(lesson_id)
            now = datetime.now(UTC)
            published = domain.publish_lesson(lesson, now)
            if published is None:
                return lesson
            await store.save_lesson(session, published, now)
        return published

    async def unpublish(self, viewer: Viewer, lesson_id: str) -> Lesson:
        async with self._uow.write() as session:
            lesson = await _find(session, lesson_id, lock=True)
            if lesson is None or lesson.owner_id != viewer.user_id:
                raise domain.lesson_not_found(lesson_id)
            withdrawn = domain.unpublish_lesson(lesson)
            if withdrawn is None:
                return lesson
            await store.save_lesson(session, withdrawn, datetime.now(UTC))
        return withdrawn


async def _find(session: AsyncSession, lesson_id: str, *, lock: bool = False) -> Lesson | None:
    """A lesson whose job was started; one still being created is not there yet."""
    if not domain.plausible_id(lesson_id):
        return None
    stored = await store.get_lesson(session, lesson_id, lock=lock)
    return stored.lesson if stored is not None and stored.confirmed else None


async def record_job(session: AsyncSession, lesson_id: str, job_id: str, now: datetime) -> None:
    """The lesson is written by `job_id`: show it, and meet the job's outcome if it
    came first. The job link first: the lock order of `job_links` (link, then lesson)."""
    await job_links.link_target(session, job_id, job_links.LESSON, lesson_id, now)
    if not await store.confirm_lesson(session, lesson_id, job_id):
        raise domain.Superseded  # rolls the link back with the transaction
