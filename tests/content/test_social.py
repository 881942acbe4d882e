"""Authors, comments and likes over real gRPC on the real database, with auth's
events published to the real NATS: every post and comment carries its author's
public profile (changing with `user.profile_changed`, gone with `user.deleted`),
comments with one level of replies page oldest first, and like counts stay exact
under concurrent likes and unlikes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc

from klik.content.v1 import content_pb2
from klik.events.v1.events_pb2 import UserProfileChanged, UserRegistered
from tests.content.conftest import ContentStack, new_user
from tests.content.support import failure
from tests.content.test_posts import create, create_and_publish
from tests.helpers import envelope, publish_envelope, wait_for

Likes = tuple[int, bool]


async def register(stack: ContentStack, user_id: str, handle: str, name: str) -> None:
    event = envelope(
        "user.registered",
        UserRegistered(
            user_id=user_id, email=f"{handle}@example.com", display_name=name, handle=handle
        ),
        aggregate_id=user_id,
    )
    await publish_envelope(stack.js, event)


async def change_profile(
    stack: ContentStack,
    user_id: str,
    handle: str,
    name: str,
    *,
    avatar: str = "",
    at: datetime | None = None,
) -> None:
    event = envelope(
        "user.profile_changed",
        UserProfileChanged(user_id=user_id, handle=handle, display_name=name, avatar_url=avatar),
        aggregate_id=user_id,
    )
    if at is not None:
        event.occurred_at.FromDatetime(at)
    await publish_envelope(stack.js, event)


async def get_post(stack: ContentStack, viewer: str, post_id: str) -> content_pb2.Post:
    reply = await stack.content.GetPost(
        content_pb2.GetPostRequest(post_id=post_id), metadata=stack.user(viewer)
    )
    post: content_pb2.Post = reply.post
    return post


async def comment(
    stack: ContentStack, author: str, post_id: str, body: str, parent_id: str = ""
) -> content_pb2.Comment:
    reply = await stack.content.CreateComment(
        content_pb2.CreateCommentRequest(post_id=post_id, body=body, parent_id=parent_id),
        metadata=stack.user(author),
    )
    created: content_pb2.Comment = reply.comment
    return created


async def all_comments(
    stack: ContentStack, viewer: str, post_id: str, page_size: int = 2
) -> list[content_pb2.Comment]:
    found: list[content_pb2.Comment] = []
    token = ""
    while True:
        page = await stack.content.ListComments(
            content_pb2.ListCommentsRequest(post_id=post_id, page_size=page_size, page_token=token),
            metadata=stack.user(viewer),
        )
        found.extend(page.comments)
        token = page.next_page_token
        if not token:
            return found


async def test_posts_and_comments_carry_their_authors_profile_as_it_changes(
    content: ContentStack,
) -> None:
    ann, bob = new_user(), new_user()
    await register(content, ann, "ann", "Ann")
    await register(content, bob, "bob", "Bob")
    await content.drained()
    post = await create_and_publish(content, ann)
    assert post.author == content_pb2.Profile(user_id=ann, handle="ann", display_name="Ann")
    said = await comment(content, bob, post.id, "nice")
    assert said.author.display_name == "Bob" and said.author.handle == "bob"

    await change_profile(content, ann, "annie", "Annie", avatar="http://x/v1/files/a.png")

    async def renamed() -> bool:
        return (await get_post(content, bob, post.id)).author.display_name == "Annie"

    await wait_for(renamed, 10, message="rename visible on the post")
    seen = await get_post(content, bob, post.id)
    assert seen.author.handle == "annie"
    assert seen.author.avatar_url == "http://x/v1/files/a.png"
    feed = await content.content.ListPosts(
        content_pb2.ListPostsRequest(author_id=ann), metadata=content.user(bob)
    )
    assert [p.author.display_name for p in feed.posts] == ["Annie"]

    # An older change arriving late changes nothing.
    await change_profile(content, ann, "ann", "Ann", at=datetime.now(UTC) - timedelta(hours=1))
    # A registration arriving after a change changes nothing either.
    await register(content, ann, "ann", "Ann")
    await content.drained()
    assert (await get_post(content, bob, post.id)).author.display_name == "Annie"

    # A user content knows nothing of yet: the id alone, never an error.
    stranger = new_user()
    theirs = await create_and_publish(content, stranger)
    assert theirs.author == content_pb2.Profile(user_id=stranger)


async def test_comments_replies_edits_and_deletes(content: ContentStack) -> None:
    ann, bob, cat, mod = new_user(), new_user(), new_user(), new_user()
    post = await create_and_publish(content, ann)
    first = await comment(content, bob, post.id, "first")
    reply = await comment(content, ann, post.id, "thanks", parent_id=first.id)
    assert reply.parent_id == first.id
    await comment(content, cat, post.id, "third")
    # One level of replies only; the parent must be a comment of this post.
    code, reason, meta = await failure(comment(content, cat, post.id, "deeper", reply.id))
    assert (code, reason, meta["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PARENT",
        "parent_id",
    )
    other = await create_and_publish(content, ann)
    code, reason, _ = await failure(comment(content, cat, other.id, "elsewhere", first.id))
    assert reason == "INVALID_PARENT"
    code, reason, meta = await failure(comment(content, cat, post.id, "  "))
    assert (code, meta["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "body")
    code, reason, _ = await failure(comment(content, cat, post.id, "x" * 5001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    # Oldest first across pages.
    listed = await all_comments(content, cat, post.id, page_size=2)
    assert [c.body for c in listed] == ["first", "thanks", "third"]
    assert (await get_post(content, cat, post.id)).comment_count == 3

    # Only the author edits; the author or a moderator deletes.
    code, reason, _ = await failure(
        content.content.UpdateComment(
            content_pb2.UpdateCommentRequest(comment_id=first.id, body="mine now"),
            metadata=content.user(cat),
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHOR")
    edited = await content.content.UpdateComment(
        content_pb2.UpdateCommentRequest(comment_id=first.id, body="first!"),
        metadata=content.user(bob),
    )
    assert edited.comment.body == "first!"
    assert edited.comment.updated_at.ToDatetime() > edited.comment.created_at.ToDatetime()
    code, reason, _ = await failure(
        content.content.DeleteComment(
            content_pb2.DeleteCommentRequest(comment_id=first.id), metadata=content.user(cat)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHOR")
    await content.content.DeleteComment(
        content_pb2.DeleteCommentRequest(comment_id=first.id),
        metadata=content.user(mod, "moderator"),
    )
    assert [c.body for c in await all_comments(content, cat, post.id)] == ["thanks", "third"]
    assert (await get_post(content, cat, post.id)).comment_count == 2
    code, reason, _ = await failure(
        content.content.UpdateComment(
            content_pb2.UpdateCommentRequest(comment_id=first.id, body="back"),
            metadata=content.user(bob),
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "COMMENT_NOT_FOUND")

    # Drafts take no comments; other people's drafts are not even there.
    draft = await create(content, ann)
    code, reason, _ = await failure(comment(content, ann, draft.id, "early"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POST_NOT_PUBLISHED")
    code, reason, _ = await failure(comment(content, bob, draft.id, "peek"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")


async def like(stack: ContentStack, user: str, post_id: str, on: bool = True) -> Likes:
    """(like_count, liked_by_me) after liking (or unliking) the post."""
    if on:
        liked = await stack.content.LikePost(
            content_pb2.LikePostRequest(post_id=post_id), metadata=stack.user(user)
        )
        return liked.like_count, liked.liked_by_me
    unliked = await stack.content.UnlikePost(
        content_pb2.UnlikePostRequest(post_id=post_id), metadata=stack.user(user)
    )
    return unliked.like_count, unliked.liked_by_me


async def test_likes_are_idempotent_and_exact_under_concurrency(content: ContentStack) -> None:
    ann, bob = new_user(), new_user()
    post = await create_and_publish(content, ann)
    assert await like(content, bob, post.id) == (1, True)
    assert await like(content, bob, post.id) == (1, True)
    assert (await get_post(content, bob, post.id)).liked_by_me
    assert not (await get_post(content, ann, post.id)).liked_by_me
    assert await like(content, bob, post.id, False) == (0, False)
    assert await like(content, bob, post.id, False) == (0, False)

    # 100 people like at once: 100.
    fans = [new_user() for _ in range(100)]
    await asyncio.gather(*(like(content, fan, post.id) for fan in fans))
    assert (await get_post(content, ann, post.id)).like_count == 100

    # One user likes and unlikes 50 times each at once: 0 or 1, matching liked_by_me.
    other = await create_and_publish(content, ann)
    flips = [like(content, bob, other.id, on=i % 2 == 0) for i in range(100)]
    await asyncio.gather(*flips)
    seen = await get_post(content, bob, other.id)
    assert seen.like_count == (1 if seen.liked_by_me else 0)

    # Comments take likes the same way.
    said = await comment(content, bob, post.id, "hello")
    liked = await content.content.LikeComment(
        content_pb2.LikeCommentRequest(comment_id=said.id), metadata=content.user(ann)
    )
    assert (liked.like_count, liked.liked_by_me) == (1, True)
    (listed,) = await all_comments(content, ann, post.id)
    assert listed.like_count == 1 and listed.liked_by_me
    (listed,) = await all_comments(content, bob, post.id)
    assert listed.like_count == 1 and not listed.liked_by_me
    unliked = await content.content.UnlikeComment(
        content_pb2.UnlikeCommentRequest(comment_id=said.id), metadata=content.user(ann)
    )
    assert (unliked.like_count, unliked.liked_by_me) == (0, False)

    # Drafts take no likes.
    draft = await create(content, ann)
    code, reason, _ = await failure(like(content, ann, draft.id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POST_NOT_PUBLISHED")


async def test_a_deleted_users_comments_and_likes_leave_every_list_and_count(
    content: ContentStack,
) -> None:
    ann, bob, cat = new_user(), new_user(), new_user()
    await register(content, bob, "bob", "Bob")
    post = await create_and_publish(content, ann)
    said = await comment(content, bob, post.id, "bye soon")
    await comment(content, cat, post.id, "reply", parent_id=said.id)
    await like(content, bob, post.id)
    await like(content, cat, post.id)
    await content.content.LikeComment(
        content_pb2.LikeCommentRequest(comment_id=said.id), metadata=content.user(bob)
    )
    before = await get_post(content, ann, post.id)
    assert (before.like_count, before.comment_count) == (2, 2)

    await content.delete_user(bob)
    await content.drained()
    after = await get_post(content, ann, post.id)
    assert (after.like_count, after.comment_count) == (1, 1)
    assert [c.body for c in await all_comments(content, ann, post.id)] == ["reply"]
    # The profile is gone too: a later change does not bring it back.
    await change_profile(content, bob, "bob", "Bob again")
    await content.drained()
    mine = await create_and_publish(content, cat)
    assert mine.author.user_id == cat
