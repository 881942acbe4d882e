"""Use cases of comments on published posts (one level of replies) and of likes of
posts and comments. Each runs in one transaction; a like or a comment moves its
counter in that same transaction, so the counts stay exact under concurrency and
cost nothing to read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utc_now
from kit.db import UnitOfWork
from services.content import domain, store
from services.content.authors import comment_views
from services.content.domain import (
    Comment,
    CommentView,
    LikeTarget,
    NotificationKind,
    Post,
    Viewer,
)
from services.content.notifications import notify


@dataclass(frozen=True)
class CommentPage:
    comments: list[CommentView]
    # (created_at, id) of the last comment served when there is another page.
    next_after: tuple[datetime, str] | None


@dataclass(frozen=True)
class LikeState:
    like_count: int
    liked_by_me: bool


class Comments:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def create(self, viewer: Viewer, post_id: str, body: str, parent_id: str) -> CommentView:
        body = domain.comment_body(body)
        async with self._uow.write() as session:
            post = await visible_post(session, post_id, viewer)
            domain.require_commentable(post)
            parent, parent_author = "", ""
            if parent_id:
                found = (
                    await store.get_comment(session, parent_id)
                    if domain.plausible_id(parent_id)
                    else None
                )
                parent = domain.reply_parent(found, post.id, parent_id)
                parent_author = found.author_id if found is not None else ""
            now = utc_now()
            comment = Comment(
                id=str(uuid.uuid4()),
                post_id=post.id,
                author_id=viewer.user_id,
                parent_id=parent,
                body=body,
                created_at=now,
                updated_at=now,
            )
            await store.add_comment(session, comment)
            about = {"actor": viewer.user_id, "subject": comment.id, "post_id": post.id}
            if parent_author:
                await notify(session, parent_author, NotificationKind.REPLY, **about)
            if post.author_id != parent_author:
                await notify(session, post.author_id, NotificationKind.COMMENT, **about)
            (view,) = await comment_views(session, viewer, [comment])
            return view

    async def list(
        self, viewer: Viewer, post_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> CommentPage:
        async with self._uow.read() as session:
            post = await visible_post(session, post_id, viewer)
            rows = await store.list_comments(session, post.id, after_=after, limit=limit)
            more = len(rows) > limit
            rows = rows[:limit]
            views = await comment_views(session, viewer, rows)
        return CommentPage(views, (rows[-1].created_at, rows[-1].id) if more else None)

    async def edit(self, viewer: Viewer, comment_id: str, body: str) -> CommentView:
        body = domain.comment_body(body)
        async with self._uow.write() as session:
            comment = await visible_comment(session, comment_id, viewer, lock=True)
            domain.require_comment_author(comment, viewer)
            now = utc_now()
            await store.edit_comment(session, comment.id, body, now)
            edited = Comment(
                id=comment.id,
                post_id=comment.post_id,
                author_id=comment.author_id,
                parent_id=comment.parent_id,
                body=body,
                created_at=comment.created_at,
                updated_at=now,
                like_count=comment.like_count,
            )
            (view,) = await comment_views(session, viewer, [edited])
            return view

    async def delete(self, viewer: Viewer, comment_id: str) -> None:
        async with self._uow.write() as session:
            comment = await visible_comment(session, comment_id, viewer, lock=True)
            domain.require_comment_author_or_staff(comment, viewer)
            now = utc_now()
            await store.delete_comment(session, comment, now)
            if comment.author_id != viewer.user_id:  # a moderator's action
                await store.moderated(
                    session,
                    moderator_id=viewer.user_id,
                    action="delete",
                    target=(LikeTarget.COMMENT.value, comment.id),
                    reason="",
                    now=now,
                )


class Likes:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def post(self, viewer: Viewer, post_id: str, *, like: bool) -> LikeState:
        """Like (or unlike) a post the viewer sees; idempotent both ways."""
        async with self._uow.write() as session:
            post = await visible_post(session, post_id, viewer)
            return await self._set(session, viewer, LikeTarget.POST, post.id, like, post=post)

    async def comment(self, viewer: Viewer, comment_id: str, *, like: bool) -> LikeState:
        async with self._uow.write() as session:
            comment = await visible_comment(session, comment_id, viewer)
            return await self._set(session, viewer, LikeTarget.COMMENT, comment.id, like)

    @staticmethod
    async def _set(
        session: AsyncSession,
        viewer: Viewer,
        kind: LikeTarget,
        target_id: str,
        like: bool,
        *,
        post: Post | None = None,
    ) -> LikeState:
        if like:
            if post is not None:
                domain.require_commentable(post)
            added = await store.add_like(session, kind, target_id, viewer.user_id, utc_now())
            if added and post is not None:
                await notify(
                    session,
                    post.author_id,
                    NotificationKind.LIKE,
                    actor=viewer.user_id,
                    subject=post.id,
                    post_id=post.id,
                )
        else:
            await store.remove_like(session, kind, target_id, viewer.user_id)
        return LikeState(await store.like_count(session, kind, target_id), like)


async def visible_post(session: AsyncSession, post_id: str, viewer: Viewer) -> Post:
    post = await store.get_post(session, post_id) if domain.plausible_id(post_id) else None
    return domain.visible(post, post_id, viewer)


async def visible_comment(
    session: AsyncSession, comment_id: str, viewer: Viewer, *, lock: bool = False
) -> Comment:
    """The comment if the viewer sees its post; COMMENT_NOT_FOUND otherwise."""
    comment = (
        await store.get_comment(session, comment_id, lock=lock)
        if domain.plausible_id(comment_id)
        else None
    )
    post = None if comment is None else await store.get_post(session, comment.post_id)
    if comment is None or post is None or not domain.can_see(post, viewer):
        raise domain.comment_not_found(comment_id)
    return comment
