"""Notifications over real gRPC on the real database: who is told what (follow,
comment, reply, like aggregated per post while unread, a finished generation, a
hidden post), the unread count and mark-read, muting, and the
`content.notification.created` event each new notification publishes."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from kit.tables import outbox
from klik.content.v1 import content_pb2
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import NotificationCreated
from tests.content.conftest import ContentStack, new_user, text_job
from tests.content.test_follows import follow
from tests.content.test_posts import create_and_publish
from tests.content.test_social import comment, like, register
from tests.helpers import wait_for


async def inbox(stack: ContentStack, user: str) -> content_pb2.ListNotificationsResponse:
    reply: content_pb2.ListNotificationsResponse = await stack.content.ListNotifications(
        content_pb2.ListNotificationsRequest(page_size=100), metadata=stack.user(user)
    )
    return reply


async def published(stack: ContentStack, recipient: str) -> list[NotificationCreated]:
    async with stack.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.payload)
                .where(outbox.c.type == "content.notification.created")
                .order_by(outbox.c.seq)
            )
        ).all()
    found = []
    for row in rows:
        envelope = Envelope.FromString(row.payload)
        event = NotificationCreated()
        assert envelope.payload.Unpack(event)
        assert envelope.user_id == event.user_id  # so /v1/events streams it to them
        if event.user_id == recipient:
            found.append(event)
    return found


async def test_who_is_told_what(content: ContentStack) -> None:
    ann, bob, cat, mod = new_user(), new_user(), new_user(), new_user()
    for user, name in ((ann, "Ann"), (bob, "Bob"), (cat, "Cat")):
        await register(content, user, name.lower(), name)
    await content.drained()
    post = await create_and_publish(content, ann)

    await follow(content, bob, ann)
    await follow(content, bob, ann)  # not new: no second notification
    said = await comment(content, bob, post.id, "hi")
    await comment(
        content, ann, post.id, "hello back", parent_id=said.id
    )  # own post: no comment note
    await comment(content, cat, post.id, "me too", parent_id=said.id)
    await like(content, ann, post.id)  # one's own like tells nobody

    mine = await inbox(content, ann)
    assert [(n.kind, n.text) for n in mine.notifications] == [
        ("comment", "Cat commented on your post"),
        ("comment", "Bob commented on your post"),
        ("follow", "Bob started following you"),
    ]
    assert mine.unread_count == 3
    assert mine.notifications[2].actor.handle == "bob"
    assert mine.notifications[2].subject_id == bob
    theirs = await inbox(content, bob)
    assert [(n.kind, n.text, n.post_id) for n in theirs.notifications] == [
        ("reply", "Cat replied to your comment", post.id),
        ("reply", "Ann replied to your comment", post.id),
    ]
    events = await published(content, ann)
    assert [(e.kind, e.text) for e in events] == [
        ("follow", "Bob started following you"),
        ("comment", "Bob commented on your post"),
        ("comment", "Cat commented on your post"),
    ]
    assert {e.notification_id for e in events} == {n.id for n in mine.notifications}

    # A moderator hides the post: the author is told why.
    await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=post.id, reason="spam"),
        metadata=content.user(mod, "moderator"),
    )
    hidden = (await inbox(content, ann)).notifications[0]
    assert (hidden.kind, hidden.text, hidden.subject_id) == (
        "moderation",
        "A moderator hid your post: spam",
        post.id,
    )
    assert not hidden.HasField("actor")

    # A finished generation tells its owner.
    job = text_job(cat, "SUCCEEDED", kind="IMAGE")
    await content.job_event(job)
    await content.drained()
    (ready,) = (await inbox(content, cat)).notifications
    assert (ready.kind, ready.text, ready.subject_id) == (
        "generation",
        "Your generation is ready",
        job.id,
    )
    assert (await published(content, cat))[0].kind == "generation"


async def test_likes_aggregate_while_unread_and_mark_read(content: ContentStack) -> None:
    ann = new_user()
    post = await create_and_publish(content, ann)
    fans = [new_user() for _ in range(12)]
    await asyncio.gather(*(like(content, fan, post.id) for fan in fans))
    mine = await inbox(content, ann)
    (liked,) = mine.notifications
    assert (liked.kind, liked.count, liked.text) == ("like", 12, "12 people liked your post")
    assert mine.unread_count == 1
    assert len(await published(content, ann)) == 1

    read = await content.content.MarkNotificationsRead(
        content_pb2.MarkNotificationsReadRequest(all=True), metadata=content.user(ann)
    )
    assert read.unread_count == 0
    # Read: the next like starts a new notification.
    await like(content, new_user(), post.id)
    mine = await inbox(content, ann)
    assert [(n.count, n.read) for n in mine.notifications] == [(1, False), (12, True)]
    assert mine.unread_count == 1
    newest = mine.notifications[0].id
    # Someone else's ids change nothing; one's own are marked.
    other = await content.content.MarkNotificationsRead(
        content_pb2.MarkNotificationsReadRequest(ids=[newest]), metadata=content.user(fans[0])
    )
    assert other.unread_count == 0
    assert (await inbox(content, ann)).unread_count == 1
    read = await content.content.MarkNotificationsRead(
        content_pb2.MarkNotificationsReadRequest(ids=[newest]), metadata=content.user(ann)
    )
    assert read.unread_count == 0


async def test_a_muted_user_notifies_no_more(content: ContentStack) -> None:
    ann, dan = new_user(), new_user()
    await register(content, ann, "ann2", "Ann")
    await content.drained()
    post = await create_and_publish(content, ann)
    await content.content.MuteUser(
        content_pb2.MuteUserRequest(user_id=dan), metadata=content.user(ann)
    )
    await follow(content, dan, ann)
    await comment(content, dan, post.id, "hey")
    await like(content, dan, post.id)
    assert list((await inbox(content, ann)).notifications) == []
    await content.content.UnmuteUser(
        content_pb2.UnmuteUserRequest(user_id=dan), metadata=content.user(ann)
    )
    await comment(content, dan, post.id, "hey again")
    assert [n.kind for n in (await inbox(content, ann)).notifications] == ["comment"]

    # A deleted user's notifications go, those to them and those they caused.
    await content.delete_user(dan)
    await content.drained()

    async def emptied() -> bool:
        return not (await inbox(content, ann)).notifications

    await wait_for(emptied, 10, message="dan's notifications gone")
