"""The content service's rules, with no I/O: what posts, assets, chats, messages and
lessons are, who may see or change them, the input limits, and the prompt a lesson
is generated from. The store reads and writes these values; the use cases in
`posts.py`, `chats.py` and `lessons.py` ask the functions here what is allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from kit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

# Input limits (API.md: clear INVALID_ARGUMENT naming the field). Lengths are in
# characters; the store's columns allow at least these.
MAX_TITLE = 200
MAX_BODY = 20_000
MAX_ASSETS_PER_POST = 10
MAX_MESSAGE = 8_000
MAX_TOPIC = 300
MAX_MODEL = 100
MAX_REASON = 500
MAX_COMMENT = 5_000
MAX_HANDLE = 64
MAX_DISPLAY_NAME = 200
MAX_ID = 64
MIN_DIFFICULTY, MAX_DIFFICULTY = 1, 10

STAFF_ROLES = ("moderator", "admin")
JOB_KINDS = ("TEXT", "CHAT", "IMAGE", "AVATAR_VIDEO", "IMAGE_TO_VIDEO")
POST_FIELDS = ("title", "body", "asset_ids", "visibility")


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class PostStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    HIDDEN = "hidden"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class ContentType(StrEnum):
    LESSON = "lesson"
    QUIZ = "quiz"
    ACTIVITY = "activity"


class LessonStatus(StrEnum):
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"
    PUBLISHED = "published"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: the token's user and role."""

    user_id: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class Post:
    id: str
    author_id: str
    title: str
    body: str
    asset_ids: tuple[str, ...]
    visibility: Visibility
    status: PostStatus
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None
    # Kept by the store beside the likes and comments they count.
    like_count: int = 0
    comment_count: int = 0


@dataclass(frozen=True)
class Profile:
    """A user's public profile as content knows it from auth's events: never the
    email. A user content has heard nothing of yet has only the id."""

    user_id: str
    handle: str = ""
    display_name: str = ""
    avatar_url: str = ""


@dataclass(frozen=True)
class PostView:
    """A post as one viewer sees it: with its author, whether they liked it, and
    its attached assets (whoever may see the post sees its media)."""

    post: Post
    author: Profile
    liked_by_me: bool = False
    assets: tuple[Asset, ...] = ()


@dataclass(frozen=True)
class Comment:
    id: str
    post_id: str
    author_id: str
    # The top-level comment this replies to; "" for a top-level comment.
    parent_id: str
    body: str
    created_at: datetime
    updated_at: datetime
    like_count: int = 0


@dataclass(frozen=True)
class CommentView:
    comment: Comment
    author: Profile
    liked_by_me: bool = False


class NotificationKind(StrEnum):
    FOLLOW = "follow"
    COMMENT = "comment"
    REPLY = "reply"
    LIKE = "like"
    GENERATION = "generation"
    MODERATION = "moderation"


@dataclass(frozen=True)
class Notification:
    id: str
    user_id: str
    kind: NotificationKind
    actor_id: str
    subject_id: str
    post_id: str
    count: int
    note: str
    read: bool
    created_at: datetime


def notification_text(kind: NotificationKind, count: int, actor: str, note: str = "") -> str:
    """The words shown to the recipient; `actor` is the actor's display name."""
    who = actor or "Someone"
    if kind is NotificationKind.LIKE:
        if count > 1:
            return f"{count} people liked your post"
        return f"{who} liked your post"
    if kind is NotificationKind.FOLLOW:
        return f"{who} started following you"
    if kind is NotificationKind.COMMENT:
        return f"{who} commented on your post"
    if kind is NotificationKind.REPLY:
        return f"{who} replied to your comment"
    if kind is NotificationKind.GENERATION:
        return note or "Your generation is ready"
    return f"A moderator hid your post: {note}" if note else "A moderator hid your post"


class ReportStatus(StrEnum):
    OPEN = "open"
    ACTIONED = "actioned"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Report:
    id: str
    reporter_id: str
    target_kind: str
    target_id: str
    reason: str
    status: ReportStatus
    created_at: datetime


@dataclass(frozen=True)
class ModerationAction:
    seq: int
    moderator_id: str
    action: str
    target_kind: str
    target_id: str
    reason: str
    created_at: datetime


