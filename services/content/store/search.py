"""Full-text search queries over published public posts and published lessons, on
the index content_0007 built for the engine: the `search_tsv` column (GIN) on
PostgreSQL, the `posts_fts` / `lessons_fts` FTS5 tables on SQLite.

Both engines get the same plain words (`Terms`: letters and digits only, the last
one maybe a prefix) and rank the same way, so a page cursor means one thing: rank 2
when every word is in the title or topic, else 1; then newest publication first,
then id. The rank depends on the row and the words only (not on the rest of the
corpus), so a cursor (rank, published_at, id) resumes exactly after the last hit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.domain import Lesson, LessonStatus, Post, PostStatus, Visibility
from services.content.store.lessons import lesson_of
from services.content.store.posts import post_of
from services.content.store.tables import before, lessons, posts

TITLE_RANK, BODY_RANK = 2, 1


@dataclass(frozen=True)
class Terms:
    """Words to match, lower-case letters and digits only (no search syntax can
    reach the engine); `prefix`: the last word also matches longer words."""

    words: tuple[str, ...]
    prefix: bool


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last hit's rank, publication time and id."""

    rank: int
    published_at: datetime
    id: str


def _tsquery(terms: Terms, weight: str = "") -> str:
    last = len(terms.words) - 1
    return " & ".join(
        f"{word}:{'*' if terms.prefix and i == last else ''}{weight}"
        if weight or (terms.prefix and i == last)
        else word
        for i, word in enumerate(terms.words)
    )


def _fts_query(terms: Terms) -> str:
    last = len(terms.words) - 1
    return " ".join(
        f'"{word}"{"*" if terms.prefix and i == last else ""}' for i, word in enumerate(terms.words)
    )


def _match(
    session: AsyncSession, source: Table, title: str, terms: Terms
) -> tuple[ColumnElement[bool], ColumnElement[int]]:
    """(the row matches every word, its rank) for `source` on this engine."""
    if session.get_bind().dialect.name == "postgresql":
        tsv: ColumnElement[Any] = literal_column(f"{source.name}.search_tsv")
        anywhere = func.to_tsquery("simple", bindparam("search_any", _tsquery(terms)))
        in_title = func.to_tsquery("simple", bindparam("search_title", _tsquery(terms, "A")))
        matches = tsv.op("@@")(anywhere)
        rank = case((tsv.op("@@")(in_title), TITLE_RANK), else_=BODY_RANK)
        return matches, rank
    fts = table(f"{source.name}_fts", column("doc_id"))
    fts_match = literal_column(f"{source.name}_fts").op("MATCH")
    query = _fts_query(terms)
    everywhere = select(fts.c.doc_id).where(fts_match(bindparam("search_any", query)))
    titled = select(fts.c.doc_id).where(
        fts_match(bindparam("search_title", f"{{{title}}} : ({query})"))
    )
    rank = case((source.c.id.in_(titled), TITLE_RANK), else_=BODY_RANK)
    return source.c.id.in_(everywhere), rank


def _page(
    query: Select[Any],
    source: Table,
    rank: ColumnElement[int],
    after: Position | None,
    limit: int,
) -> Select[Any]:
    time, row_id = source.c.published_at, source.c.id
    if after is not None:
        query = query.where(
            or_(
                rank < after.rank,
                and_(rank == after.rank, before(time, row_id, after.published_at, after.id)),
            )
        )
    return query.order_by(rank.desc(), time.desc(), row_id.desc()).limit(limit + 1)


async def search_posts(
    session: AsyncSession, terms: Terms, *, after: Position | None, limit: int
) -> list[tuple[Post, int]]:
    """Published, public, not deleted posts matching `terms`, best first, with their
    rank; `limit + 1` at most so the caller knows whether there is another page."""
    matches, rank = _match(session, posts, "title", terms)
    query = select(posts, rank.label("search_rank")).where(
        matches,
        posts.c.status == PostStatus.PUBLISHED.value,
        posts.c.visibility == Visibility.PUBLIC.value,
        posts.c.deleted_at.is_(None),
    )
    rows = (await session.execute(_page(query, posts, rank, after, limit))).all()
    return [(post_of(row), row.search_rank) for row in rows]


async def search_lessons(
    session: AsyncSession, terms: Terms, *, after: Position | None, limit: int
) -> list[tuple[Lesson, int]]:
    """Published, not deleted lessons matching `terms`, best first, with their rank."""
    matches, rank = _match(session, lessons, "topic", terms)
    query = select(lessons, rank.label("search_rank")).where(
        matches,
        lessons.c.status == LessonStatus.PUBLISHED.value,
        lessons.c.confirmed.is_(True),
        lessons.c.deleted_at.is_(None),
    )
    rows = (await session.execute(_page(query, lessons, rank, after, limit))).all()
    return [(lesson_of(row), row.search_rank) for row in rows]
