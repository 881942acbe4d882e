"""Authors, comments and likes. Profiles are a read model of auth's events; the
counters (`posts.like_count`, `posts.comment_count`, `comments.like_count`) change in
the same statement sequence, in the same transaction, as the rows they count, with
`count = count ± 1` (no read-modify-write, so no lost update under concurrency)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Comment, LikeTarget, Profile
from services.content.store.tables import after, comments, likes, posts, profiles

# ---- profiles ------------------------------------------------------------------------


async def register_profile(
    session: AsyncSession, user_id: str, *, handle: str, display_name: str, at: datetime
) -> None:
    """The profile of a new account; nothing when content knows the user already (a
    later profile change or the deletion arrived first)."""
    await session.execute(
        dialect_insert(session, profiles)
        .values(
            user_id=user_id, handle=handle, display_name=display_name, avatar_url="", changed_at=at
        )
        .on_conflict_do_nothing(index_elements=["user_id"])
    )


async def change_profile(
    session: AsyncSession,
    user_id: str,
    *,
    handle: str,
    display_name: str,
    avatar_url: str,
    at: datetime,
) -> None:
    """The profile as of `at`, unless content holds a newer one or the user is gone."""
    statement = dialect_insert(session, profiles).values(
        user_id=user_id,
        handle=handle,
        display_name=display_name,
        avatar_url=avatar_url,
        changed_at=at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "handle": statement.excluded.handle,
                "display_name": statement.excluded.display_name,
                "avatar_url": statement.excluded.avatar_url,
                "changed_at": statement.excluded.changed_at,
            },
            where=(profiles.c.changed_at <= statement.excluded.changed_at)
            & profiles.c.deleted_at.is_(None),
        )
    )


async def delete_profile(session: AsyncSession, user_id: str, now: datetime) -> None:
    statement = dialect_insert(session, profiles).values(
        user_id=user_id, handle="", display_name="", avatar_url="", changed_at=now, deleted_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"handle": "", "display_name": "", "avatar_url": "", "deleted_at": now},
        )
    )


async def profiles_of(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, Profile]:
    """The live profiles among `user_ids`; a user content knows nothing of is absent."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(profiles).where(profiles.c.user_id.in_(wanted), profiles.c.deleted_at.is_(None))
    )
    return {
        row.user_id: Profile(row.user_id, row.handle, row.display_name, row.avatar_url)
        for row in rows
    }


# ---- comments ------------------------------------------------------------------------


def _comment(row: Row[Any]) -> Comment:
    return Comment(
        id=row.id,
        post_id=row.post_id,
        author_id=row.author_id,
        parent_id=row.parent_id or "",
        body=row.body,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        like_count=row.like_count,
    )


async def add_comment(session: AsyncSession, comment: Comment) -> None:
    await session.execute(
        insert(comments).values(
            id=comment.id,
            post_id=comment.post_id,
            author_id=comment.author_id,
            parent_id=comment.parent_id or None,
            body=comment.body,
            like_count=0,
            created_at=comment.created_at,
            updated_at=comment.updated_at,
        )
    )
    await _count_comments(session, comment.post_id, 1)


