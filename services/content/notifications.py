"""Notifications: written in the transaction of what caused them (a follow, a
comment or reply, a like, a finished generation, a hidden post), never to the one
who caused them nor from a user the recipient muted; each new one is published as
`content.notification.created` (streamed: the gateway's /v1/events delivers it to
its recipient). Likes of one post aggregate into one notification while it is
unread ("12 people liked your post")."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.clock import utc_now
from kit.db import UnitOfWork
from kit.outbox import add_event
from kit.timestamps import timestamp
from klik.events.v1.events_pb2 import NotificationCreated
from services.content import domain, store
from services.content.domain import Notification, NotificationKind, Profile, Viewer

NOTIFICATION_CREATED = event_type_of(NotificationCreated)


async def notify(
    session: AsyncSession,
    recipient: str,
    kind: NotificationKind,
    *,
    actor: str = "",
    subject: str = "",
    post_id: str = "",
    note: str = "",
) -> None:
    """Notify `recipient` in the caller's transaction (nothing for their own doing
    or a muted actor's)."""
    if not recipient or recipient == actor:
        return
    if actor and await store.muted(session, recipient, actor):
        return
    aggregate = f"like:{post_id}" if kind is NotificationKind.LIKE else None
    draft = Notification(
        id=str(uuid.uuid4()),
        user_id=recipient,
        kind=kind,
        actor_id=actor,
        subject_id=subject,
        post_id=post_id,
        count=1,
        note=note,
        read=False,
        created_at=utc_now(),
    )
    stored, created = await store.add_notification(session, draft, aggregate_key=aggregate)
    if not created:
        return
    names = await store.profiles_of(session, [actor] if actor else [])
    name = names[actor].display_name if actor in names else ""
    event = NotificationCreated(
        notification_id=stored.id,
        user_id=recipient,
        kind=kind.value,
        text=domain.notification_text(kind, stored.count, name, note),
        subject_id=subject,
        created_at=timestamp(stored.created_at),
    )
    await add_event(session, NOTIFICATION_CREATED, event, aggregate_id=stored.id, user_id=recipient)


@dataclass(frozen=True)
class NotificationView:
    notification: Notification
    actor: Profile | None
    text: str


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[NotificationView]
    unread_count: int
    next_after: tuple[datetime, str] | None


class Notifications:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def list(
        self, viewer: Viewer, *, after: tuple[datetime, str] | None, limit: int
    ) -> NotificationPage:
        async with self._uow.read() as session:
            rows = await store.list_notifications(session, viewer.user_id, after=after, limit=limit)
            more = len(rows) > limit
            rows = rows[:limit]
            actors = await store.profiles_of(session, (n.actor_id for n in rows if n.actor_id))
            unread = await store.unread_count(session, viewer.user_id)
        views = []
        for row in rows:
            actor = actors.get(row.actor_id) if row.actor_id else None
            name = actor.display_name if actor is not None else ""
            text = domain.notification_text(row.kind, row.count, name, row.note)
            views.append(
                NotificationView(
                    row, actor or (Profile(row.actor_id) if row.actor_id else None), text
                )
            )
        last = (rows[-1].created_at, rows[-1].id) if more else None
        return NotificationPage(views, unread, last)

    async def mark_read(self, viewer: Viewer, ids: Sequence[str] | None) -> int:
        """Mark some (or, for None, all) of the viewer's notifications read; the
        unread count after."""
        async with self._uow.write() as session:
            await store.mark_read(session, viewer.user_id, ids, utc_now())
            return await store.unread_count(session, viewer.user_id)

    async def mute(self, viewer: Viewer, user_id: str, *, on: bool) -> None:
        muted = domain.mutee(viewer, user_id)
        async with self._uow.write() as session:
            if on:
                await store.mute(session, viewer.user_id, muted, utc_now())
            else:
                await store.unmute(session, viewer.user_id, muted)
