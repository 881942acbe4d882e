"""Use cases of posts and the asset library: each runs in one transaction and asks
`domain` what is allowed. A post is read with its row lock before it changes, so
concurrent changes to one post apply one after the other."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utc_now
from kit.db import UnitOfWork
from services.content import domain, events, store
from services.content.authors import post_view, post_views
from services.content.domain import (
    Asset,
    LikeTarget,
    NotificationKind,
    Post,
    PostDraft,
    PostStatus,
    PostView,
    Viewer,
)
from services.content.notifications import notify


@dataclass(frozen=True)
class PostPage:
    posts: list[PostView]
    # (published_at, id) of the last post served when there is another page.
    next_after: tuple[datetime, str] | None


@dataclass(frozen=True)
class AssetPage:
    assets: list[Asset]
    next_before: int | None


class Posts:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def create(self, viewer: Viewer, draft: PostDraft) -> PostView:
        now = utc_now()
        post = Post(
            id=str(uuid.uuid4()),
            author_id=viewer.user_id,
            title=draft.title,
            body=draft.body,
            asset_ids=draft.asset_ids,
            visibility=draft.visibility,
            status=PostStatus.DRAFT,
            created_at=now,
            updated_at=now,
        )
        async with self._uow.write() as session:
            await _check_assets(session, viewer.user_id, draft.asset_ids)
            await store.add_post(session, post)
            return await post_view(session, viewer, post)

    async def get(self, viewer: Viewer, post_id: str) -> PostView:
        async with self._uow.read() as session:
            post = domain.visible(await _find(session, post_id), post_id, viewer)
            return await post_view(session, viewer, post)

    async def feed(
        self, viewer: Viewer, *, author_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> PostPage:
        async with self._uow.read() as session:
            rows = await store.list_feed(session, author_id=author_id, after=after, limit=limit)
            more = len(rows) > limit
            rows = rows[:limit]
            views = await post_views(session, viewer, rows)
        last = rows[-1] if more else None
        next_after = None
        if last is not None and last.published_at is not None:
            next_after = (last.published_at, last.id)
        return PostPage(views, next_after)

    async def update(self, viewer: Viewer, post_id: str, changes: Mapping[str, object]) -> PostView:
        async with self._uow.write() as session:
            post = domain.visible(await _find(session, post_id, lock=True), post_id, viewer)
            domain.require_author(post, viewer)
            ids = changes.get("asset_ids")
            if isinstance(ids, tuple):
                await _check_assets(session, viewer.user_id, ids)
            updated = domain.apply_update(post, changes, utc_now())
            await store.save_post(session, updated)
            return await post_view(session, viewer, updated)

    async def delete(self, viewer: Viewer, post_id: str) -> None:
        async with self._uow.write() as session:
            post = domain.visible(await _find(session, post_id, lock=True), post_id, viewer)
            domain.require_author_or_staff(post, viewer)
            await store.delete_post(session, post.id, utc_now())

    async def publish(self, viewer: Viewer, post_id: str) -> PostView:
        async with self._uow.write() as session:
            post = domain.visible(await _find(session, post_id, lock=True), post_id, viewer)
            domain.require_author(post, viewer)
            published = domain.publish(post, utc_now())
            if published is None:
                return await post_view(session, viewer, post)
            await store.save_post(session, published)
            await events.post_published(session, published)
            return await post_view(session, viewer, published)

    async def unhide(self, viewer: Viewer, post_id: str, reason: str) -> PostView:
        """Moderators and admins only: a hidden post is published again."""
        async with self._uow.write() as session:
            post = await _find(session, post_id, lock=True)
            if post is None:
                raise domain.post_not_found(post_id)
            now = utc_now()
            shown = domain.unhide(post, now)
            if shown is None:
                return await post_view(session, viewer, post)
            await store.save_post(session, shown, hidden_reason="")
            await store.moderated(
                session,
                moderator_id=viewer.user_id,
                action="unhide",
                target=(LikeTarget.POST.value, post.id),
                reason=reason,
                now=now,
            )
            return await post_view(session, viewer, shown)

    async def hide(self, viewer: Viewer, post_id: str, reason: str) -> PostView:
        """Moderators and admins only: the caller's role is checked by the API."""
        async with self._uow.write() as session:
            post = await _find(session, post_id, lock=True)
            if post is None:
                raise domain.post_not_found(post_id)
            now = utc_now()
            hidden = domain.hide(post, now)
            if hidden is None:
                return await post_view(session, viewer, post)
            await store.save_post(session, hidden, hidden_reason=reason)
            await store.moderated(
                session,
                moderator_id=viewer.user_id,
                action="hide",
                target=(LikeTarget.POST.value, post.id),
                reason=reason,
                now=now,
            )
            await notify(
                session,
                post.author_id,
                NotificationKind.MODERATION,
                subject=post.id,
                post_id=post.id,
                note=reason,
            )
            return await post_view(session, viewer, hidden)


async def _find(session: AsyncSession, post_id: str, *, lock: bool = False) -> Post | None:
    if not domain.plausible_id(post_id):
        return None
    return await store.get_post(session, post_id, lock=lock)


async def _check_assets(session: AsyncSession, owner_id: str, asset_ids: Sequence[str]) -> None:
    """A post shows only its author's own assets."""
    owned = await store.owned_assets(session, owner_id, asset_ids)
    for asset_id in asset_ids:
        if asset_id not in owned:
            raise domain.unknown_asset(asset_id)


class Library:
    """The asset library: read-only here; assets are written by the job consumer."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def get(self, viewer: Viewer, asset_id: str) -> Asset:
        asset = None
        if domain.plausible_id(asset_id):
            async with self._uow.read() as session:
                asset = await store.get_asset(session, asset_id, viewer.user_id)
        if asset is None:
            raise domain.asset_not_found(asset_id)
        return asset

    async def list(self, viewer: Viewer, *, kind: str, before: int | None, limit: int) -> AssetPage:
        async with self._uow.read() as session:
            assets, next_before = await store.list_assets(
                session, viewer.user_id, kind=kind, before=before, limit=limit
            )
        return AssetPage(assets, next_before)
