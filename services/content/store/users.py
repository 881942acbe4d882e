"""What happens to a user's content when `user.deleted` arrives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.store.tables import (
    assets,
    assistants,
    chats,
    lessons,
    messages,
    posts,
    uploads,
)


async def delete_user_content(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Soft-delete a user's posts, chats, lessons and assistants (their ids stay taken and their
    links answer 404), and purge what they generated and said in private: their
    assets (the results of their jobs, their uploads), their upload grants and every
    message of their chats. (The stored files stay in the asset store.)"""
    for table in (messages, assets, uploads):
        await session.execute(delete(table).where(table.c.owner_id == user_id))
    for table, owner in (
        (posts, posts.c.author_id),
        (chats, chats.c.owner_id),
        (lessons, lessons.c.owner_id),
        (assistants, assistants.c.owner_id),
    ):
        await session.execute(
            update(table)
            .where(owner == user_id, table.c.deleted_at.is_(None))
            .values(deleted_at=now)
        )
