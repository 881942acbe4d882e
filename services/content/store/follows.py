"""Follows, the lists of followers and followed, and the following feed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Post, PostStatus, Profile, Visibility
from services.content.store.posts import post_of
from services.content.store.tables import before, follows, posts, profiles


async def follow(session: AsyncSession, follower_id: str, followee_id: str, now: datetime) -> bool:
    """True when the follow is new."""
    added = await session.execute(
        dialect_insert(session, follows)
        .values(follower_id=follower_id, followee_id=followee_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["follower_id", "followee_id"])
        .returning(follows.c.follower_id)
    )
    return added.first() is not None


async def unfollow(session: AsyncSession, follower_id: str, followee_id: str) -> None:
    await session.execute(
        delete(follows).where(
            follows.c.follower_id == follower_id, follows.c.followee_id == followee_id
        )
    )


async def profile_by_id(session: AsyncSession, user_id: str) -> Profile | None:
    row = (
        await session.execute(
            select(profiles).where(profiles.c.user_id == user_id, profiles.c.deleted_at.is_(None))
        )
    ).first()
    return (
        None if row is None else Profile(row.user_id, row.handle, row.display_name, row.avatar_url)
    )


async def profile_by_handle(session: AsyncSession, handle: str) -> Profile | None:
    row = (
        await session.execute(
            select(profiles)
            .where(profiles.c.handle == handle, profiles.c.deleted_at.is_(None))
            .order_by(profiles.c.changed_at.desc())
            .limit(1)
        )
    ).first()
    return (
        None if row is None else Profile(row.user_id, row.handle, row.display_name, row.avatar_url)
    )


async def list_follows(
    session: AsyncSession,
    user_id: str,
    *,
    followers: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[tuple[Profile, datetime]]:
    """The user's followers (or the users they follow), newest follow first, with
    when each follow began; `limit + 1` rows at most. Deleted users are left out."""
    own, other = (
        (follows.c.followee_id, follows.c.follower_id)
        if followers
        else (follows.c.follower_id, follows.c.followee_id)
    )
    query = (
        select(profiles, follows.c.created_at.label("followed_at"))
        .join(follows, profiles.c.user_id == other)
        .where(own == user_id, profiles.c.deleted_at.is_(None))
    )
    if after is not None:
        query = query.where(before(follows.c.created_at, other, *after))
    query = query.order_by(follows.c.created_at.desc(), other.desc()).limit(limit + 1)
    return [
        (
            Profile(row.user_id, row.handle, row.display_name, row.avatar_url),
            as_utc(row.followed_at),
        )
        for row in (await session.execute(query)).all()
    ]


async def following_feed(
    session: AsyncSession, user_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Post]:
    """Published public posts of the authors the user follows, newest first."""
    query = (
        select(posts)
        .join(follows, follows.c.followee_id == posts.c.author_id)
        .where(
            follows.c.follower_id == user_id,
            posts.c.status == PostStatus.PUBLISHED.value,
            posts.c.visibility == Visibility.PUBLIC.value,
            posts.c.deleted_at.is_(None),
        )
    )
    if after is not None:
        query = query.where(before(posts.c.published_at, posts.c.id, *after))
    query = query.order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit + 1)
    return [post_of(row) for row in (await session.execute(query)).all()]


async def forget_follows(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        delete(follows).where(
            or_(follows.c.follower_id == user_id, follows.c.followee_id == user_id)
        )
    )
