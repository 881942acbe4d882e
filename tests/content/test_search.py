"""Search, over real gRPC on the real database (PostgreSQL's tsvector + GIN, or
SQLite's FTS5 when the tests run on SQLite, as `make run` does): what is found, in
what order, what never is, paging without repeats, and malformed queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from klik.content.v1 import content_pb2
from services.content import store
from services.content.domain import ContentType, Lesson, LessonStatus
from tests.content.conftest import ContentStack, new_user
from tests.content.support import failure


@pytest.fixture(params=["configured", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, make_database_url: Callable[[], str], tmp_path: Path
) -> str:
    """Every test twice: on the configured database (PostgreSQL in CI) and on SQLite,
    the embedded default `make run` uses, whose index is FTS5 rather than tsvector."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'search.sqlite'}"
    return make_database_url()


def word() -> str:
    """A word no other test's rows contain (letters only: digits would too)."""
    return "w" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def post(
    stack: ContentStack,
    author: str,
    title: str,
    body: str,
    *,
    visibility: str = "public",
    published: bool = True,
) -> content_pb2.Post:
    created = await stack.content.CreatePost(
        content_pb2.CreatePostRequest(title=title, body=body, visibility=visibility),
        metadata=stack.user(author),
    )
    made: content_pb2.Post = created.post
    if published:
        reply = await stack.content.PublishPost(
            content_pb2.PublishPostRequest(post_id=made.id), metadata=stack.user(author)
        )
        made = reply.post
    return made


async def lesson(
    stack: ContentStack,
    owner: str,
    topic: str,
    body: str,
    *,
    kind: ContentType = ContentType.LESSON,
    difficulty: int = 3,
    published: bool = True,
) -> content_pb2.Lesson:
    """A `ready` lesson as its job would leave it (stored directly), then published
    through the RPC."""
    ready = Lesson(
        id=str(uuid.uuid4()),
        owner_id=owner,
        topic=topic,
        content_type=kind,
        difficulty=difficulty,
        status=LessonStatus.READY,
        body=body,
        job_id="",
        created_at=datetime.now(UTC),
    )
    async with stack.session() as session, session.begin():
        await store.add_copy(session, ready, idempotency_key="", fingerprint="")
    if published:
        await stack.content.PublishLesson(
            content_pb2.PublishLessonRequest(lesson_id=ready.id), metadata=stack.user(owner)
        )
    reply = await stack.content.GetLesson(
        content_pb2.GetLessonRequest(lesson_id=ready.id), metadata=stack.user(owner)
    )
    found: content_pb2.Lesson = reply.lesson
    return found


async def search(
    stack: ContentStack, q: str, kind: str = "posts", *, size: int = 0, token: str = ""
) -> content_pb2.SearchResponse:
    reply: content_pb2.SearchResponse = await stack.content.Search(
        content_pb2.SearchRequest(q=q, type=kind, page_size=size, page_token=token),
        metadata=stack.user(new_user()),
    )
    return reply


def post_ids(reply: content_pb2.SearchResponse) -> list[str]:
    return [hit.post.id for hit in reply.hits]


async def test_finds_posts_by_a_body_word_title_matches_first(content: ContentStack) -> None:
    key, author = word(), new_user()
    body_only = await post(content, author, "Unrelated heading", f"the {key} is in the body")
    titled = await post(content, author, f"All about {key}", "nothing else")
    # Newer, but a body-only match: still after the title match.
    newer_body = await post(content, author, "Later", f"{key.upper()} again, shouted")

    reply = await search(content, key)
    assert post_ids(reply) == [titled.id, newer_body.id, body_only.id]
    first = reply.hits[0]
    assert first.title_match and not reply.hits[1].title_match
    assert first.post.author.user_id == author
    assert first.post.status == "published"
    assert f"<mark>{key}</mark>" in reply.hits[2].snippet
    assert reply.next_page_token == ""


async def test_never_returns_drafts_private_hidden_deleted(content: ContentStack) -> None:
    key, author = word(), new_user()
    shown = await post(content, author, key, "public and published")
    await post(content, author, key, "a draft", published=False)
    await post(content, author, key, "private", visibility="private")
    hidden = await post(content, author, key, "hidden by a moderator")
    await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=hidden.id, reason="spam"),
        metadata=content.user(new_user(), "moderator"),
    )
    deleted = await post(content, author, key, "deleted by its author")
    await content.content.DeletePost(
        content_pb2.DeletePostRequest(post_id=deleted.id), metadata=content.user(author)
    )
    # Not even their author finds them.
    reply = await content.content.Search(
        content_pb2.SearchRequest(q=key, type="posts"), metadata=content.user(author)
    )
    assert post_ids(reply) == [shown.id]


