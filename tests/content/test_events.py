"""The content service's consumers through real NATS: every succeeded job becomes one
asset of its owner whatever the redeliveries and however many replicas consume;
`user.deleted` soft-deletes the user's content; a job's outcome reaches its chat turn
or lesson once, whichever of the event and the RPC's commit comes first."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import grpc
from sqlalchemy import func, select

from klik.content.v1 import content_pb2
from services.content import chats, lessons, store
from services.content.domain import (
    Chat,
    ContentType,
    Lesson,
    LessonStatus,
    Message,
    Role,
)
from services.content.store import tables
from tests.content.conftest import ContentStack, StartContent, new_user, text_job
from tests.content.support import failure
from tests.helpers import unique, wait_for


async def assets_of(stack: ContentStack, owner: str, kind: str = "") -> list[content_pb2.Asset]:
    reply = await stack.content.ListAssets(
        content_pb2.ListAssetsRequest(kind=kind, page_size=100), metadata=stack.user(owner)
    )
    return list(reply.assets)


async def test_redelivered_events_create_one_asset(content: ContentStack) -> None:
    alice = new_user()
    job = text_job(alice, "SUCCEEDED", text="hello")
    event_id = await content.job_event(job)
    # The broker keeps these copies: different Nats-Msg-Ids slip past its dedup.
    await content.job_event(job, event_id=event_id, msg_id="redelivered-1")
    await content.job_event(job, event_id=event_id, msg_id="redelivered-2")
    # The same job under another event id (a re-publish) is still one asset.
    await content.job_event(job)
    await content.drained()

    assets = await assets_of(content, alice)
    assert [(a.job_id, a.text, a.kind, a.owner_id) for a in assets] == [
        (job.id, "hello", "TEXT", alice)
    ]
    got = await content.content.GetAsset(
        content_pb2.GetAssetRequest(asset_id=assets[0].id), metadata=content.user(alice)
    )
    assert got.asset == assets[0]
    # Another user's asset is NOT_FOUND.
    code, reason, _ = await failure(
        content.content.GetAsset(
            content_pb2.GetAssetRequest(asset_id=assets[0].id), metadata=content.user(new_user())
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")


async def test_concurrent_delivery_to_replicas_creates_one_asset_per_job(
    start_content: StartContent,
) -> None:
    prefix = unique("content-test-")
    first = await start_content(prefix=prefix)
    await start_content(prefix=prefix)
    owner = new_user()
    jobs_ = [text_job(owner, "SUCCEEDED", text=f"text {i}") for i in range(10)]
    # Each job's event three times under distinct ids, all at once: the two replicas
    # share the consumer and race each other on the copies.
    await asyncio.gather(*(first.job_event(job) for job in jobs_ for _ in range(3)))
    await first.drained()

    assets = await assets_of(first, owner)
    assert sorted(a.job_id for a in assets) == sorted(job.id for job in jobs_)


async def test_assets_list_by_kind_newest_first_in_pages(content: ContentStack) -> None:
    owner = new_user()
    image = text_job(owner, "SUCCEEDED", kind="IMAGE")
    image.result.asset_url, image.result.mime_type = "http://files/x.png", "image/png"
    texts = [text_job(owner, "SUCCEEDED", text=f"t{i}") for i in range(5)]
    for job in (*texts[:2], image, *texts[2:]):
        await content.job_event(job)
        await content.drained()  # one at a time: a known order

    only_images = await assets_of(content, owner, "IMAGE")
    assert [(a.job_id, a.url, a.mime_type) for a in only_images] == [
        (image.id, "http://files/x.png", "image/png")
    ]
    seen: list[str] = []
    token = ""
    while True:
        page = await content.content.ListAssets(
            content_pb2.ListAssetsRequest(kind="TEXT", page_size=2, page_token=token),
            metadata=content.user(owner),
        )
        seen.extend(a.job_id for a in page.assets)
        token = page.next_page_token
        if not token:
            break
    assert seen == [job.id for job in reversed(texts)]
    code, reason, _ = await failure(
        content.content.ListAssets(
            content_pb2.ListAssetsRequest(kind="SONG"), metadata=content.user(owner)
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KIND")


async def test_user_deleted_soft_deletes_posts_chats_and_lessons(content: ContentStack) -> None:
    gone, stays = new_user(), new_user()
    now = datetime.now(UTC)
    posts = {}
    for user in (gone, stays):
        reply = await content.content.CreatePost(
            content_pb2.CreatePostRequest(title="mine"), metadata=content.user(user)
        )
        await content.content.PublishPost(
            content_pb2.PublishPostRequest(post_id=reply.post.id), metadata=content.user(user)
        )
        posts[user] = reply.post.id
    # Chats and lessons straight into the store: starting them needs generation.
    chat = Chat(str(uuid.uuid4()), gone, "t", "", now, now)
    lesson = Lesson(
        str(uuid.uuid4()), gone, "topic", ContentType.QUIZ, 3, LessonStatus.READY, "b", "j", now
    )
    async with content.session() as session, session.begin():
        await store.add_chat(session, chat)
        await store.add_lesson(session, lesson, idempotency_key="", fingerprint="")
        await store.confirm_lesson(session, lesson.id, "job-1")
    # What each of them generated and said in a chat (the reply's text included).
    chats_of = {gone: chat, stays: Chat(str(uuid.uuid4()), stays, "t", "", now, now)}
    for user in (gone, stays):
        await content.job_event(text_job(user, "SUCCEEDED", text="their secret"))
        async with content.session() as session, session.begin():
            if user == stays:
                await store.add_chat(session, chats_of[user])
            message = Message(
                str(uuid.uuid4()), chats_of[user].id, Role.USER, "private words", "", now, turn=1
            )
            await store.add_user_message(
                session, message, owner_id=user, idempotency_key="", fingerprint="f", history=[]
            )
    await content.drained()

    await content.delete_user(gone)
    await content.drained()

    moderator = content.user(new_user(), "moderator")
    code, reason, _ = await failure(
        content.content.GetPost(content_pb2.GetPostRequest(post_id=posts[gone]), metadata=moderator)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")
    kept = await content.content.GetPost(
        content_pb2.GetPostRequest(post_id=posts[stays]), metadata=moderator
    )
    assert kept.post.author_id == stays
    async with content.engine.connect() as conn:
        chat_deleted = await conn.scalar(
            select(tables.chats.c.deleted_at).where(tables.chats.c.id == chat.id)
        )
        lesson_deleted = await conn.scalar(
            select(tables.lessons.c.deleted_at).where(tables.lessons.c.id == lesson.id)
        )
    assert chat_deleted is not None and lesson_deleted is not None
    async with content.engine.connect() as conn:
        for table in (tables.assets, tables.messages):
            owners = (await conn.scalars(select(table.c.owner_id))).all()
            assert gone not in owners, table.name
            assert stays in owners, table.name


async def _seed_turn(stack: ContentStack, owner: str) -> tuple[Chat, Message]:
    """A chat with one user message stored as SendMessage stores it before calling
    CreateJob (not yet confirmed)."""
    now = datetime.now(UTC)
    chat = Chat(str(uuid.uuid4()), owner, "t", "", now, now)
    async with stack.session() as session, session.begin():
        await store.add_chat(session, chat)
        turn = await store.next_turn(session, chat.id, owner)
        assert turn == 1
        message = Message(str(uuid.uuid4()), chat.id, Role.USER, "hi?", "", now, turn=1)
        await store.add_user_message(
            session, message, owner_id=owner, idempotency_key="", fingerprint="f", history=[]
        )
    return chat, message


async def _confirm(stack: ContentStack, message: Message, job_id: str) -> None:
    """What SendMessage does once CreateJob answered."""
    async with stack.session() as session, session.begin():
        await chats.record_job(session, message.chat_id, message.id, job_id, datetime.now(UTC))


async def _replies(stack: ContentStack, chat: Chat) -> list[tuple[str, str]]:
    reply = await stack.content.GetChat(
        content_pb2.GetChatRequest(chat_id=chat.id), metadata=stack.user(chat.owner_id)
    )
    return [(m.role, m.content) for m in reply.chat.messages]


async def test_a_reply_that_arrives_before_its_job_is_recorded_is_applied_once(
    content: ContentStack,
) -> None:
    owner = new_user()
    chat, message = await _seed_turn(content, owner)
    job = text_job(owner, "SUCCEEDED", kind="CHAT", text="hello!")
    # The event wins the race: consumed before SendMessage records the job id.
    event_id = await content.job_event(job)
    await content.drained()
    assert await _replies(content, chat) == []  # the message is not shown yet
    await _confirm(content, message, job.id)
    assert await _replies(content, chat) == [("user", "hi?"), ("assistant", "hello!")]
    # Redelivered (and re-published) outcomes change nothing.
    await content.job_event(job, event_id=event_id, msg_id="again")
    await content.job_event(job)
    await content.drained()
    assert await _replies(content, chat) == [("user", "hi?"), ("assistant", "hello!")]
    async with content.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).where(tables.messages.c.chat_id == chat.id))
    assert count == 2


async def test_a_failed_reply_after_its_job_is_recorded_leaves_one_note(
    content: ContentStack,
) -> None:
    owner = new_user()
    chat, message = await _seed_turn(content, owner)
    job = text_job(owner, "FAILED", kind="CHAT", error="the provider failed")
    await _confirm(content, message, job.id)
    for _ in range(2):
        await content.job_event(job)
    await content.drained()
    replies = await _replies(content, chat)
    assert replies[0] == ("user", "hi?")
    assert len(replies) == 2 and replies[1][0] == "assistant"
    assert "the provider failed" in replies[1][1]


async def test_the_event_and_the_commit_racing_apply_the_outcome_once(
    content: ContentStack,
) -> None:
    owner = new_user()
    seeded = [await _seed_turn(content, owner) for _ in range(8)]
    outcomes = [text_job(owner, "SUCCEEDED", kind="CHAT", text=f"answer {i}") for i in range(8)]
    await asyncio.gather(
        *(content.job_event(job) for job in outcomes),
        *(
            _confirm(content, message, job.id)
            for (_, message), job in zip(seeded, outcomes, strict=True)
        ),
    )
    await content.drained()
    for (chat, _), job in zip(seeded, outcomes, strict=True):
        assert await _replies(content, chat) == [("user", "hi?"), ("assistant", job.result.text)]


async def test_a_lesson_outcome_waits_for_its_lesson(content: ContentStack) -> None:
    owner = new_user()
    now = datetime.now(UTC)
    lesson = Lesson(
        str(uuid.uuid4()),
        owner,
        "fractions",
        ContentType.LESSON,
        2,
        LessonStatus.GENERATING,
        "",
        "",
        now,
    )
    async with content.session() as session, session.begin():
        await store.add_lesson(session, lesson, idempotency_key="", fingerprint="")
    job = text_job(owner, "SUCCEEDED", text="# Fractions")
    await content.job_event(job)
    await content.drained()
    code, reason, _ = await failure(
        content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=lesson.id), metadata=content.user(owner)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")
    async with content.session() as session, session.begin():
        await lessons.record_job(session, lesson.id, job.id, now)

    async def ready() -> content_pb2.Lesson | None:
        got = await content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=lesson.id), metadata=content.user(owner)
        )
        found: content_pb2.Lesson = got.lesson
        return found if found.status == "ready" else None

    done = await wait_for(ready, 10)
    assert done is not None
    assert (done.body, done.job_id) == ("# Fractions", job.id)
