"""Lessons: stored `generating` (hidden until their job is confirmed), then written
by the job's outcome, then published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc
from services.content.domain import ContentType, Lesson, LessonStatus
from services.content.store.pending import PendingRows
from services.content.store.tables import before, lessons, opt_time


def lesson_of(row: Row[Any]) -> Lesson:
    return Lesson(
        id=row.id,
        owner_id=row.owner_id,
        topic=row.topic,
        content_type=ContentType(row.content_type),
        difficulty=row.difficulty,
        status=LessonStatus(row.status),
        body=row.body,
        job_id=row.job_id or "",
        created_at=as_utc(row.created_at),
        error=row.error,
        published_at=opt_time(row.published_at),
    )


@dataclass(frozen=True)
class StoredLesson:
    lesson: Lesson
    fingerprint: str
    confirmed: bool


def _stored(row: Row[Any]) -> StoredLesson:
    return StoredLesson(lesson_of(row), row.fingerprint, row.confirmed)


_new_lessons = PendingRows(lessons, _stored, lessons.c.deleted_at.is_(None))

lesson_by_key = _new_lessons.by_key
confirm_lesson = _new_lessons.confirm
forget_lesson = _new_lessons.forget


async def add_lesson(
    session: AsyncSession, lesson: Lesson, *, idempotency_key: str, fingerprint: str
) -> None:
    """Store a new lesson, hidden until its job is confirmed."""
    await _new_lessons.add(
        session,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        id=lesson.id,
        owner_id=lesson.owner_id,
        topic=lesson.topic,
        content_type=lesson.content_type.value,
        difficulty=lesson.difficulty,
        status=lesson.status.value,
        body=lesson.body,
        error="",
        created_at=lesson.created_at,
        updated_at=lesson.created_at,
    )


async def get_lesson(
    session: AsyncSession, lesson_id: str, *, lock: bool = False
) -> StoredLesson | None:
    query = select(lessons).where(lessons.c.id == lesson_id, lessons.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _stored(row)


async def save_lesson(session: AsyncSession, lesson: Lesson, now: datetime) -> None:
    await session.execute(
        update(lessons)
        .where(lessons.c.id == lesson.id)
        .values(
            topic=lesson.topic,
            content_type=lesson.content_type.value,
            difficulty=lesson.difficulty,
            status=lesson.status.value,
            body=lesson.body,
            error=lesson.error,
            published_at=lesson.published_at,
            updated_at=now,
        )
    )


async def delete_lesson(session: AsyncSession, lesson_id: str, now: datetime) -> None:
    await session.execute(update(lessons).where(lessons.c.id == lesson_id).values(deleted_at=now))


async def add_copy(
    session: AsyncSession, lesson: Lesson, *, idempotency_key: str, fingerprint: str
) -> None:
    """Store a lesson that needs no job (a duplicate): shown at once."""
    await session.execute(
        insert(lessons).values(
            id=lesson.id,
            owner_id=lesson.owner_id,
            topic=lesson.topic,
            content_type=lesson.content_type.value,
            difficulty=lesson.difficulty,
            status=lesson.status.value,
            body=lesson.body,
            error="",
            job_id=None,
            confirmed=True,
            idempotency_key=idempotency_key or None,
            fingerprint=fingerprint,
            created_at=lesson.created_at,
            updated_at=lesson.created_at,
        )
    )


async def finish_lesson(
    session: AsyncSession,
    lesson_id: str,
    status: LessonStatus,
    body: str,
    error: str,
    now: datetime,
) -> None:
    """Record the job's outcome on a lesson still generating (never on one already
    finished: an outcome is applied once)."""
    await session.execute(
        update(lessons)
        .where(lessons.c.id == lesson_id, lessons.c.status == LessonStatus.GENERATING.value)
        .values(status=status.value, body=body, error=error, updated_at=now)
    )


async def list_lessons(
    session: AsyncSession,
    owner_id: str,
    *,
    content_type: ContentType | None = None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Lesson]:
    query = select(lessons).where(
        lessons.c.owner_id == owner_id,
        lessons.c.deleted_at.is_(None),
        lessons.c.confirmed.is_(True),
    )
    if content_type is not None:
        query = query.where(lessons.c.content_type == content_type.value)
    if after is not None:
        query = query.where(before(lessons.c.created_at, lessons.c.id, *after))
    query = query.order_by(lessons.c.created_at.desc(), lessons.c.id.desc()).limit(limit + 1)
    return [lesson_of(row) for row in (await session.execute(query)).all()]


async def list_catalog(
    session: AsyncSession,
    *,
    content_type: ContentType | None,
    difficulty: int,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Lesson]:
    """Every owner's published lessons, newest publication first (`limit + 1` rows
    at most); a deleted user's lessons are soft-deleted, so they are not here."""
    query = select(lessons).where(
        lessons.c.status == LessonStatus.PUBLISHED.value,
        lessons.c.deleted_at.is_(None),
        lessons.c.confirmed.is_(True),
    )
    if content_type is not None:
        query = query.where(lessons.c.content_type == content_type.value)
    if difficulty:
        query = query.where(lessons.c.difficulty == difficulty)
    if after is not None:
        query = query.where(before(lessons.c.published_at, lessons.c.id, *after))
    query = query.order_by(lessons.c.published_at.desc(), lessons.c.id.desc()).limit(limit + 1)
    return [lesson_of(row) for row in (await session.execute(query)).all()]
