"""Posts: a draft, then published; soft-deleted rows are never read."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc
from services.content.domain import Post, PostStatus, Visibility
from services.content.store.tables import before, opt_time, posts


def post_of(row: Row[Any]) -> Post:
    return Post(
        id=row.id,
        author_id=row.author_id,
        title=row.title,
        body=row.body,
        asset_ids=tuple(json.loads(row.asset_ids)),
        visibility=Visibility(row.visibility),
        status=PostStatus(row.status),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        published_at=opt_time(row.published_at),
        like_count=row.like_count,
        comment_count=row.comment_count,
    )


def _post_values(post: Post) -> dict[str, Any]:
    return {
        "author_id": post.author_id,
        "title": post.title,
        "body": post.body,
        "asset_ids": json.dumps(list(post.asset_ids)),
        "visibility": post.visibility.value,
        "status": post.status.value,
        "updated_at": post.updated_at,
        "published_at": post.published_at,
    }


async def add_post(session: AsyncSession, post: Post) -> None:
    await session.execute(
        insert(posts).values(
            id=post.id, created_at=post.created_at, hidden_reason="", **_post_values(post)
        )
    )


async def get_post(session: AsyncSession, post_id: str, *, lock: bool = False) -> Post | None:
    query = select(posts).where(posts.c.id == post_id, posts.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else post_of(row)


async def save_post(session: AsyncSession, post: Post, *, hidden_reason: str | None = None) -> None:
    values = _post_values(post)
    if hidden_reason is not None:
        values["hidden_reason"] = hidden_reason
    await session.execute(update(posts).where(posts.c.id == post.id).values(**values))


async def delete_post(session: AsyncSession, post_id: str, now: datetime) -> None:
    await session.execute(update(posts).where(posts.c.id == post_id).values(deleted_at=now))


async def list_feed(
    session: AsyncSession,
    *,
    author_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Post]:
    """Published public posts, newest publication first; `limit + 1` rows at most so
    the caller knows whether there is another page."""
    query = select(posts).where(
        posts.c.status == PostStatus.PUBLISHED.value,
        posts.c.visibility == Visibility.PUBLIC.value,
        posts.c.deleted_at.is_(None),
    )
    if author_id:
        query = query.where(posts.c.author_id == author_id)
    if after is not None:
        query = query.where(before(posts.c.published_at, posts.c.id, *after))
    query = query.order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit + 1)
    return [post_of(row) for row in (await session.execute(query)).all()]
