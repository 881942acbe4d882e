"""A post's media (`Post.assets`) over real gRPC on the real database: whoever may
see a post sees its attached assets, wherever the post is returned; who may not
see the post gets neither, and GetAsset stays the owner's."""

from __future__ import annotations

import grpc
from sqlalchemy import delete

from klik.content.v1 import content_pb2
from klik.generation.v1 import generation_pb2
from services.content.store.tables import assets
from tests.content.conftest import ContentStack, new_user, text_job
from tests.content.support import failure
from tests.content.test_posts import create, publish
from tests.content.test_social import register

Media = list[tuple[str, str, str, str]]


def image_job(owner: str, url: str) -> generation_pb2.Job:
    """A succeeded IMAGE job as generation publishes it."""
    job = text_job(owner, "SUCCEEDED", kind="IMAGE")
    job.result.CopyFrom(generation_pb2.JobResult(asset_url=url, mime_type="image/png"))
    return job


async def attachable(stack: ContentStack, author: str) -> list[content_pb2.Asset]:
    """Two images and a text of `author`'s, in the order a post attaches them."""
    await stack.job_event(image_job(author, "/v1/files/one.png"))
    await stack.job_event(image_job(author, "/v1/files/two.png"))
    await stack.job_event(text_job(author, "SUCCEEDED", text="a caption"))
    await stack.drained()
    library = (
        await stack.content.ListAssets(content_pb2.ListAssetsRequest(), metadata=stack.user(author))
    ).assets
    by = {asset.url or asset.text: asset for asset in library}
    return [by["/v1/files/two.png"], by["a caption"], by["/v1/files/one.png"]]


async def test_whoever_sees_a_post_sees_its_media(content: ContentStack) -> None:
    author, reader = new_user(), new_user()
    await register(content, author, "painter", "Painter")
    attached = await attachable(content, author)
    ids = tuple(asset.id for asset in attached)
    expected: Media = [(a.id, a.kind, a.url, a.text) for a in attached]  # the post's order

    def media(post: content_pb2.Post) -> Media:
        assert list(post.asset_ids) == list(ids)  # the contract's ids, unchanged
        return [(a.id, a.kind, a.url, a.text) for a in post.assets]

    async def get(viewer: str, role: str = "user") -> content_pb2.Post:
        reply = await content.content.GetPost(
            content_pb2.GetPostRequest(post_id=draft.id), metadata=content.user(viewer, role)
        )
        post: content_pb2.Post = reply.post
        return post

    draft = await create(content, author, asset_ids=ids)
    assert media(draft) == expected  # the author, from CreatePost on
    # A draft's media go nowhere the draft does not: a moderator sees both.
    code, reason, _ = await failure(get(reader))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")
    assert media(await get(new_user(), "moderator")) == expected

    assert media(await publish(content, author, draft.id)) == expected
    # A reader: GetPost, the feed, the following feed, the profile page and Search.
    assert media(await get(reader)) == expected
    feed = await content.content.ListPosts(
        content_pb2.ListPostsRequest(author_id=author), metadata=content.user(reader)
    )
    assert [media(post) for post in feed.posts] == [expected]
    await content.drained()  # the author's profile, before following them
    await content.content.FollowUser(
        content_pb2.FollowUserRequest(user_id=author), metadata=content.user(reader)
    )
    following = await content.content.ListFollowingFeed(
        content_pb2.ListFollowingFeedRequest(), metadata=content.user(reader)
    )
    assert [media(post) for post in following.posts] == [expected]
    page = await content.content.GetProfilePage(
        content_pb2.GetProfilePageRequest(handle="painter"), metadata=content.user(reader)
    )
    assert [media(post) for post in page.posts] == [expected]
    found = await content.content.Search(
        content_pb2.SearchRequest(q="body", type="posts"), metadata=content.user(reader)
    )
    assert [media(hit.post) for hit in found.hits] == [expected]
    # GetAsset stays the owner's: the media come with the post, not on their own.
    code, reason, _ = await failure(
        content.content.GetAsset(
            content_pb2.GetAssetRequest(asset_id=ids[0]), metadata=content.user(reader)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")

    # Hidden: gone for readers, media and all; the author and the staff still see them.
    hidden = await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=draft.id, reason="spam"),
        metadata=content.user(new_user(), "moderator"),
    )
    assert media(hidden.post) == expected
    code, _, _ = await failure(get(reader))
    assert code == grpc.StatusCode.NOT_FOUND
    feed = await content.content.ListPosts(
        content_pb2.ListPostsRequest(author_id=author), metadata=content.user(reader)
    )
    assert list(feed.posts) == []
    assert media(await get(author)) == expected
    assert media(await get(new_user(), "admin")) == expected


async def test_a_private_post_keeps_its_media_to_itself(content: ContentStack) -> None:
    author, reader = new_user(), new_user()
    attached = await attachable(content, author)
    post = await create(content, author, visibility="private", asset_ids=(attached[0].id,))
    await publish(content, author, post.id)
    code, _, _ = await failure(
        content.content.GetPost(
            content_pb2.GetPostRequest(post_id=post.id), metadata=content.user(reader)
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    staff = await content.content.GetPost(
        content_pb2.GetPostRequest(post_id=post.id), metadata=content.user(new_user(), "admin")
    )
    assert [a.url for a in staff.post.assets] == ["/v1/files/two.png"]


async def test_an_asset_that_is_gone_is_left_out(content: ContentStack) -> None:
    author = new_user()
    attached = await attachable(content, author)
    post = await create(content, author, asset_ids=tuple(a.id for a in attached))
    await publish(content, author, post.id)
    async with content.session() as session, session.begin():
        await session.execute(delete(assets).where(assets.c.id == attached[1].id))
    reply = await content.content.GetPost(
        content_pb2.GetPostRequest(post_id=post.id), metadata=content.user(new_user())
    )
    assert len(reply.post.asset_ids) == 3  # the ids as the author attached them
    assert [a.id for a in reply.post.assets] == [attached[0].id, attached[2].id]
