"""Use cases of follows: follow and unfollow, the followers and following lists,
the feed of the followed authors' posts, and a user's public page by handle. Each
runs in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utc_now
from kit.db import UnitOfWork
from services.content import domain, store
from services.content.authors import post_views
from services.content.domain import NotificationKind, Post, PostView, Profile, Viewer
from services.content.notifications import notify
from services.content.posts import PostPage


@dataclass(frozen=True)
class ProfilePage:
    profiles: list[Profile]
    # (followed_at, user_id) of the last row served when there is another page.
    next_after: tuple[datetime, str] | None


class Follows:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def follow(self, viewer: Viewer, user_id: str) -> Profile:
        """Follow a user content knows (idempotent); USER_NOT_FOUND otherwise."""
        followee = domain.followee(viewer, user_id)
        async with self._uow.write() as session:
            profile = await _profile(session, followee)
            if await store.follow(session, viewer.user_id, profile.user_id, utc_now()):
                await notify(
                    session,
                    profile.user_id,
                    NotificationKind.FOLLOW,
                    actor=viewer.user_id,
                    subject=viewer.user_id,
                )
        return profile

    async def unfollow(self, viewer: Viewer, user_id: str) -> None:
        if not domain.plausible_id(user_id):
            return
        async with self._uow.write() as session:
            await store.unfollow(session, viewer.user_id, user_id)

    async def list(
        self, user_id: str, *, followers: bool, after: tuple[datetime, str] | None, limit: int
    ) -> ProfilePage:
        async with self._uow.read() as session:
            await _profile(session, user_id)
            rows = await store.list_follows(
                session, user_id, followers=followers, after=after, limit=limit
            )
        more = len(rows) > limit
        rows = rows[:limit]
        last = (rows[-1][1], rows[-1][0].user_id) if more else None
        return ProfilePage([profile for profile, _ in rows], last)

    async def feed(
        self, viewer: Viewer, *, after: tuple[datetime, str] | None, limit: int
    ) -> PostPage:
        async with self._uow.read() as session:
            rows = await store.following_feed(session, viewer.user_id, after=after, limit=limit)
            return await _page(session, viewer, rows, limit)

    async def page(
        self, viewer: Viewer, handle: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> tuple[Profile, PostPage]:
        """A user's public page: their profile and published public posts."""
        async with self._uow.read() as session:
            profile = await store.profile_by_handle(session, handle.lower()) if handle else None
            if profile is None:
                raise domain.user_not_found(handle)
            rows = await store.list_feed(
                session, author_id=profile.user_id, after=after, limit=limit
            )
            return profile, await _page(session, viewer, rows, limit)


async def _profile(session: AsyncSession, user_id: str) -> Profile:
    profile = await store.profile_by_id(session, user_id) if domain.plausible_id(user_id) else None
    if profile is None:
        raise domain.user_not_found(user_id)
    return profile


async def _page(session: AsyncSession, viewer: Viewer, rows: list[Post], limit: int) -> PostPage:
    more = len(rows) > limit
    rows = rows[:limit]
    views: list[PostView] = await post_views(session, viewer, rows)
    last = rows[-1] if more else None
    next_after = None
    if last is not None and last.published_at is not None:
        next_after = (last.published_at, last.id)
    return PostPage(views, next_after)