async def get_comment(
    session: AsyncSession, comment_id: str, *, lock: bool = False
) -> Comment | None:
    query = select(comments).where(comments.c.id == comment_id, comments.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _comment(row)


async def edit_comment(session: AsyncSession, comment_id: str, body: str, now: datetime) -> None:
    await session.execute(
        update(comments).where(comments.c.id == comment_id).values(body=body, updated_at=now)
    )


async def delete_comment(session: AsyncSession, comment: Comment, now: datetime) -> None:
    deleted = await session.execute(
        update(comments)
        .where(comments.c.id == comment.id, comments.c.deleted_at.is_(None))
        .values(deleted_at=now)
        .returning(comments.c.id)
    )
    if deleted.first() is not None:
        await _count_comments(session, comment.post_id, -1)


async def list_comments(
    session: AsyncSession, post_id: str, *, after_: tuple[datetime, str] | None, limit: int
) -> list[Comment]:
    """A post's live comments, oldest first; `limit + 1` at most (is there more?)."""
    query = select(comments).where(comments.c.post_id == post_id, comments.c.deleted_at.is_(None))
    if after_ is not None:
        query = query.where(after(comments.c.created_at, comments.c.id, *after_))
    query = query.order_by(comments.c.created_at, comments.c.id).limit(limit + 1)
    return [_comment(row) for row in (await session.execute(query)).all()]


async def _count_comments(session: AsyncSession, post_id: str, step: int) -> None:
    await session.execute(
        update(posts)
        .where(posts.c.id == post_id)
        .values(comment_count=posts.c.comment_count + step)
    )


# ---- likes ---------------------------------------------------------------------------

_COUNTED = {LikeTarget.POST: posts, LikeTarget.COMMENT: comments}


async def add_like(
    session: AsyncSession, kind: LikeTarget, target_id: str, user_id: str, now: datetime
) -> bool:
    """The user's like of the target, once: a second like changes nothing (False). A racing
    like by the same user waits for the first one's transaction, then inserts
    nothing, so the counter moves exactly when a row appears."""
    added = await session.execute(
        dialect_insert(session, likes)
        .values(target_kind=kind.value, target_id=target_id, user_id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["target_kind", "target_id", "user_id"])
        .returning(likes.c.user_id)
    )
    if added.first() is None:
        return False
    await _count_likes(session, kind, target_id, 1)
    return True


async def remove_like(
    session: AsyncSession, kind: LikeTarget, target_id: str, user_id: str
) -> None:
    removed = await session.execute(
        delete(likes)
        .where(
            likes.c.target_kind == kind.value,
            likes.c.target_id == target_id,
            likes.c.user_id == user_id,
        )
        .returning(likes.c.user_id)
    )
    if removed.first() is not None:
        await _count_likes(session, kind, target_id, -1)


async def like_count(session: AsyncSession, kind: LikeTarget, target_id: str) -> int:
    table = _COUNTED[kind]
    count = await session.scalar(select(table.c.like_count).where(table.c.id == target_id))
    return int(count or 0)


async def liked(
    session: AsyncSession, kind: LikeTarget, target_ids: Sequence[str], user_id: str
) -> set[str]:
    """Which of the targets the user likes: one query for a whole page."""
    if not target_ids:
        return set()
    rows = await session.execute(
        select(likes.c.target_id).where(
            likes.c.target_kind == kind.value,
            likes.c.user_id == user_id,
            likes.c.target_id.in_(sorted(set(target_ids))),
        )
    )
    return {row.target_id for row in rows}


async def _count_likes(session: AsyncSession, kind: LikeTarget, target_id: str, step: int) -> None:
    table = _COUNTED[kind]
    await session.execute(
        update(table).where(table.c.id == target_id).values(like_count=table.c.like_count + step)
    )


# ---- a deleted user ------------------------------------------------------------------


async def delete_user_social(session: AsyncSession, user_id: str, now: datetime) -> None:
    """A deleted user's comments and likes leave every list and every count."""
    per_post = await session.execute(
        select(comments.c.post_id, func.count())
        .where(comments.c.author_id == user_id, comments.c.deleted_at.is_(None))
        .group_by(comments.c.post_id)
    )
    for post_id, count in per_post.all():
        await _count_comments(session, post_id, -int(count))
    await session.execute(
        update(comments)
        .where(comments.c.author_id == user_id, comments.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    gone = await session.execute(
        delete(likes)
        .where(likes.c.user_id == user_id)
        .returning(likes.c.target_kind, likes.c.target_id)
    )
    for kind, target_id in gone.all():
        await _count_likes(session, LikeTarget(kind), target_id, -1)
    await delete_profile(session, user_id, now)
