"""Chat and lesson rules that need no generation job: input limits naming the field,
ownership (other users' chats and lessons are NOT_FOUND), paging of chats and
lessons, and a generation service that cannot be reached leaving nothing shown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc

from klik.content.v1 import content_pb2
from services.content import store
from services.content.domain import ContentType, Lesson, LessonStatus
from tests.content.conftest import ContentStack, StartContent, new_user
from tests.content.support import failure
from tests.helpers import free_port


async def test_input_limits_name_the_field(content: ContentStack) -> None:
    me = content.user(new_user())
    chat = await content.content.CreateChat(content_pb2.CreateChatRequest(), metadata=me)
    chat_id = chat.chat.id
    cases = [
        (
            content.content.CreateChat(content_pb2.CreateChatRequest(title="t" * 201), metadata=me),
            "INVALID_ARGUMENT",
            "title",
        ),
        (
            content.content.SendMessage(
                content_pb2.SendMessageRequest(chat_id=chat_id, content="  "), metadata=me
            ),
            "INVALID_ARGUMENT",
            "content",
        ),
        (
            content.content.SendMessage(
                content_pb2.SendMessageRequest(chat_id=chat_id, content="x" * 8_001), metadata=me
            ),
            "INVALID_ARGUMENT",
            "content",
        ),
        (
            content.content.CreateLesson(
                content_pb2.CreateLessonRequest(topic="", content_type="quiz", difficulty=1),
                metadata=me,
            ),
            "INVALID_ARGUMENT",
            "topic",
        ),
        (
            content.content.CreateLesson(
                content_pb2.CreateLessonRequest(topic="t", content_type="essay", difficulty=1),
                metadata=me,
            ),
            "INVALID_CONTENT_TYPE",
            "content_type",
        ),
        (
            content.content.CreateLesson(
                content_pb2.CreateLessonRequest(topic="t", content_type="quiz", difficulty=11),
                metadata=me,
            ),
            "INVALID_DIFFICULTY",
            "difficulty",
        ),
        (
            content.content.CreateLesson(
                content_pb2.CreateLessonRequest(topic="t", content_type="quiz", difficulty=0),
                metadata=me,
            ),
            "INVALID_DIFFICULTY",
            "difficulty",
        ),
    ]
    for call, reason, field in cases:
        code, got, metadata = await failure(call)
        assert (code, got, metadata.get("field")) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            field,
        )
    got_chat = await content.content.GetChat(
        content_pb2.GetChatRequest(chat_id=chat_id), metadata=me
    )
    assert list(got_chat.chat.messages) == []


async def test_other_users_chats_and_lessons_are_not_found(content: ContentStack) -> None:
    owner = new_user()
    chat = await content.content.CreateChat(
        content_pb2.CreateChatRequest(title="mine"), metadata=content.user(owner)
    )
    stranger = content.user(new_user(), "admin")
    code, reason, _ = await failure(
        content.content.GetChat(content_pb2.GetChatRequest(chat_id=chat.chat.id), metadata=stranger)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHAT_NOT_FOUND")
    code, reason, _ = await failure(
        content.content.SendMessage(
            content_pb2.SendMessageRequest(chat_id=chat.chat.id, content="hi"), metadata=stranger
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHAT_NOT_FOUND")

    lesson = await _seed_lesson(content, owner, LessonStatus.READY, datetime.now(UTC))
    code, reason, _ = await failure(
        content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=lesson.id), metadata=stranger
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")
    code, reason, _ = await failure(
        content.content.PublishLesson(
            content_pb2.PublishLessonRequest(lesson_id=lesson.id), metadata=stranger
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")


async def _seed_lesson(
    stack: ContentStack, owner: str, status: LessonStatus, created: datetime
) -> Lesson:
    lesson = Lesson(
        str(uuid.uuid4()), owner, "topic", ContentType.LESSON, 5, status, "body", "", created
    )
    async with stack.session() as session, session.begin():
        await store.add_lesson(session, lesson, idempotency_key="", fingerprint="")
        await store.confirm_lesson(session, lesson.id, str(uuid.uuid4()))
    return lesson


async def test_chats_and_lessons_page_newest_first(content: ContentStack) -> None:
    owner = new_user()
    me = content.user(owner)
    chats = [
        (
            await content.content.CreateChat(
                content_pb2.CreateChatRequest(title=f"chat {i}"), metadata=me
            )
        ).chat.id
        for i in range(5)
    ]
    seen: list[str] = []
    token = chats_token = ""
    while True:
        page = await content.content.ListChats(
            content_pb2.ListChatsRequest(page_size=2, page_token=token), metadata=me
        )
        seen.extend(chat.id for chat in page.chats)
        token = page.next_page_token
        chats_token = chats_token or token
        if not token:
            break
    assert seen == list(reversed(chats))

    start = datetime.now(UTC)
    lessons = [
        (await _seed_lesson(content, owner, LessonStatus.READY, start + timedelta(seconds=i))).id
        for i in range(5)
    ]
    seen = []
    token = ""
    while True:
        lesson_page = await content.content.ListLessons(
            content_pb2.ListLessonsRequest(page_size=2, page_token=token), metadata=me
        )
        seen.extend(lesson.id for lesson in lesson_page.lessons)
        token = lesson_page.next_page_token
        if not token:
            break
    assert seen == list(reversed(lessons))
    # A cursor is only good for the RPC that issued it.
    code, reason, _ = await failure(
        content.content.ListLessons(
            content_pb2.ListLessonsRequest(page_token=chats_token), metadata=me
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


async def test_an_unreachable_generation_service_leaves_no_message(
    start_content: StartContent,
) -> None:
    stack = await start_content(env={"KLIK_GENERATION_PORT": str(free_port())})
    me = stack.user(new_user())
    chat = await stack.content.CreateChat(content_pb2.CreateChatRequest(), metadata=me)
    for key in ("", "retry-me"):
        code, reason, _ = await failure(
            stack.content.SendMessage(
                content_pb2.SendMessageRequest(
                    chat_id=chat.chat.id, content="hi", idempotency_key=key
                ),
                metadata=me,
            )
        )
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "GENERATION_UNAVAILABLE")
    got = await stack.content.GetChat(content_pb2.GetChatRequest(chat_id=chat.chat.id), metadata=me)
    assert list(got.chat.messages) == []