class LikeTarget(StrEnum):
    POST = "post"
    COMMENT = "comment"


@dataclass(frozen=True)
class PostDraft:
    """Validated values of a post's editable fields."""

    title: str
    body: str
    asset_ids: tuple[str, ...]
    visibility: Visibility


@dataclass(frozen=True)
class Asset:
    id: str
    owner_id: str
    job_id: str
    kind: str
    text: str
    url: str
    mime_type: str
    created_at: datetime


@dataclass(frozen=True)
class Chat:
    id: str
    owner_id: str
    title: str
    model: str
    created_at: datetime
    updated_at: datetime
    # The assistant the chat speaks as ("" for none) and the version of it the chat
    # answers as (kept when the assistant is deleted: see `services.content.assistants`).
    assistant_id: str = ""
    persona: Persona | None = None

    @property
    def answering_model(self) -> str:
        return self.persona.model if self.persona is not None else self.model


@dataclass(frozen=True)
class Message:
    id: str
    chat_id: str
    role: Role
    content: str
    job_id: str
    created_at: datetime
    # Position in the chat: the turn of the user message it belongs to, then 0 for
    # the user message and 1 for the reply (or the failure note) to it.
    turn: int = 0
    failed: bool = False


@dataclass(frozen=True)
class Lesson:
    id: str
    owner_id: str
    topic: str
    content_type: ContentType
    difficulty: int
    status: LessonStatus
    body: str
    job_id: str
    created_at: datetime
    error: str = ""
    published_at: datetime | None = None


# --- input checks -------------------------------------------------------------


