"""Lessons, managed, over real gRPC on the real database: the owner edits, deletes
and unpublishes; anyone duplicates a published lesson (the owner any ready one);
the catalogue lists published lessons newest first with its filters; other users
get NOT_FOUND for what they cannot see and PERMISSION_DENIED for what they see but
do not own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from klik.content.v1 import content_pb2
from services.content import store
from services.content.domain import ContentType, Lesson, LessonStatus
from tests.content.conftest import ContentStack, new_user
from tests.content.support import failure
from tests.content.test_search import lesson, search, word


async def test_owner_edits_a_lesson_and_search_follows(content: ContentStack) -> None:
    owner, other = new_user(), new_user()
    made = await lesson(content, owner, "Old topic", "old body")
    key = word()
    reply = await content.content.UpdateLesson(
        content_pb2.UpdateLessonRequest(
            lesson_id=made.id,
            lesson=content_pb2.Lesson(topic=f"{key} topic", difficulty=7, body="ignored"),
            update_mask=FieldMask(paths=["topic", "difficulty"]),
        ),
        metadata=content.user(owner),
    )
    edited = reply.lesson
    assert (edited.topic, edited.difficulty, edited.body) == (f"{key} topic", 7, "old body")
    assert edited.status == "published" and edited.published_at.seconds > 0
    assert [hit.lesson.id for hit in (await search(content, key, "lessons")).hits] == [made.id]

    # Another user sees the published lesson but may not change it.
    code, reason, _ = await failure(
        content.content.UpdateLesson(
            content_pb2.UpdateLessonRequest(
                lesson_id=made.id,
                lesson=content_pb2.Lesson(topic="hijack"),
                update_mask=FieldMask(paths=["topic"]),
            ),
            metadata=content.user(other),
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    # Bad input changes nothing.
    for lesson_change, paths, want in (
        (content_pb2.Lesson(topic=" "), ["topic"], "INVALID_ARGUMENT"),
        (content_pb2.Lesson(content_type="essay"), ["content_type"], "INVALID_CONTENT_TYPE"),
        (content_pb2.Lesson(difficulty=11), ["difficulty"], "INVALID_DIFFICULTY"),
        (content_pb2.Lesson(), ["owner_id"], "INVALID_UPDATE_MASK"),
    ):
        code, reason, _ = await failure(
            content.content.UpdateLesson(
                content_pb2.UpdateLessonRequest(
                    lesson_id=made.id, lesson=lesson_change, update_mask=FieldMask(paths=paths)
                ),
                metadata=content.user(owner),
            )
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, want)
    again = await content.content.GetLesson(
        content_pb2.GetLessonRequest(lesson_id=made.id), metadata=content.user(owner)
    )
    assert again.lesson.topic == f"{key} topic"


async def test_unpublished_lessons_are_not_found_for_others(content: ContentStack) -> None:
    owner, other = new_user(), new_user()
    private = await lesson(content, owner, "mine", "body", published=False)
    for call in (
        content.content.UpdateLesson(
            content_pb2.UpdateLessonRequest(
                lesson_id=private.id,
                lesson=content_pb2.Lesson(topic="x"),
                update_mask=FieldMask(paths=["topic"]),
            ),
            metadata=content.user(other),
        ),
        content.content.DeleteLesson(
            content_pb2.DeleteLessonRequest(lesson_id=private.id), metadata=content.user(other)
        ),
        content.content.DuplicateLesson(
            content_pb2.DuplicateLessonRequest(lesson_id=private.id), metadata=content.user(other)
        ),
        content.content.UnpublishLesson(
            content_pb2.UnpublishLessonRequest(lesson_id=private.id), metadata=content.user(other)
        ),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")


async def test_delete_is_owner_only_and_final(content: ContentStack) -> None:
    owner, other = new_user(), new_user()
    key = word()
    made = await lesson(content, owner, key, "body")
    code, reason, _ = await failure(
        content.content.DeleteLesson(
            content_pb2.DeleteLessonRequest(lesson_id=made.id), metadata=content.user(other)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    await content.content.DeleteLesson(
        content_pb2.DeleteLessonRequest(lesson_id=made.id), metadata=content.user(owner)
    )
    code, reason, _ = await failure(
        content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=made.id), metadata=content.user(owner)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")
    assert list((await search(content, key, "lessons")).hits) == []
    catalog = await content.content.ListLessonCatalog(
        content_pb2.ListLessonCatalogRequest(page_size=100), metadata=content.user(other)
    )
    assert made.id not in [item.id for item in catalog.lessons]


async def test_duplicate_makes_a_ready_copy_for_the_caller(content: ContentStack) -> None:
    owner, other = new_user(), new_user()
    published = await lesson(content, owner, "Shared", "the body", kind=ContentType.ACTIVITY)
    reply = await content.content.DuplicateLesson(
        content_pb2.DuplicateLessonRequest(lesson_id=published.id, idempotency_key="dup-1"),
        metadata=content.user(other),
    )
    copy = reply.lesson
    assert copy.id != published.id and copy.owner_id == other
    assert (copy.topic, copy.body, copy.content_type, copy.status) == (
        "Shared",
        "the body",
        "activity",
        "ready",
    )
    # The same key gives the same copy; another source under it is refused.
    again = await content.content.DuplicateLesson(
        content_pb2.DuplicateLessonRequest(lesson_id=published.id, idempotency_key="dup-1"),
        metadata=content.user(other),
    )
    assert again.lesson.id == copy.id
    mine = await lesson(content, other, "own draft", "text", published=False)
    code, reason, _ = await failure(
        content.content.DuplicateLesson(
            content_pb2.DuplicateLessonRequest(lesson_id=mine.id, idempotency_key="dup-1"),
            metadata=content.user(other),
        )
    )
    assert (code, reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    # The owner may copy an unpublished lesson of their own.
    own_copy = await content.content.DuplicateLesson(
        content_pb2.DuplicateLessonRequest(lesson_id=mine.id), metadata=content.user(other)
    )
    assert own_copy.lesson.owner_id == other and own_copy.lesson.id != mine.id
    listed = await content.content.ListLessons(
        content_pb2.ListLessonsRequest(), metadata=content.user(other)
    )
    assert {item.id for item in listed.lessons} == {copy.id, mine.id, own_copy.lesson.id}


async def test_list_filter_and_catalogue(content: ContentStack) -> None:
    owner, reader = new_user(), new_user()
    quiz = await lesson(content, owner, "q", "b", kind=ContentType.QUIZ, difficulty=2)
    hard = await lesson(content, owner, "h", "b", kind=ContentType.QUIZ, difficulty=9)
    plain = await lesson(content, owner, "p", "b", difficulty=2)
    draft = await lesson(content, owner, "d", "b", kind=ContentType.QUIZ, published=False)

    quizzes = await content.content.ListLessons(
        content_pb2.ListLessonsRequest(content_type="quiz"), metadata=content.user(owner)
    )
    assert [item.id for item in quizzes.lessons] == [draft.id, hard.id, quiz.id]

    async def catalogue(**filters: object) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            reply = await content.content.ListLessonCatalog(
                content_pb2.ListLessonCatalogRequest(page_size=1, page_token=token, **filters),  # type: ignore[arg-type]
                metadata=content.user(reader),
            )
            ids += [item.id for item in reply.lessons if item.owner_id == owner]
            token = reply.next_page_token
            if not token:
                return ids

    assert await catalogue() == [plain.id, hard.id, quiz.id]
    assert await catalogue(content_type="quiz") == [hard.id, quiz.id]
    assert await catalogue(difficulty=2) == [plain.id, quiz.id]
    assert await catalogue(content_type="quiz", difficulty=2) == [quiz.id]

    # Unpublished: out of the catalogue, back to ready; again: unchanged.
    for _ in range(2):
        reply = await content.content.UnpublishLesson(
            content_pb2.UnpublishLessonRequest(lesson_id=hard.id), metadata=content.user(owner)
        )
        assert reply.lesson.status == "ready" and not reply.lesson.HasField("published_at")
    assert await catalogue(content_type="quiz") == [quiz.id]

    for request, reason in (
        (content_pb2.ListLessonCatalogRequest(content_type="essay"), "INVALID_CONTENT_TYPE"),
        (content_pb2.ListLessonCatalogRequest(difficulty=11), "INVALID_DIFFICULTY"),
        (content_pb2.ListLessonCatalogRequest(page_token="nope"), "INVALID_PAGE_TOKEN"),
    ):
        code, got, _ = await failure(
            content.content.ListLessonCatalog(request, metadata=content.user(reader))
        )
        assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    code, got, _ = await failure(
        content.content.ListLessons(
            content_pb2.ListLessonsRequest(content_type="essay"), metadata=content.user(owner)
        )
    )
    assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTENT_TYPE")


async def test_a_generating_lesson_is_neither_edited_nor_copied(content: ContentStack) -> None:
    owner = new_user()
    generating = Lesson(
        id=str(uuid.uuid4()),
        owner_id=owner,
        topic="pending",
        content_type=ContentType.LESSON,
        difficulty=1,
        status=LessonStatus.GENERATING,
        body="",
        job_id="",
        created_at=datetime.now(UTC),
    )
    async with content.session() as session, session.begin():
        await store.add_lesson(session, generating, idempotency_key="", fingerprint="")
        assert await store.confirm_lesson(session, generating.id, str(uuid.uuid4()))
    code, reason, _ = await failure(
        content.content.UpdateLesson(
            content_pb2.UpdateLessonRequest(
                lesson_id=generating.id,
                lesson=content_pb2.Lesson(body="mine now"),
                update_mask=FieldMask(paths=["body"]),
            ),
            metadata=content.user(owner),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LESSON_GENERATING")
    code, reason, _ = await failure(
        content.content.DuplicateLesson(
            content_pb2.DuplicateLessonRequest(lesson_id=generating.id),
            metadata=content.user(owner),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LESSON_NOT_READY")
    still = await content.content.GetLesson(
        content_pb2.GetLessonRequest(lesson_id=generating.id), metadata=content.user(owner)
    )
    assert (still.lesson.status, still.lesson.body) == ("generating", "")
