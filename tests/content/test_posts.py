"""Posts over real gRPC on the real database: the life of a post, who sees what (for
each role), the feed's paging while posts keep arriving, FieldMask updates, and the
input limits."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from kit.tables import outbox
from klik.content.v1 import content_pb2
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import PostPublished
from tests.content.conftest import ContentStack, new_user, text_job
from tests.content.support import failure

ROLES = ("user", "premium", "moderator", "admin")


async def create(
    stack: ContentStack,
    author: str,
    *,
    title: str = "A title",
    visibility: str = "public",
    asset_ids: tuple[str, ...] = (),
) -> content_pb2.Post:
    reply = await stack.content.CreatePost(
        content_pb2.CreatePostRequest(
            title=title, body="body", visibility=visibility, asset_ids=list(asset_ids)
        ),
        metadata=stack.user(author),
    )
    post: content_pb2.Post = reply.post
    return post


async def publish(stack: ContentStack, author: str, post_id: str) -> content_pb2.Post:
    reply = await stack.content.PublishPost(
        content_pb2.PublishPostRequest(post_id=post_id), metadata=stack.user(author)
    )
    post: content_pb2.Post = reply.post
    return post


async def create_and_publish(stack: ContentStack, author: str) -> content_pb2.Post:
    return await publish(stack, author, (await create(stack, author)).id)


async def sees(stack: ContentStack, viewer: str, role: str, post_id: str) -> bool:
    try:
        await stack.content.GetPost(
            content_pb2.GetPostRequest(post_id=post_id), metadata=stack.user(viewer, role)
        )
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return False
    return True


async def test_visibility_for_each_role(content: ContentStack) -> None:
    author = new_user()
    draft = await create(content, author)
    private = await create(content, author, visibility="private")
    await publish(content, author, private.id)
    public = await create(content, author)
    await publish(content, author, public.id)
    hidden = await create(content, author)
    await publish(content, author, hidden.id)
    await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=hidden.id, reason="spam"),
        metadata=content.user(new_user(), "moderator"),
    )

    for role in ROLES:
        other = new_user()
        staff = role in ("moderator", "admin")
        assert await sees(content, other, role, public.id)
        assert await sees(content, other, role, draft.id) is staff, role
        assert await sees(content, other, role, private.id) is staff, role
        assert await sees(content, other, role, hidden.id) is staff, role
        # The author sees all of their own posts, whatever their role.
        assert await sees(content, author, role, draft.id)
        assert await sees(content, author, role, hidden.id)

    # The feed shows only the published public post.
    feed = await content.content.ListPosts(
        content_pb2.ListPostsRequest(author_id=author), metadata=content.user(new_user())
    )
    assert [post.id for post in feed.posts] == [public.id]
    # Another user's draft is NOT_FOUND (never 403) for every mutation, too.
    stranger = content.user(new_user())
    code, reason, _ = await failure(
        content.content.PublishPost(
            content_pb2.PublishPostRequest(post_id=draft.id), metadata=stranger
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")
    code, reason, _ = await failure(
        content.content.DeletePost(
            content_pb2.DeletePostRequest(post_id=draft.id), metadata=stranger
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")


async def test_who_may_change_a_post(content: ContentStack) -> None:
    author = new_user()
    post = await create(content, author)
    await publish(content, author, post.id)
    reader = content.user(new_user())
    moderator = content.user(new_user(), "moderator")

    # A reader sees the published post but may not change it: 403, not 404.
    code, reason, _ = await failure(
        content.content.DeletePost(content_pb2.DeletePostRequest(post_id=post.id), metadata=reader)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHOR")
    code, reason, _ = await failure(
        content.content.UpdatePost(
            content_pb2.UpdatePostRequest(
                post_id=post.id,
                post=content_pb2.Post(title="mine now"),
                update_mask=FieldMask(paths=["title"]),
            ),
            metadata=moderator,
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHOR")
    code, reason, _ = await failure(
        content.content.HidePost(content_pb2.HidePostRequest(post_id=post.id), metadata=reader)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # Hidden: the author cannot publish it again; the moderator deletes it.
    hidden = await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=post.id, reason="off-topic"), metadata=moderator
    )
    assert hidden.post.status == "hidden"
    code, reason, _ = await failure(publish(content, author, post.id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POST_HIDDEN")
    await content.content.DeletePost(
        content_pb2.DeletePostRequest(post_id=post.id), metadata=moderator
    )
    assert not await sees(content, author, "user", post.id)
    assert not await sees(content, new_user(), "admin", post.id)

    # The author deletes their own draft.
    draft = await create(content, author)
    await content.content.DeletePost(
        content_pb2.DeletePostRequest(post_id=draft.id), metadata=content.user(author)
    )
    assert not await sees(content, author, "user", draft.id)


async def test_publishing_once_records_one_event(content: ContentStack) -> None:
    author = new_user()
    post = await create(content, author)
    assert post.status == "draft"
    # Concurrent publishes of one draft: the row lock lets one of them publish.
    racing = await asyncio.gather(*(publish(content, author, post.id) for _ in range(5)))
    assert {p.status for p in racing} == {"published"}
    assert len({p.updated_at.ToNanoseconds() for p in racing}) == 1
    again = await publish(content, author, post.id)
    assert again.updated_at == racing[0].updated_at  # unchanged the next time

    async with content.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.payload).where(
                    outbox.c.aggregate_id == post.id, outbox.c.type == "content.post.published"
                )
            )
        ).all()
    assert len(rows) == 1
    event = PostPublished()
    assert Envelope.FromString(rows[0].payload).payload.Unpack(event)
    assert (event.post_id, event.author_id) == (post.id, author)


async def test_update_changes_only_the_masked_fields(content: ContentStack) -> None:
    author = new_user()
    me = content.user(author)
    post = await create(content, author, title="Before")
    updated = await content.content.UpdatePost(
        content_pb2.UpdatePostRequest(
            post_id=post.id,
            # Title blank but not in the mask: neither checked nor changed.
            post=content_pb2.Post(body="new body", visibility="private"),
            update_mask=FieldMask(paths=["body", "visibility"]),
        ),
        metadata=me,
    )
    assert (updated.post.title, updated.post.body, updated.post.visibility) == (
        "Before",
        "new body",
        "private",
    )

    code, reason, metadata = await failure(
        content.content.UpdatePost(
            content_pb2.UpdatePostRequest(
                post_id=post.id,
                post=content_pb2.Post(status="published"),
                update_mask=FieldMask(paths=["status"]),
            ),
            metadata=me,
        )
    )
    assert (code, reason, metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_UPDATE_MASK",
        "update_mask",
    )
    # An empty mask means all four fields: a blank title is then refused.
    code, reason, metadata = await failure(
        content.content.UpdatePost(
            content_pb2.UpdatePostRequest(post_id=post.id, post=content_pb2.Post(body="x")),
            metadata=me,
        )
    )
    assert (code, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "title")
    current = await content.content.GetPost(
        content_pb2.GetPostRequest(post_id=post.id), metadata=me
    )
    assert current.post.body == "new body"  # the refused update changed nothing


async def test_input_limits_name_the_field(content: ContentStack) -> None:
    me = content.user(new_user())
    cases = [
        (content_pb2.CreatePostRequest(title="  "), "INVALID_ARGUMENT", "title"),
        (content_pb2.CreatePostRequest(title="t" * 201), "INVALID_ARGUMENT", "title"),
        (content_pb2.CreatePostRequest(title="t", body="b" * 20_001), "INVALID_ARGUMENT", "body"),
        (
            content_pb2.CreatePostRequest(title="t", visibility="friends"),
            "INVALID_VISIBILITY",
            "visibility",
        ),
        (
            content_pb2.CreatePostRequest(title="t", asset_ids=[f"a{i}" for i in range(11)]),
            "INVALID_ARGUMENT",
            "asset_ids",
        ),
    ]
    for request, reason, field in cases:
        code, got, metadata = await failure(content.content.CreatePost(request, metadata=me))
        assert (code, got, metadata.get("field")) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            field,
        ), request


async def test_a_post_shows_only_its_authors_assets(content: ContentStack) -> None:
    alice, bob = new_user(), new_user()
    await content.job_event(text_job(alice, "SUCCEEDED", text="alice's text"))
    await content.job_event(text_job(bob, "SUCCEEDED", text="bob's text"))
    await content.drained()
    mine = (
        await content.content.ListAssets(
            content_pb2.ListAssetsRequest(), metadata=content.user(alice)
        )
    ).assets
    theirs = (
        await content.content.ListAssets(
            content_pb2.ListAssetsRequest(), metadata=content.user(bob)
        )
    ).assets
    assert len(mine) == len(theirs) == 1

    post = await create(content, alice, asset_ids=(mine[0].id,))
    assert list(post.asset_ids) == [mine[0].id]
    code, reason, metadata = await failure(create(content, alice, asset_ids=(theirs[0].id,)))
    assert (code, reason, metadata["asset_id"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_ASSET",
        theirs[0].id,
    )
    code, reason, _ = await failure(
        content.content.UpdatePost(
            content_pb2.UpdatePostRequest(
                post_id=post.id,
                post=content_pb2.Post(asset_ids=[theirs[0].id]),
                update_mask=FieldMask(paths=["asset_ids"]),
            ),
            metadata=content.user(alice),
        )
    )
    assert reason == "UNKNOWN_ASSET"


async def test_feed_paging_is_stable_while_new_posts_arrive(content: ContentStack) -> None:
    author = new_user()
    reader = content.user(new_user())
    published = []
    for i in range(7):
        post = await create(content, author, title=f"post {i}")
        published.append((await publish(content, author, post.id)).id)
    newest_first = list(reversed(published))

    seen: list[str] = []
    token = ""
    while True:
        page = await content.content.ListPosts(
            content_pb2.ListPostsRequest(author_id=author, page_size=3, page_token=token),
            metadata=reader,
        )
        seen.extend(post.id for post in page.posts)
        # New posts arrive (concurrently) between pages.
        await asyncio.gather(*(create_and_publish(content, author) for _ in range(2)))
        token = page.next_page_token
        if not token:
            break
    # Every post that existed when paging started, once, newest first; the posts
    # published meanwhile land before the first page, not in the pages still to come.
    assert seen == newest_first

    code, reason, _ = await failure(
        content.content.ListPosts(content_pb2.ListPostsRequest(page_token="bogus"), metadata=reader)
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
