"""Posts, comments and assistants as a viewer sees them: each with its author's (or
owner's) public profile, posts with their attached assets
(from the read model auth's events feed, one query per page, never a call to auth)
and whether the viewer likes it (one query per page too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.content import store
from services.content.domain import (
    Asset,
    Assistant,
    AssistantView,
    Comment,
    CommentView,
    LikeTarget,
    Post,
    PostView,
    Profile,
    Viewer,
)


async def post_views(
    session: AsyncSession, viewer: Viewer, posts: Sequence[Post]
) -> list[PostView]:
    """`posts` (each one the viewer may see: the caller checked) as `viewer` sees
    them, with their attached assets (one query per page as well)."""
    authors = await store.profiles_of(session, (post.author_id for post in posts))
    liked = await store.liked(session, LikeTarget.POST, [post.id for post in posts], viewer.user_id)
    found = await store.assets_by_id(session, (i for post in posts for i in post.asset_ids))
    return [
        PostView(
            post,
            authors.get(post.author_id, Profile(post.author_id)),
            post.id in liked,
            _attached(post, found),
        )
        for post in posts
    ]


def _attached(post: Post, found: Mapping[str, Asset]) -> tuple[Asset, ...]:
    """The post's assets in its order: only its author's (as attaching checked)."""
    return tuple(
        found[i] for i in post.asset_ids if i in found and found[i].owner_id == post.author_id
    )


async def post_view(session: AsyncSession, viewer: Viewer, post: Post) -> PostView:
    (view,) = await post_views(session, viewer, [post])
    return view


async def comment_views(
    session: AsyncSession, viewer: Viewer, comments: Sequence[Comment]
) -> list[CommentView]:
    authors = await store.profiles_of(session, (comment.author_id for comment in comments))
    liked = await store.liked(
        session, LikeTarget.COMMENT, [comment.id for comment in comments], viewer.user_id
    )
    return [
        CommentView(
            comment,
            authors.get(comment.author_id, Profile(comment.author_id)),
            comment.id in liked,
        )
        for comment in comments
    ]


async def assistant_views(
    session: AsyncSession, assistants: Sequence[Assistant]
) -> list[AssistantView]:
    owners = await store.profiles_of(session, (a.owner_id for a in assistants))
    return [AssistantView(a, owners.get(a.owner_id, Profile(a.owner_id))) for a in assistants]


async def assistant_view(session: AsyncSession, assistant: Assistant) -> AssistantView:
    (view,) = await assistant_views(session, [assistant])
    return view
