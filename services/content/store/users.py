"""What happens to a user's content when `user.deleted` arrives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.store.tables import chats, lessons, posts


async def delete_user_content(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Soft-delete a user's posts, chats and lessons."""
    for table, owner in (
        (posts, posts.c.author_id),
        (chats, chats.c.owner_id),
        (lessons, lessons.c.owner_id),
    ):
        await session.execute(
            update(table)
            .where(owner == user_id, table.c.deleted_at.is_(None))
            .values(deleted_at=now)
        )
