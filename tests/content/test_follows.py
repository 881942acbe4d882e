"""Follows over real gRPC on the real database: follow and unfollow, the followers
and following lists, the following feed's stable cursors while new posts arrive, a
user's public page by handle, and what `user.deleted` takes away."""

from __future__ import annotations

import grpc

from klik.content.v1 import content_pb2
from tests.content.conftest import ContentStack, new_user
from tests.content.support import failure
from tests.content.test_posts import create_and_publish
from tests.content.test_social import register


async def follow(stack: ContentStack, follower: str, followee: str) -> content_pb2.Profile:
    reply = await stack.content.FollowUser(
        content_pb2.FollowUserRequest(user_id=followee), metadata=stack.user(follower)
    )
    profile: content_pb2.Profile = reply.profile
    return profile


async def feed(
    stack: ContentStack, viewer: str, token: str = "", size: int = 2
) -> tuple[list[str], str]:
    page = await stack.content.ListFollowingFeed(
        content_pb2.ListFollowingFeedRequest(page_size=size, page_token=token),
        metadata=stack.user(viewer),
    )
    return [post.id for post in page.posts], page.next_page_token


async def whole_feed(stack: ContentStack, viewer: str) -> list[str]:
    ids, token = await feed(stack, viewer)
    while token:
        more, token = await feed(stack, viewer, token)
        ids += more
    return ids


async def test_follows_lists_and_the_following_feed(content: ContentStack) -> None:
    ann, bob, cat, dan = new_user(), new_user(), new_user(), new_user()
    for user, handle in ((ann, "ann"), (bob, "bob"), (cat, "cat"), (dan, "dan")):
        await register(content, user, handle, handle.title())
    await content.drained()

    code, reason, _ = await failure(follow(content, cat, cat))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "CANNOT_FOLLOW_SELF")
    code, reason, _ = await failure(follow(content, cat, new_user()))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    assert (await follow(content, cat, ann)).handle == "ann"
    assert (await follow(content, cat, ann)).handle == "ann"  # idempotent
    await follow(content, cat, bob)
    await follow(content, dan, ann)

    followers = await content.content.ListFollowers(
        content_pb2.ListFollowersRequest(user_id=ann, page_size=1), metadata=content.user(bob)
    )
    assert [p.user_id for p in followers.profiles] == [dan]
    rest = await content.content.ListFollowers(
        content_pb2.ListFollowersRequest(user_id=ann, page_token=followers.next_page_token),
        metadata=content.user(bob),
    )
    assert [p.user_id for p in rest.profiles] == [cat] and not rest.next_page_token
    following = await content.content.ListFollowing(
        content_pb2.ListFollowingRequest(user_id=cat), metadata=content.user(cat)
    )
    assert [p.handle for p in following.profiles] == ["bob", "ann"]

    authors = (ann, bob, ann, dan, bob)
    posts = [(await create_and_publish(content, author)).id for author in authors]
    theirs = [post for post, author in zip(posts, authors, strict=True) if author != dan]
    first, token = await feed(content, cat)
    assert first == theirs[::-1][:2]
    # New posts arriving do not move the pages already handed out.
    newer = (await create_and_publish(content, ann)).id
    seen = list(first)
    while token:
        more, token = await feed(content, cat, token)
        seen += more
    assert seen == theirs[::-1]
    assert (await whole_feed(content, cat))[0] == newer

    await content.content.UnfollowUser(
        content_pb2.UnfollowUserRequest(user_id=bob), metadata=content.user(cat)
    )
    await content.content.UnfollowUser(  # nothing to undo: still fine
        content_pb2.UnfollowUserRequest(user_id=bob), metadata=content.user(cat)
    )
    assert await whole_feed(content, cat) == [newer, posts[2], posts[0]]

    page = await content.content.GetProfilePage(
        content_pb2.GetProfilePageRequest(handle="ANN", page_size=2), metadata=content.user(dan)
    )
    assert page.profile.user_id == ann and page.profile.display_name == "Ann"
    assert [p.id for p in page.posts] == [newer, posts[2]] and page.next_page_token
    code, reason, _ = await failure(
        content.content.GetProfilePage(
            content_pb2.GetProfilePageRequest(handle="nobody"), metadata=content.user(dan)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")

    await content.delete_user(ann)
    await content.drained()
    assert await whole_feed(content, cat) == []
    following = await content.content.ListFollowing(
        content_pb2.ListFollowingRequest(user_id=cat), metadata=content.user(cat)
    )
    assert list(following.profiles) == []
    code, reason, _ = await failure(follow(content, dan, ann))
    assert reason == "USER_NOT_FOUND"
