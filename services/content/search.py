"""Search (use case): the words of a query made safe for the engine, the ranked page
of posts or lessons that match them (one read transaction), its stable cursor, and a
short highlighted snippet of each hit.

    terms = query_terms(request.q)          # INVALID_QUERY for nothing to search
    page = await Search(uow).posts(viewer, terms, after=cursor.decode(token), limit=20)

A query never reaches the engine as syntax: only runs of letters and digits are
kept, lower-cased, so quotes, `*`, `:`, `&`, `NEAR`, parentheses are spaces (or a
plain word), never an operator. The last word is a prefix unless the query ends in
a space or punctuation (type-ahead: "clim" finds "climate")."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kit import paging
from kit.db import UnitOfWork
from kit.errors import InvalidArgument
from services.content.authors import post_views
from services.content.domain import Lesson, Post, PostView, Viewer
from services.content.store.search import (
    TITLE_RANK,
    Position,
    Terms,
    search_lessons,
    search_posts,
)

MAX_QUERY = 200
MAX_TERMS = 16
SNIPPET_CHARS = 200
_WORD = re.compile(r"[^\W_]+")


class SearchType(StrEnum):
    POSTS = "posts"
    LESSONS = "lessons"


def _invalid(field: str, message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(reason, message, details={"field": field})


def search_type(value: str) -> SearchType:
    try:
        return SearchType(value)
    except ValueError:
        raise _invalid("type", "type must be `posts` or `lessons`", "INVALID_SEARCH_TYPE") from None


def query_terms(q: str) -> Terms:
    """The plain words of `q` (see the module doc); INVALID_ARGUMENT `INVALID_QUERY`
    when there is none, or too much."""
    if len(q) > MAX_QUERY:
        raise _invalid("q", f"q must be at most {MAX_QUERY} characters", "INVALID_QUERY")
    words = tuple(dict.fromkeys(word.lower() for word in _WORD.findall(q)))
    if not words:
        raise _invalid("q", "q must contain a word to search for", "INVALID_QUERY")
    if len(words) > MAX_TERMS:
        raise _invalid("q", f"q must have at most {MAX_TERMS} words", "INVALID_QUERY")
    ends_in_word = _WORD.fullmatch(q[-1]) is not None
    return Terms(words, prefix=ends_in_word and q.lower().endswith(words[-1]))


def _pattern(terms: Terms) -> re.Pattern[str]:
    last = len(terms.words) - 1
    alternatives = "|".join(
        re.escape(word) + (r"[^\W_]*" if terms.prefix and i == last else "")
        for i, word in enumerate(terms.words)
    )
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def snippet(terms: Terms, body: str, title: str) -> str:
    """About SNIPPET_CHARS of `body` around its first match (or the start of `title`
    when the body has none): HTML-escaped, each match in `<mark>`…`</mark>`."""
    pattern = _pattern(terms)
    found = pattern.search(body)
    text = body if found is not None else title
    start = 0
    if found is not None and found.start() > SNIPPET_CHARS // 3:
        start = found.start() - SNIPPET_CHARS // 3
        space = text.find(" ", start, found.start())
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    window = text[start:end]
    parts: list[str] = ["…" if start else ""]
    at = 0
    for match in pattern.finditer(window):
        parts += [html.escape(window[at : match.start()]), "<mark>"]
        parts += [html.escape(match.group()), "</mark>"]
        at = match.end()
    parts += [html.escape(window[at:]), "…" if end < len(text) else ""]
    return "".join(parts)


@dataclass(frozen=True)
class SearchCursor:
    """Page tokens of Search: the last hit's (rank, published_at, id), bound to the
    query's type and words (a token of another query is INVALID_PAGE_TOKEN)."""

    rpc: str = "content.Search"

    def _scope(self, kind: SearchType, terms: Terms) -> str:
        key = f"{kind.value}\n{int(terms.prefix)}\n" + "\n".join(terms.words)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def encode(self, kind: SearchType, terms: Terms, after: Position | None) -> str:
        if after is None:
            return ""
        return paging.encode_cursor(
            self.rpc,
            {
                "q": self._scope(kind, terms),
                "r": after.rank,
                "t": after.published_at.isoformat(),
                "id": after.id,
            },
        )

    def decode(self, kind: SearchType, terms: Terms, token: str) -> Position | None:
        position = paging.decode_cursor(self.rpc, token)
        if position is None:
            return None
        rank, when, row_id = position.get("r"), position.get("t"), position.get("id")
        if (
            position.get("q") != self._scope(kind, terms)
            or not isinstance(rank, int)
            or not isinstance(when, str)
            or not isinstance(row_id, str)
        ):
            raise paging.invalid_page_token()
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            raise paging.invalid_page_token() from None
        if parsed.tzinfo is None:
            raise paging.invalid_page_token()
        return Position(rank, parsed, row_id)


@dataclass(frozen=True)
class PostHit:
    view: PostView
    snippet: str
    title_match: bool


@dataclass(frozen=True)
class LessonHit:
    lesson: Lesson
    snippet: str
    title_match: bool


@dataclass(frozen=True)
class HitPage:
    hits: list[PostHit] | list[LessonHit]
    next_after: Position | None


def _after(found: Sequence[tuple[Post | Lesson, int]], limit: int) -> Position | None:
    """The cursor after the page's last hit when `found` holds one more."""
    if len(found) <= limit:
        return None
    item, rank = found[limit - 1]
    when = item.published_at
    return None if when is None else Position(rank, when, item.id)


class Search:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def posts(
        self, viewer: Viewer, terms: Terms, *, after: Position | None, limit: int
    ) -> HitPage:
        async with self._uow.read() as session:
            found = await search_posts(session, terms, after=after, limit=limit)
            page = found[:limit]
            views = await post_views(session, viewer, [post for post, _ in page])
        hits = [
            PostHit(view, snippet(terms, view.post.body, view.post.title), rank == TITLE_RANK)
            for view, (_, rank) in zip(views, page, strict=True)
        ]
        return HitPage(hits, _after(found, limit))

    async def lessons(self, terms: Terms, *, after: Position | None, limit: int) -> HitPage:
        async with self._uow.read() as session:
            found = await search_lessons(session, terms, after=after, limit=limit)
        page = found[:limit]
        hits = [
            LessonHit(lesson, snippet(terms, lesson.body, lesson.topic), rank == TITLE_RANK)
            for lesson, rank in page
        ]
        return HitPage(hits, _after(found, limit))
