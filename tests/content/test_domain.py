"""The content rules without I/O: who sees a post, state changes of posts and lessons,
update masks, the lesson prompt and the chat context kept for a new message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kit.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from services.content import domain
from services.content.domain import (
    ContentType,
    Lesson,
    LessonStatus,
    Message,
    Post,
    PostStatus,
    Role,
    Viewer,
    Visibility,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def post(status: PostStatus, visibility: Visibility = Visibility.PUBLIC) -> Post:
    return Post("p", "author", "t", "b", (), visibility, status, NOW, NOW)


@pytest.mark.parametrize("role", ["user", "premium", "moderator", "admin"])
@pytest.mark.parametrize(
    ("status", "visibility", "public"),
    [
        (PostStatus.PUBLISHED, Visibility.PUBLIC, True),
        (PostStatus.PUBLISHED, Visibility.PRIVATE, False),
        (PostStatus.DRAFT, Visibility.PUBLIC, False),
        (PostStatus.HIDDEN, Visibility.PUBLIC, False),
    ],
)
def test_who_sees_a_post(
    role: str, status: PostStatus, visibility: Visibility, public: bool
) -> None:
    subject = post(status, visibility)
    staff = role in ("moderator", "admin")
    assert domain.can_see(subject, Viewer("someone", role)) is (public or staff)
    assert domain.can_see(subject, Viewer("author", role))
    if not (public or staff):
        with pytest.raises(NotFound) as caught:
            domain.visible(subject, "p", Viewer("someone", role))
        assert caught.value.reason == "POST_NOT_FOUND"


def test_publish_and_hide_transitions() -> None:
    published = domain.publish(post(PostStatus.DRAFT), NOW)
    assert published is not None and published.status is PostStatus.PUBLISHED
    assert published.published_at == NOW
    assert domain.publish(published, NOW) is None  # already published: no change
    with pytest.raises(FailedPrecondition) as caught:
        domain.publish(post(PostStatus.HIDDEN), NOW)
    assert caught.value.reason == "POST_HIDDEN"
    hidden = domain.hide(published, NOW)
    assert hidden is not None and hidden.status is PostStatus.HIDDEN
    assert domain.hide(hidden, NOW) is None


def test_update_masks() -> None:
    assert domain.update_paths([]) == domain.POST_FIELDS
    assert domain.update_paths(["body", "body"]) == ("body",)
    with pytest.raises(InvalidArgument) as caught:
        domain.update_paths(["author_id"])
    assert caught.value.reason == "INVALID_UPDATE_MASK"
    # Fields outside the mask are neither checked nor changed.
    changes = domain.post_changes(["body"], title="", body="new", ids=[], visibility_="bogus")
    assert changes == {"body": "new"}


@pytest.mark.parametrize(
    ("call", "reason", "field"),
    [
        (lambda: domain.visibility("friends"), "INVALID_VISIBILITY", "visibility"),
        (lambda: domain.content_type("essay"), "INVALID_CONTENT_TYPE", "content_type"),
        (lambda: domain.difficulty(0), "INVALID_DIFFICULTY", "difficulty"),
        (lambda: domain.job_kind("SONG"), "INVALID_KIND", "kind"),
        (lambda: domain.asset_ids(str(i) for i in range(11)), "INVALID_ARGUMENT", "asset_ids"),
    ],
)
def test_invalid_values_name_their_field(call: object, reason: str, field: str) -> None:
    with pytest.raises(DomainError) as caught:
        call()  # type: ignore[operator]
    assert (caught.value.reason, caught.value.details.get("field")) == (reason, field)


def test_lessons_publish_only_when_ready() -> None:
    lesson = Lesson("l", "o", "t", ContentType.QUIZ, 3, LessonStatus.READY, "b", "j", NOW)
    published = domain.publish_lesson(lesson, NOW)
    assert published is not None and published.status is LessonStatus.PUBLISHED
    assert domain.publish_lesson(published, NOW) is None
    for status in (LessonStatus.GENERATING, LessonStatus.FAILED):
        with pytest.raises(FailedPrecondition):
            domain.publish_lesson(
                Lesson("l", "o", "t", ContentType.QUIZ, 3, status, "", "", NOW), NOW
            )
    # Other users see a lesson only once it is published.
    other = Viewer("someone", "admin")
    with pytest.raises(NotFound):
        domain.lesson_visible(lesson, "l", other)
    assert domain.lesson_visible(published, "l", other) is published


def test_the_lesson_prompt_follows_type_and_difficulty() -> None:
    easy = domain.lesson_prompt(" fractions ", ContentType.QUIZ, 1)
    hard = domain.lesson_prompt("fractions", ContentType.ACTIVITY, 10)
    assert "quiz about fractions" in easy and "Difficulty 1 of 10" in easy
    assert "beginner" in easy
    assert "activity about fractions" in hard and "advanced" in hard


def test_chat_context_keeps_the_latest_messages_within_bounds() -> None:
    def message(i: int, *, size: int = 10, failed: bool = False) -> Message:
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        return Message(str(i), "c", role, str(i) * size, "", NOW, turn=i, failed=failed)

    short = [message(0), message(1, failed=True), message(2)]
    assert domain.chat_context(short) == [("user", "0" * 10), ("user", "2" * 10)]
    many = [message(i) for i in range(100)]
    kept = domain.chat_context(many)
    assert len(kept) == domain.MAX_CONTEXT_MESSAGES
    assert kept[-1] == ("user" if 99 % 2 == 0 else "assistant", "99" * 10)
    huge = [message(i, size=domain.MAX_CONTEXT_CHARS // 2 + 1) for i in range(3)]
    assert len(domain.chat_context(huge)) == 1  # oldest dropped first
