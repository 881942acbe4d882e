"""Notifications and mutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Notification, NotificationKind
from services.content.store.tables import before, mutes, notifications


def _notification(row: Row[Any]) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        kind=NotificationKind(row.kind),
        actor_id=row.actor_id,
        subject_id=row.subject_id,
        post_id=row.post_id,
        count=row._mapping["count"],
        note=row.note,
        read=row.read_at is not None,
        created_at=as_utc(row.created_at),
    )


async def muted(session: AsyncSession, user_id: str, actor_id: str) -> bool:
    found = await session.scalar(
        select(mutes.c.muted_id).where(mutes.c.user_id == user_id, mutes.c.muted_id == actor_id)
    )
    return found is not None


async def add_notification(
    session: AsyncSession, notification: Notification, *, aggregate_key: str | None
) -> tuple[Notification, bool]:
    """Store the notification, or, when an unread one with the same `aggregate_key`
    exists, count one more into it (one atomic upsert: concurrent likes all count).
    Returns the row as stored and whether it is new."""
    statement = dialect_insert(session, notifications).values(
        id=notification.id,
        user_id=notification.user_id,
        kind=notification.kind.value,
        actor_id=notification.actor_id,
        subject_id=notification.subject_id,
        post_id=notification.post_id,
        count=1,
        note=notification.note,
        aggregate_key=aggregate_key,
        created_at=notification.created_at,
    )
    if aggregate_key is not None:
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "aggregate_key"],
            set_={
                "count": notifications.c["count"] + 1,
                "actor_id": statement.excluded.actor_id,
            },
        )
    row = (await session.execute(statement.returning(*notifications.c))).one()
    stored = _notification(row)
    return stored, stored.id == notification.id


async def list_notifications(
    session: AsyncSession, user_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Notification]:
    """The user's notifications, newest first; `limit + 1` at most."""
    query = select(notifications).where(notifications.c.user_id == user_id)
    if after is not None:
        query = query.where(before(notifications.c.created_at, notifications.c.id, *after))
    query = query.order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
    return [_notification(row) for row in (await session.execute(query.limit(limit + 1))).all()]


async def unread_count(session: AsyncSession, user_id: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
        )
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, user_id: str, ids: Sequence[str] | None, now: datetime
) -> None:
    """Mark the user's notifications `ids` (all of them for None) read; a read like
    notification aggregates no more (the next like starts a new one)."""
    statement = update(notifications).where(
        notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
    )
    if ids is not None:
        statement = statement.where(notifications.c.id.in_(list(ids)))
    await session.execute(statement.values(read_at=now, aggregate_key=None))


async def mute(session: AsyncSession, user_id: str, muted_id: str, now: datetime) -> None:
    await session.execute(
        dialect_insert(session, mutes)
        .values(user_id=user_id, muted_id=muted_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "muted_id"])
    )


async def unmute(session: AsyncSession, user_id: str, muted_id: str) -> None:
    await session.execute(
        delete(mutes).where(mutes.c.user_id == user_id, mutes.c.muted_id == muted_id)
    )


async def forget_notifications(session: AsyncSession, user_id: str) -> None:
    """A deleted user's notifications, and those their actions caused, go."""
    await session.execute(
        delete(notifications).where(
            or_(notifications.c.user_id == user_id, notifications.c.actor_id == user_id)
        )
    )
    await session.execute(
        delete(mutes).where(or_(mutes.c.user_id == user_id, mutes.c.muted_id == user_id))
    )