async def test_content_of_a_deleted_user_leaves_search(content: ContentStack) -> None:
    key, gone, stays = word(), new_user(), new_user()
    await post(content, gone, key, "theirs")
    await lesson(content, gone, key, "their lesson")
    kept = await post(content, stays, key, "mine")
    assert len((await search(content, key)).hits) == 2
    await content.delete_user(gone)
    await content.drained()
    assert post_ids(await search(content, key)) == [kept.id]
    assert list((await search(content, key, "lessons")).hits) == []


async def test_edits_reindex_and_prefix_matches_the_last_word(content: ContentStack) -> None:
    key, author = word(), new_user()
    found = await post(content, author, "Title", f"{key}ology explained")
    # The last word is a prefix: type-ahead.
    assert post_ids(await search(content, f"explained {key}")) == [found.id]
    # A complete word before a space is not.
    assert post_ids(await search(content, f"{key} explained")) == []
    await content.content.UpdatePost(
        content_pb2.UpdatePostRequest(
            post_id=found.id,
            post=content_pb2.Post(body="rewritten"),
            update_mask={"paths": ["body"]},
        ),
        metadata=content.user(author),
    )
    assert post_ids(await search(content, key)) == []
    assert found.id in post_ids(await search(content, "rewritten", size=100))


async def test_lessons_by_topic_and_body(content: ContentStack) -> None:
    key, owner = word(), new_user()
    by_body = await lesson(content, owner, "Fractions", f"we use {key} here")
    by_topic = await lesson(content, owner, f"{key} for beginners", "basics", kind=ContentType.QUIZ)
    await lesson(content, owner, key, "not published", published=False)
    reply = await search(content, key, "lessons")
    assert [hit.lesson.id for hit in reply.hits] == [by_topic.id, by_body.id]
    assert reply.hits[0].title_match and reply.hits[0].lesson.content_type == "quiz"
    assert "<mark>" in reply.hits[1].snippet


async def test_cursors_page_through_without_repeats(content: ContentStack) -> None:
    key, author = word(), new_user()
    made = {(await post(content, author, f"{key} {i}", "x")).id for i in range(4)}
    made |= {(await post(content, author, f"n{i}", f"body {key}")).id for i in range(3)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = await search(content, key, size=2, token=token)
        seen += post_ids(reply)
        pages += 1
        # A post published while paging does not shift later pages.
        if pages == 1:
            await post(content, author, key, "late")
        token = reply.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert made <= set(seen)
    # Title matches (4 and the late one) come before the 3 body matches.
    assert set(seen[-3:]) <= made
    # A token of another query is refused.
    first = await search(content, key, size=2)
    code, reason, _ = await failure(
        content.content.Search(
            content_pb2.SearchRequest(q="other", type="posts", page_token=first.next_page_token),
            metadata=content.user(new_user()),
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


async def test_search_syntax_is_plain_words(content: ContentStack) -> None:
    key, author = word(), new_user()
    found = await post(content, author, f"{key} NEAR stars", "body")
    for q in (
        f'"{key}',
        f"{key}*",
        f"{key}:",
        f"{key} & stars",
        f"NEAR({key} stars)",
        f"{key}:*",
        f"{key} | -stars !",
        f"'{key}' \\ ~",
    ):
        assert post_ids(await search(content, q)) == [found.id], q
    assert post_ids(await search(content, f"{key} near")) == [found.id]


async def test_malformed_queries(content: ContentStack) -> None:
    for q, kind, reason in (
        ("", "posts", "INVALID_QUERY"),
        ("  *** :: ", "posts", "INVALID_QUERY"),
        ("x" * 201, "posts", "INVALID_QUERY"),
        (" ".join(f"w{i}" for i in range(17)), "posts", "INVALID_QUERY"),
        ("fine", "", "INVALID_SEARCH_TYPE"),
        ("fine", "chats", "INVALID_SEARCH_TYPE"),
    ):
        code, got, metadata = await failure(
            content.content.Search(
                content_pb2.SearchRequest(q=q, type=kind), metadata=content.user(new_user())
            )
        )
        assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason), (q, kind)
        assert metadata["field"] in ("q", "type")
    code, reason, _ = await failure(
        content.content.Search(
            content_pb2.SearchRequest(q="fine", type="posts", page_token="zz"),
            metadata=content.user(new_user()),
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    with_no_token = content.content.Search(content_pb2.SearchRequest(q="fine", type="posts"))
    try:
        await with_no_token
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    else:
        raise AssertionError("Search answered without a token")