def _invalid(field: str, message: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(reason, message, details={"field": field})


def text_field(field: str, value: str, limit: int, *, required: bool = False) -> str:
    """`value` unless it is over `limit` characters (or blank when `required`)."""
    if required and not value.strip():
        raise _invalid(field, f"{field} must not be blank")
    if len(value) > limit:
        raise _invalid(field, f"{field} is longer than {limit} characters")
    return value


def visibility(value: str) -> Visibility:
    try:
        return Visibility(value or Visibility.PUBLIC)
    except ValueError:
        raise _invalid(
            "visibility", "visibility must be `public` or `private`", "INVALID_VISIBILITY"
        ) from None


def asset_ids(values: Iterable[str]) -> tuple[str, ...]:
    """The ids in order, duplicates dropped; too many is refused."""
    unique = tuple(dict.fromkeys(values))
    if len(unique) > MAX_ASSETS_PER_POST:
        raise _invalid("asset_ids", f"a post shows at most {MAX_ASSETS_PER_POST} assets")
    for value in unique:
        if not plausible_id(value):
            raise unknown_asset(value)
    return unique


def post_draft(title: str, body: str, ids: Iterable[str], visibility_: str) -> PostDraft:
    return PostDraft(
        title=text_field("title", title, MAX_TITLE, required=True),
        body=text_field("body", body, MAX_BODY),
        asset_ids=asset_ids(ids),
        visibility=visibility(visibility_),
    )


def update_paths(paths: Sequence[str], fields: tuple[str, ...] = POST_FIELDS) -> tuple[str, ...]:
    """The fields an update mask names (UpdatePost's by default, among `fields`);
    an empty mask means all of them."""
    if not paths:
        return fields
    for path in paths:
        if path not in fields:
            raise _invalid(
                "update_mask",
                f"{path!r} cannot be updated (only {', '.join(fields)})",
                "INVALID_UPDATE_MASK",
            )
    return tuple(dict.fromkeys(paths))


def job_kind(value: str) -> str:
    """An asset kind to filter by: a job's kind, or UPLOAD."""
    if value and value not in ASSET_KINDS:
        raise _invalid("kind", f"kind must be one of {', '.join(ASSET_KINDS)}", "INVALID_KIND")
    return value


def content_type(value: str) -> ContentType:
    try:
        return ContentType(value)
    except ValueError:
        raise _invalid(
            "content_type",
            "content_type must be `lesson`, `quiz` or `activity`",
            "INVALID_CONTENT_TYPE",
        ) from None


def difficulty(value: int) -> int:
    if not MIN_DIFFICULTY <= value <= MAX_DIFFICULTY:
        raise _invalid(
            "difficulty",
            f"difficulty must be from {MIN_DIFFICULTY} to {MAX_DIFFICULTY}",
            "INVALID_DIFFICULTY",
        )
    return value


def plausible_id(value: str) -> bool:
    """An id the store could hold; anything else cannot name an existing row."""
    return 0 < len(value) <= MAX_ID


def comment_body(value: str) -> str:
    return text_field("body", value, MAX_COMMENT, required=True)


# --- who sees and changes what ------------------------------------------------


class Superseded(Aborted):
    """The hidden message or lesson a started job was to confirm is gone: a concurrent
    copy of the request (same idempotency_key) was refused and removed it."""

    def __init__(self) -> None:
        super().__init__(
            "REQUEST_SUPERSEDED",
            "a concurrent copy of this request was refused and nothing was kept; retry",
        )


def post_not_found(post_id: str) -> NotFound:
    return NotFound("POST_NOT_FOUND", "post not found", details={"post_id": post_id})


def unknown_asset(asset_id: str) -> InvalidArgument:
    return InvalidArgument(
        "UNKNOWN_ASSET",
        "an asset id is not one of your assets",
        details={"field": "asset_ids", "asset_id": asset_id},
    )


def can_see(post: Post, viewer: Viewer) -> bool:
    """Published public posts are for everyone; the rest only for their author and
    staff (moderators, admins)."""
    if post.author_id == viewer.user_id or viewer.is_staff:
        return True
    return post.status is PostStatus.PUBLISHED and post.visibility is Visibility.PUBLIC


def visible(post: Post | None, post_id: str, viewer: Viewer) -> Post:
    """The post if the viewer may see it; NOT_FOUND otherwise (never 403: that would
    tell them it exists)."""
    if post is None or not can_see(post, viewer):
        raise post_not_found(post_id)
    return post


def require_author(post: Post, viewer: Viewer) -> None:
    if post.author_id != viewer.user_id:
        raise PermissionDenied("NOT_AUTHOR", "only the post's author can do this")


def require_author_or_staff(post: Post, viewer: Viewer) -> None:
    if post.author_id != viewer.user_id and not viewer.is_staff:
        raise PermissionDenied("NOT_AUTHOR", "only the post's author or a moderator can do this")


def publish(post: Post, now: datetime) -> Post | None:
    """The published post, or None when it already is published (no change)."""
    if post.status is PostStatus.HIDDEN:
        raise FailedPrecondition("POST_HIDDEN", "a moderator hid this post")
    if post.status is PostStatus.PUBLISHED:
        return None
    return _replace_post(post, status=PostStatus.PUBLISHED, updated_at=now, published_at=now)


def unhide(post: Post, now: datetime) -> Post | None:
    """The published post again, or None when it is not hidden."""
    if post.status is not PostStatus.HIDDEN:
        return None
    return _replace_post(post, status=PostStatus.PUBLISHED, updated_at=now)


def report_target(kind: str) -> LikeTarget:
    try:
        return LikeTarget(kind)
    except ValueError:
        raise _invalid(
            "target_kind", "target_kind must be `post` or `comment`", "INVALID_TARGET_KIND"
        ) from None


def report_not_found(report_id: str) -> NotFound:
    return NotFound("REPORT_NOT_FOUND", "report not found", details={"report_id": report_id})


def hide(post: Post, now: datetime) -> Post | None:
    """The hidden post, or None when it already is hidden."""
    if post.status is PostStatus.HIDDEN:
        return None
    return _replace_post(post, status=PostStatus.HIDDEN, updated_at=now)


def post_changes(
    paths: Sequence[str], *, title: str, body: str, ids: Iterable[str], visibility_: str
) -> dict[str, object]:
    """The validated new values of the fields an UpdatePost names (and only those:
    a field left out of the mask is not checked, since it is not changed)."""
    changes: dict[str, object] = {}
    if "title" in paths:
        changes["title"] = text_field("title", title, MAX_TITLE, required=True)
    if "body" in paths:
        changes["body"] = text_field("body", body, MAX_BODY)
    if "asset_ids" in paths:
        changes["asset_ids"] = asset_ids(ids)
    if "visibility" in paths:
        changes["visibility"] = visibility(visibility_)
    return changes


def apply_update(post: Post, changes: Mapping[str, object], now: datetime) -> Post:
    return _replace_post(post, updated_at=now, **changes)


def _replace_post(post: Post, **changes: object) -> Post:
    return replace(post, **changes)  # type: ignore[arg-type]


def require_commentable(post: Post) -> None:
    """Comments and likes are for published posts only."""
    if post.status is not PostStatus.PUBLISHED:
        raise FailedPrecondition(
            "POST_NOT_PUBLISHED", "only published posts take comments and likes"
        )


def comment_not_found(comment_id: str) -> NotFound:
    return NotFound("COMMENT_NOT_FOUND", "comment not found", details={"comment_id": comment_id})


def reply_parent(parent: Comment | None, post_id: str, parent_id: str) -> str:
    """The parent a reply hangs on: a live top-level comment of the same post (one
    level of replies only); INVALID_ARGUMENT `INVALID_PARENT` otherwise."""
    if parent is None or parent.post_id != post_id or parent.parent_id:
        raise InvalidArgument(
            "INVALID_PARENT",
            "parent_id must be a top-level comment of the same post",
            details={"field": "parent_id", "parent_id": parent_id},
        )
    return parent.id


def require_comment_author(comment: Comment, viewer: Viewer) -> None:
    if comment.author_id != viewer.user_id:
        raise PermissionDenied("NOT_AUTHOR", "only the comment's author can do this")


def require_comment_author_or_staff(comment: Comment, viewer: Viewer) -> None:
    if comment.author_id != viewer.user_id and not viewer.is_staff:
        raise PermissionDenied("NOT_AUTHOR", "only the comment's author or a moderator can do this")


def user_not_found(user: str) -> NotFound:
    return NotFound("USER_NOT_FOUND", "no such user", details={"user": user})


def followee(viewer: Viewer, user_id: str) -> str:
    """Whom the viewer may follow: anyone else."""
    if user_id == viewer.user_id:
        raise InvalidArgument(
            "CANNOT_FOLLOW_SELF", "you cannot follow yourself", details={"field": "user_id"}
        )
    return user_id


def read_ids(ids: Sequence[str], all_: bool, limit: int) -> tuple[str, ...] | None:
    """The notification ids a MarkNotificationsRead names; None for all of them."""
    if all_:
        return None
    if not ids:
        raise _invalid("ids", "name the notifications to mark read, or set all")
    if len(ids) > limit:
        raise _invalid("ids", f"at most {limit} ids at once")
    return tuple(value for value in dict.fromkeys(ids) if plausible_id(value))


def mutee(viewer: Viewer, user_id: str) -> str:
    """Whom the viewer may mute: anyone else."""
    if user_id == viewer.user_id:
        raise InvalidArgument(
            "CANNOT_MUTE_SELF", "you cannot mute yourself", details={"field": "user_id"}
        )
    if not plausible_id(user_id):
        raise user_not_found(user_id)
    return user_id


def lesson_visible(lesson: Lesson | None, lesson_id: str, viewer: Viewer) -> Lesson:
    if lesson is None or (
        lesson.owner_id != viewer.user_id and lesson.status is not LessonStatus.PUBLISHED
    ):
        raise lesson_not_found(lesson_id)
    return lesson


def lesson_not_found(lesson_id: str) -> NotFound:
    return NotFound("LESSON_NOT_FOUND", "lesson not found", details={"lesson_id": lesson_id})


def chat_not_found(chat_id: str) -> NotFound:
    return NotFound("CHAT_NOT_FOUND", "chat not found", details={"chat_id": chat_id})


def asset_not_found(asset_id: str) -> NotFound:
    return NotFound("ASSET_NOT_FOUND", "asset not found", details={"asset_id": asset_id})


def publish_lesson(lesson: Lesson, now: datetime) -> Lesson | None:
    """The published lesson, or None when it already is published."""
    if lesson.status is LessonStatus.PUBLISHED:
        return None
    _require_lesson_ready(lesson)
    return replace(lesson, status=LessonStatus.PUBLISHED, published_at=now)


def _require_lesson_ready(lesson: Lesson) -> None:
    if lesson.status not in (LessonStatus.READY, LessonStatus.PUBLISHED):
        raise FailedPrecondition(
            "LESSON_NOT_READY", f"the lesson is {lesson.status.value}, not ready"
        )


# --- lessons, managed: edit, delete, duplicate, unpublish, catalogue filters ----

LESSON_FIELDS = ("topic", "content_type", "difficulty", "body")
MAX_LESSON_BODY = 100_000


def require_lesson_owner(lesson: Lesson, viewer: Viewer) -> None:
    """Only the owner changes a lesson (others see it only when it is published)."""
    if lesson.owner_id != viewer.user_id:
        raise PermissionDenied("NOT_OWNER", "only the lesson's owner can do this")


def lesson_changes(
    paths: Sequence[str], *, topic: str, content_type_: str, difficulty_: int, body: str
) -> dict[str, object]:
    """The validated new values of the fields an UpdateLesson names (only those)."""
    changes: dict[str, object] = {}
    if "topic" in paths:
        changes["topic"] = text_field("topic", topic, MAX_TOPIC, required=True)
    if "content_type" in paths:
        changes["content_type"] = content_type(content_type_)
    if "difficulty" in paths:
        changes["difficulty"] = difficulty(difficulty_)
    if "body" in paths:
        changes["body"] = text_field("body", body, MAX_LESSON_BODY)
    return changes


def edit_lesson(lesson: Lesson, changes: Mapping[str, object]) -> Lesson:
    """The edited lesson; not while its job may still write the body."""
    if lesson.status is LessonStatus.GENERATING:
        raise FailedPrecondition("LESSON_GENERATING", "the lesson is still being generated")
    return replace(lesson, **changes)  # type: ignore[arg-type]


def unpublish_lesson(lesson: Lesson) -> Lesson | None:
    """The lesson back to `ready`, or None when it is not published."""
    if lesson.status is not LessonStatus.PUBLISHED:
        return None
    return replace(lesson, status=LessonStatus.READY, published_at=None)


def lesson_copy(lesson: Lesson, viewer: Viewer, new_id: str, now: datetime) -> Lesson:
    """A `ready` copy of a lesson the viewer sees, owned by the viewer, with no job."""
    _require_lesson_ready(lesson)
    return Lesson(
        id=new_id,
        owner_id=viewer.user_id,
        topic=lesson.topic,
        content_type=lesson.content_type,
        difficulty=lesson.difficulty,
        status=LessonStatus.READY,
        body=lesson.body,
        job_id="",
        created_at=now,
    )


def content_type_filter(value: str) -> ContentType | None:
    """A list filter: "" is every content type."""
    return content_type(value) if value else None


def difficulty_filter(value: int) -> int:
    """A list filter: 0 is every difficulty."""
    return difficulty(value) if value else 0


# --- generation ---------------------------------------------------------------

_SHAPES = {
    ContentType.LESSON: (
        "Write a self-contained lesson about {topic}. Start with the learning goals, "
        "explain the ideas step by step with examples, and end with a short summary."
    ),
    ContentType.QUIZ: (
        "Write a quiz about {topic}: ten questions, each with four options (A-D), "
        "followed by an answer key that explains each correct answer."
    ),
    ContentType.ACTIVITY: (
        "Design a hands-on learning activity about {topic}: the goal, the materials, "
        "numbered steps, and questions to reflect on afterwards."
    ),
}


def _level(value: int) -> str:
    if value <= 3:
        return "a beginner: use plain words, short sentences and everyday examples"
    if value <= 7:
        return "an intermediate learner: assume the basics and introduce precise terms"
    return "an advanced learner: be rigorous, cover edge cases and deeper connections"


def lesson_prompt(topic: str, kind: ContentType, level: int) -> str:
    """The TEXT prompt for a lesson: the shape of the content type, pitched at the
    difficulty (1 easiest, 10 hardest)."""
    shape = _SHAPES[kind].format(topic=topic.strip())
    return f"{shape}\nDifficulty {level} of 10: write for {_level(level)}."


LESSON_SYSTEM_PROMPT = "You are a patient, accurate teacher. Answer in Markdown."


# How much of a chat goes with each new message as its context: the most recent
# messages within these bounds (generation refuses jobs whose texts are too long,
# and a long chat must not become one that can take no new message).
MAX_CONTEXT_MESSAGES = 40
MAX_CONTEXT_CHARS = 60_000


def chat_context(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """The conversation so far as CHAT history, (role, content) oldest first: the
    latest messages that fit the bounds. Failure notes are ours, not the model's
    words, and are left out."""
    kept: list[tuple[str, str]] = []
    size = 0
    for message in reversed(messages):
        if message.failed:
            continue
        size += len(message.content)
        if len(kept) >= MAX_CONTEXT_MESSAGES or size > MAX_CONTEXT_CHARS:
            break
        kept.append((message.role.value, message.content))
    kept.reverse()
    return kept


def failure_note(reason: str) -> str:
    """The assistant's place in a chat when its reply could not be generated."""
    return f"[The reply could not be generated: {reason or 'the generation failed'}]"


def job_key(kind: str, own_id: str) -> str:
    """The idempotency key of the generation job for one message or lesson: derived
    from our own row id, so a retried CreateJob returns the same job."""
    return f"content:{kind}:{own_id}"


# --- assistants -----------------------------------------------------------------
# A saved persona (name, instructions, model, temperature) a chat can speak as.

MAX_ASSISTANT_NAME = 100
MAX_ASSISTANT_DESCRIPTION = 500
MAX_INSTRUCTIONS = 8_000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.0, 2.0
ASSISTANT_FIELDS = ("name", "description", "instructions", "model", "temperature", "visibility")


@dataclass(frozen=True)
class Persona:
    """What a reply is generated as: the assistant's instructions (the system
    prompt), model and temperature (None: the model's default)."""

    name: str
    instructions: str
    model: str
    temperature: float | None


@dataclass(frozen=True)
class Assistant:
    id: str
    owner_id: str
    name: str
    description: str
    instructions: str
    model: str
    temperature: float | None
    visibility: Visibility
    created_at: datetime
    updated_at: datetime

    @property
    def persona(self) -> Persona:
        return Persona(self.name, self.instructions, self.model, self.temperature)


@dataclass(frozen=True)
class AssistantView:
    assistant: Assistant
    owner: Profile


@dataclass(frozen=True)
class AssistantDraft:
    """A CreateAssistant request, validated (but for the model's existence, which
    only generation knows)."""

    name: str
    description: str
    instructions: str
    model: str
    temperature: float | None
    visibility: Visibility


def assistant_draft(
    *,
    name: str,
    description: str,
    instructions_: str,
    model: str,
    temperature_: float | None,
    visibility_: str,
) -> AssistantDraft:
    return AssistantDraft(
        name=assistant_name(name),
        description=assistant_description(description),
        instructions=instructions(instructions_),
        model=text_field("model", model, MAX_MODEL),
        temperature=temperature(temperature_),
        visibility=assistant_visibility(visibility_),
    )


def assistant_name(value: str) -> str:
    return text_field("name", value, MAX_ASSISTANT_NAME, required=True)


def assistant_description(value: str) -> str:
    return text_field("description", value, MAX_ASSISTANT_DESCRIPTION)


def instructions(value: str) -> str:
    return text_field("instructions", value, MAX_INSTRUCTIONS, required=True)


def temperature(value: float | None) -> float | None:
    if value is not None and not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise _invalid(
            "temperature",
            f"temperature must be from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}",
            "INVALID_TEMPERATURE",
        )
    return value


def assistant_visibility(value: str) -> Visibility:
    """As a post's visibility, but an assistant is `private` unless said otherwise."""
    return visibility(value or Visibility.PRIVATE)


def assistant_changes(
    paths: Sequence[str],
    *,
    name: str,
    description: str,
    instructions_: str,
    model: str,
    temperature_: float | None,
    visibility_: str,
) -> dict[str, object]:
    """The validated new values of the fields an UpdateAssistant names (an empty
    mask names them all). The model is checked against the catalogue by the caller."""
    for path in paths:
        if path not in ASSISTANT_FIELDS:
            raise _invalid(
                "update_mask",
                f"{path!r} cannot be updated (only {', '.join(ASSISTANT_FIELDS)})",
                "INVALID_UPDATE_MASK",
            )
    paths = tuple(dict.fromkeys(paths)) or ASSISTANT_FIELDS
    checks: dict[str, Callable[[], object]] = {
        "name": lambda: assistant_name(name),
        "description": lambda: assistant_description(description),
        "instructions": lambda: instructions(instructions_),
        "model": lambda: text_field("model", model, MAX_MODEL),
        "temperature": lambda: temperature(temperature_),
        "visibility": lambda: assistant_visibility(visibility_),
    }
    return {path: checks[path]() for path in paths}


def assistant_not_found(assistant_id: str) -> NotFound:
    return NotFound(
        "ASSISTANT_NOT_FOUND", "assistant not found", details={"assistant_id": assistant_id}
    )


def visible_assistant(assistant: Assistant | None, viewer: Viewer, assistant_id: str) -> Assistant:
    """The assistant if the viewer may see (and chat with) it: their own, or public."""
    if assistant is None or (
        assistant.owner_id != viewer.user_id and assistant.visibility is not Visibility.PUBLIC
    ):
        raise assistant_not_found(assistant_id)
    return assistant


def owned_assistant(assistant: Assistant | None, viewer: Viewer, assistant_id: str) -> Assistant:
    """The assistant if the viewer may change it: their own only."""
    seen = visible_assistant(assistant, viewer, assistant_id)
    if seen.owner_id != viewer.user_id:
        raise PermissionDenied(
            "NOT_OWNER",
            "only the assistant's owner may change it",
            details={"assistant_id": assistant_id},
        )
    return seen


def apply_assistant_update(
    assistant: Assistant, changes: Mapping[str, object], now: datetime
) -> Assistant:
    return replace(assistant, updated_at=now, **changes)  # type: ignore[arg-type]


# ---- Uploads ----

UPLOAD_KIND = "UPLOAD"
ASSET_KINDS = (*JOB_KINDS, UPLOAD_KIND)


@dataclass(frozen=True)
class Upload:
    """A granted upload: one body of `content_type`, exactly `size` bytes, stored
    under `key` before `expires_at`; `asset_id` once completed."""

    id: str
    owner_id: str
    content_type: str
    size: int
    key: str
    expires_at: datetime
    asset_id: str | None
    created_at: datetime


def upload_request(content_type: str, size: int, *, types: Iterable[str], max_bytes: int) -> str:
    """The content type of an acceptable upload request (size checked too)."""
    allowed = tuple(types)
    if content_type not in allowed:
        raise _invalid(
            "content_type",
            f"content_type must be one of {', '.join(allowed)}",
            "UNSUPPORTED_UPLOAD_TYPE",
        )
    if size < 1:
        raise _invalid("size", "size must be a positive number of bytes", "INVALID_UPLOAD_SIZE")
    if size > max_bytes:
        raise InvalidArgument(
            "UPLOAD_TOO_LARGE",
            f"an upload is at most {max_bytes} bytes",
            details={"field": "size", "limit": max_bytes},
        )
    return content_type


def uploads_disabled() -> FailedPrecondition:
    return FailedPrecondition("UPLOADS_DISABLED", "uploads are not configured (KLIK_UPLOAD_SECRET)")


def upload_not_found(upload_id: str) -> NotFound:
    return NotFound("UPLOAD_NOT_FOUND", "upload not found", details={"upload_id": upload_id})


def upload_not_received(upload: Upload, now: datetime) -> FailedPrecondition:
    """Completing an upload whose body is not stored: expired, or not sent yet."""
    if now >= upload.expires_at:
        return FailedPrecondition(
            "UPLOAD_EXPIRED",
            "the upload URL expired before a file was stored: ask for a new upload",
            details={"upload_id": upload.id},
        )
    return FailedPrecondition(
        "UPLOAD_NOT_RECEIVED",
        "no file was stored through the upload URL yet",
        details={"upload_id": upload.id},
    )


# ---- Avatars ----

# The kinds of asset a user may show as their avatar: a picture they uploaded or one
# they generated (both their own images, served under /v1/files).
AVATAR_KINDS = (UPLOAD_KIND, "IMAGE")


def avatar_of(asset: Asset) -> Asset:
    """The asset, when it can be an avatar; INVALID_ARGUMENT `AVATAR_NOT_IMAGE`
    otherwise (text, chat and video assets; anything not `image/*`)."""
    if asset.kind not in AVATAR_KINDS or not asset.mime_type.startswith("image/"):
        raise InvalidArgument(
            "AVATAR_NOT_IMAGE",
            f"an avatar must be an uploaded or generated image, not a {asset.kind} asset",
            details={"asset_id": asset.id, "kind": asset.kind},
        )
    return asset
