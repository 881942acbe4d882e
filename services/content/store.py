"""The content service's tables (its own database only) and the queries on them. The
kit's outbox and processed-events tables are added by the kit's own migration branch.

Soft deletes: posts, chats and lessons carry `deleted_at`; every read here leaves
deleted rows out, so a deleted row is NOT_FOUND everywhere.

`job_links` is where a generation job meets what it was started for (see
`services.content.job_links`): one row per CHAT/TEXT job, written by whichever side comes
first (the RPC that learnt the job id, or the event that carries its outcome) and
completed by the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Row,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from kit.db import as_utc
from services.content.domain import (
    Asset,
    Chat,
    ContentType,
    Lesson,
    LessonStatus,
    Message,
    Post,
    PostStatus,
    Role,
    Visibility,
)

metadata = MetaData()

_SEQ = BigInteger().with_variant(Integer, "sqlite")
_TIME = DateTime(timezone=True)

posts = Table(
    "posts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("author_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    # JSON list of asset ids, in the author's order.
    Column("asset_ids", Text, nullable=False),
    Column("visibility", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("hidden_reason", Text, nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("published_at", _TIME, nullable=True),
    Column("deleted_at", _TIME, nullable=True),
    Index("ix_posts_feed", "status", "visibility", "published_at", "id"),
    Index("ix_posts_author_feed", "author_id", "published_at", "id"),
)

assets = Table(
    "assets",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("owner_id", String(64), nullable=False),
    # One asset per job, whatever happens to the event: the key of exactly-once.
    Column("job_id", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("mime_type", String(100), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Index("ix_assets_owner_seq", "owner_id", "seq"),
)

chats = Table(
    "chats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("model", String(100), nullable=False),
    # Turns handed out so far; SendMessage takes the next one under the chat's lock.
    Column("turns", Integer, nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    Index("ix_chats_owner_activity", "owner_id", "updated_at", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("chat_id", String(36), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("turn", Integer, nullable=False),
    # 0: the user's message of the turn; 1: the reply (or failure note) to it.
    Column("position", SmallInteger, nullable=False),
    Column("role", String(10), nullable=False),
    Column("content", Text, nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("failed", Boolean, nullable=False),
    # A user message is shown once its job is known (SendMessage committed it).
    Column("confirmed", Boolean, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    # A user message's job context (JSON [[role, content], ...]) as first sent, so a
    # retried CreateJob sends the very same request.
    Column("history", Text, nullable=True),
    Column("created_at", _TIME, nullable=False),
    # One user message and at most one reply per turn: a reply is written once.
    UniqueConstraint("chat_id", "turn", "position", name="uq_messages_turn"),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_messages_key"),
)

lessons = Table(
    "lessons",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("topic", String(300), nullable=False),
    Column("content_type", String(10), nullable=False),
    Column("difficulty", SmallInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("body", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("confirmed", Boolean, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_lessons_key"),
    Index("ix_lessons_owner_created", "owner_id", "created_at", "id"),
)

job_links = Table(
    "job_links",
    metadata,
    Column("job_id", String(64), primary_key=True),
    # What the job was started for: `message` (a chat turn) or `lesson`, with its id.
    Column("target_kind", String(10), nullable=True),
    Column("target_id", String(36), nullable=True),
    # How the job ended: `succeeded` or `failed`, with its text or error.
    Column("outcome", String(10), nullable=True),
    Column("text", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("updated_at", _TIME, nullable=False),
)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _opt_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _before(time_col: Any, id_col: Any, when: datetime, row_id: str) -> ColumnElement[bool]:
    """Keyset condition for "newest first" pages: strictly after the last row served."""
    return or_(time_col < when, and_(time_col == when, id_col < row_id))


# ---- posts ---------------------------------------------------------------------------


def _post(row: Row[Any]) -> Post:
    return Post(
        id=row.id,
        author_id=row.author_id,
        title=row.title,
        body=row.body,
        asset_ids=tuple(json.loads(row.asset_ids)),
        visibility=Visibility(row.visibility),
        status=PostStatus(row.status),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        published_at=_opt_time(row.published_at),
    )


def _post_values(post: Post) -> dict[str, Any]:
    return {
        "author_id": post.author_id,
        "title": post.title,
        "body": post.body,
        "asset_ids": json.dumps(list(post.asset_ids)),
        "visibility": post.visibility.value,
        "status": post.status.value,
        "updated_at": post.updated_at,
        "published_at": post.published_at,
    }


async def add_post(session: AsyncSession, post: Post) -> None:
    await session.execute(
        insert(posts).values(
            id=post.id, created_at=post.created_at, hidden_reason="", **_post_values(post)
        )
    )


async def get_post(session: AsyncSession, post_id: str, *, lock: bool = False) -> Post | None:
    query = select(posts).where(posts.c.id == post_id, posts.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _post(row)


async def save_post(session: AsyncSession, post: Post, *, hidden_reason: str | None = None) -> None:
    values = _post_values(post)
    if hidden_reason is not None:
        values["hidden_reason"] = hidden_reason
    await session.execute(update(posts).where(posts.c.id == post.id).values(**values))


async def delete_post(session: AsyncSession, post_id: str, now: datetime) -> None:
    await session.execute(update(posts).where(posts.c.id == post_id).values(deleted_at=now))


async def list_feed(
    session: AsyncSession,
    *,
    author_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Post]:
    """Published public posts, newest publication first; `limit + 1` rows at most so
    the caller knows whether there is another page."""
    query = select(posts).where(
        posts.c.status == PostStatus.PUBLISHED.value,
        posts.c.visibility == Visibility.PUBLIC.value,
        posts.c.deleted_at.is_(None),
    )
    if author_id:
        query = query.where(posts.c.author_id == author_id)
    if after is not None:
        query = query.where(_before(posts.c.published_at, posts.c.id, *after))
    query = query.order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit + 1)
    return [_post(row) for row in (await session.execute(query)).all()]


# ---- assets --------------------------------------------------------------------------


def _asset(row: Row[Any]) -> Asset:
    return Asset(
        id=row.id,
        owner_id=row.owner_id,
        job_id=row.job_id,
        kind=row.kind,
        text=row.text,
        url=row.url,
        mime_type=row.mime_type,
        created_at=as_utc(row.created_at),
    )


async def add_asset(session: AsyncSession, asset: Asset) -> bool:
    """Insert the asset unless its job already has one. Returns whether it did; a
    racing insert for the same job waits for the other transaction, then inserts
    nothing."""
    created = await session.scalar(
        _insert(session)(assets)
        .values(
            id=asset.id,
            owner_id=asset.owner_id,
            job_id=asset.job_id,
            kind=asset.kind,
            text=asset.text,
            url=asset.url,
            mime_type=asset.mime_type,
            created_at=asset.created_at,
        )
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(assets.c.id)
    )
    return created is not None


async def get_asset(session: AsyncSession, asset_id: str, owner_id: str) -> Asset | None:
    row = (
        await session.execute(
            select(assets).where(assets.c.id == asset_id, assets.c.owner_id == owner_id)
        )
    ).first()
    return None if row is None else _asset(row)


async def owned_assets(session: AsyncSession, owner_id: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are assets of `owner_id`."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(assets.c.id).where(assets.c.owner_id == owner_id, assets.c.id.in_(list(ids)))
    )
    return set(rows)


async def list_assets(
    session: AsyncSession, owner_id: str, *, kind: str, before: int | None, limit: int
) -> tuple[list[Asset], int | None]:
    """A user's assets newest first, and the seq to continue below (None: last page)."""
    query = select(assets).where(assets.c.owner_id == owner_id)
    if kind:
        query = query.where(assets.c.kind == kind)
    if before is not None:
        query = query.where(assets.c.seq < before)
    rows = (await session.execute(query.order_by(assets.c.seq.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_asset(row) for row in rows], rows[-1].seq if more else None


# ---- chats and messages --------------------------------------------------------------


def _chat(row: Row[Any]) -> Chat:
    return Chat(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        model=row.model,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


async def add_chat(session: AsyncSession, chat: Chat) -> None:
    await session.execute(
        insert(chats).values(
            id=chat.id,
            owner_id=chat.owner_id,
            title=chat.title,
            model=chat.model,
            turns=0,
            created_at=chat.created_at,
            updated_at=chat.updated_at,
        )
    )


async def get_chat(session: AsyncSession, chat_id: str, owner_id: str) -> Chat | None:
    row = (
        await session.execute(
            select(chats).where(
                chats.c.id == chat_id, chats.c.owner_id == owner_id, chats.c.deleted_at.is_(None)
            )
        )
    ).first()
    return None if row is None else _chat(row)


async def next_turn(session: AsyncSession, chat_id: str, owner_id: str) -> int | None:
    """Take the chat's next turn number; the UPDATE locks the chat row until the
    transaction ends, so concurrent sends to one chat get distinct, ordered turns.
    None when the caller has no such chat."""
    turn = await session.scalar(
        update(chats)
        .where(chats.c.id == chat_id, chats.c.owner_id == owner_id, chats.c.deleted_at.is_(None))
        .values(turns=chats.c.turns + 1)
        .returning(chats.c.turns)
    )
    return None if turn is None else int(turn)


async def touch_chat(session: AsyncSession, chat_id: str, now: datetime) -> None:
    await session.execute(
        update(chats).where(chats.c.id == chat_id, chats.c.updated_at < now).values(updated_at=now)
    )


async def list_chats(
    session: AsyncSession, owner_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Chat]:
    query = select(chats).where(chats.c.owner_id == owner_id, chats.c.deleted_at.is_(None))
    if after is not None:
        query = query.where(_before(chats.c.updated_at, chats.c.id, *after))
    query = query.order_by(chats.c.updated_at.desc(), chats.c.id.desc()).limit(limit + 1)
    return [_chat(row) for row in (await session.execute(query)).all()]


def _message(row: Row[Any]) -> Message:
    return Message(
        id=row.id,
        chat_id=row.chat_id,
        role=Role(row.role),
        content=row.content,
        job_id=row.job_id or "",
        created_at=as_utc(row.created_at),
        turn=row.turn,
        failed=row.failed,
    )


@dataclass(frozen=True)
class PendingMessage:
    """A user message as SendMessage stored it, with what its key was bound to."""

    message: Message
    owner_id: str
    fingerprint: str
    confirmed: bool
    history: list[tuple[str, str]]


def _pending(row: Row[Any]) -> PendingMessage:
    history = [(str(role), str(text)) for role, text in json.loads(row.history or "[]")]
    return PendingMessage(_message(row), row.owner_id, row.fingerprint, row.confirmed, history)


async def add_user_message(
    session: AsyncSession,
    message: Message,
    *,
    owner_id: str,
    idempotency_key: str,
    fingerprint: str,
    history: list[tuple[str, str]],
) -> None:
    await session.execute(
        insert(messages).values(
            history=json.dumps(history),
            id=message.id,
            chat_id=message.chat_id,
            owner_id=owner_id,
            turn=message.turn,
            position=0,
            role=Role.USER.value,
            content=message.content,
            job_id=None,
            failed=False,
            confirmed=False,
            idempotency_key=idempotency_key or None,
            fingerprint=fingerprint,
            created_at=message.created_at,
        )
    )


async def message_by_key(session: AsyncSession, owner_id: str, key: str) -> PendingMessage | None:
    row = (
        await session.execute(
            select(messages).where(
                messages.c.owner_id == owner_id, messages.c.idempotency_key == key
            )
        )
    ).first()
    if row is None:
        return None
    return _pending(row)


async def get_user_message(session: AsyncSession, message_id: str) -> PendingMessage | None:
    row = (
        await session.execute(
            select(messages).where(messages.c.id == message_id, messages.c.position == 0)
        )
    ).first()
    if row is None:
        return None
    return _pending(row)


async def confirm_message(session: AsyncSession, message_id: str, job_id: str) -> bool:
    """False when the row is gone (a concurrent refused copy of the request removed it)."""
    result = await session.execute(
        update(messages).where(messages.c.id == message_id).values(job_id=job_id, confirmed=True)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def forget_message(session: AsyncSession, message_id: str) -> None:
    """Remove a user message whose job could not be started."""
    await session.execute(
        delete(messages).where(messages.c.id == message_id, messages.c.confirmed.is_(False))
    )


async def add_reply(session: AsyncSession, reply: Message, owner_id: str) -> bool:
    """Append the reply (or failure note) of a turn unless it has one. Returns
    whether it did."""
    created = await session.scalar(
        _insert(session)(messages)
        .values(
            id=reply.id,
            chat_id=reply.chat_id,
            owner_id=owner_id,
            turn=reply.turn,
            position=1,
            role=Role.ASSISTANT.value,
            content=reply.content,
            job_id=reply.job_id,
            failed=reply.failed,
            confirmed=True,
            idempotency_key=None,
            fingerprint="",
            history=None,
            created_at=reply.created_at,
        )
        .on_conflict_do_nothing(index_elements=["chat_id", "turn", "position"])
        .returning(messages.c.id)
    )
    return created is not None


async def chat_messages(
    session: AsyncSession,
    chat_id: str,
    *,
    before_turn: int | None = None,
    latest: int | None = None,
) -> list[Message]:
    """A chat's shown messages in order: by turn, each user message before its
    reply. User messages whose job is not yet known are left out. `latest`: only the
    last so many (a send reads its context under the chat's lock: not the whole chat)."""
    query = select(messages).where(
        messages.c.chat_id == chat_id,
        or_(messages.c.position == 1, messages.c.confirmed.is_(True)),
    )
    if before_turn is not None:
        query = query.where(messages.c.turn < before_turn)
    if latest is not None:
        query = query.order_by(messages.c.turn.desc(), messages.c.position.desc()).limit(latest)
        return [_message(row) for row in reversed((await session.execute(query)).all())]
    query = query.order_by(messages.c.turn, messages.c.position)
    return [_message(row) for row in (await session.execute(query)).all()]


# ---- lessons -------------------------------------------------------------------------


def _lesson(row: Row[Any]) -> Lesson:
    return Lesson(
        id=row.id,
        owner_id=row.owner_id,
        topic=row.topic,
        content_type=ContentType(row.content_type),
        difficulty=row.difficulty,
        status=LessonStatus(row.status),
        body=row.body,
        job_id=row.job_id or "",
        created_at=as_utc(row.created_at),
        error=row.error,
    )


@dataclass(frozen=True)
class StoredLesson:
    lesson: Lesson
    fingerprint: str
    confirmed: bool


async def add_lesson(
    session: AsyncSession, lesson: Lesson, *, idempotency_key: str, fingerprint: str
) -> None:
    await session.execute(
        insert(lessons).values(
            id=lesson.id,
            owner_id=lesson.owner_id,
            topic=lesson.topic,
            content_type=lesson.content_type.value,
            difficulty=lesson.difficulty,
            status=lesson.status.value,
            body=lesson.body,
            error="",
            job_id=None,
            confirmed=False,
            idempotency_key=idempotency_key or None,
            fingerprint=fingerprint,
            created_at=lesson.created_at,
            updated_at=lesson.created_at,
        )
    )


def _stored(row: Row[Any]) -> StoredLesson:
    return StoredLesson(_lesson(row), row.fingerprint, row.confirmed)


async def lesson_by_key(session: AsyncSession, owner_id: str, key: str) -> StoredLesson | None:
    row = (
        await session.execute(
            select(lessons).where(
                lessons.c.owner_id == owner_id,
                lessons.c.idempotency_key == key,
                lessons.c.deleted_at.is_(None),
            )
        )
    ).first()
    return None if row is None else _stored(row)


async def get_lesson(
    session: AsyncSession, lesson_id: str, *, lock: bool = False
) -> StoredLesson | None:
    query = select(lessons).where(lessons.c.id == lesson_id, lessons.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _stored(row)


async def confirm_lesson(session: AsyncSession, lesson_id: str, job_id: str) -> bool:
    """False when the row is gone (a concurrent refused copy of the request removed it)."""
    result = await session.execute(
        update(lessons).where(lessons.c.id == lesson_id).values(job_id=job_id, confirmed=True)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def forget_lesson(session: AsyncSession, lesson_id: str) -> None:
    await session.execute(
        delete(lessons).where(lessons.c.id == lesson_id, lessons.c.confirmed.is_(False))
    )


async def save_lesson(session: AsyncSession, lesson: Lesson, now: datetime) -> None:
    await session.execute(
        update(lessons)
        .where(lessons.c.id == lesson.id)
        .values(status=lesson.status.value, body=lesson.body, error=lesson.error, updated_at=now)
    )


async def finish_lesson(
    session: AsyncSession,
    lesson_id: str,
    status: LessonStatus,
    body: str,
    error: str,
    now: datetime,
) -> None:
    """Record the job's outcome on a lesson still generating (never on one already
    finished: an outcome is applied once)."""
    await session.execute(
        update(lessons)
        .where(lessons.c.id == lesson_id, lessons.c.status == LessonStatus.GENERATING.value)
        .values(status=status.value, body=body, error=error, updated_at=now)
    )


async def list_lessons(
    session: AsyncSession, owner_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Lesson]:
    query = select(lessons).where(
        lessons.c.owner_id == owner_id,
        lessons.c.deleted_at.is_(None),
        lessons.c.confirmed.is_(True),
    )
    if after is not None:
        query = query.where(_before(lessons.c.created_at, lessons.c.id, *after))
    query = query.order_by(lessons.c.created_at.desc(), lessons.c.id.desc()).limit(limit + 1)
    return [_lesson(row) for row in (await session.execute(query)).all()]


# ---- job links -----------------------------------------------------------------------


@dataclass(frozen=True)
class JobLink:
    job_id: str
    target_kind: str | None
    target_id: str | None
    outcome: str | None
    text: str
    error: str
    applied: bool

    @property
    def ready(self) -> bool:
        """Both halves are known and the outcome is not yet applied."""
        return self.target_kind is not None and self.outcome is not None and not self.applied


def _link(row: Row[Any]) -> JobLink:
    return JobLink(
        row.job_id, row.target_kind, row.target_id, row.outcome, row.text, row.error, row.applied
    )


async def link_target(
    session: AsyncSession, job_id: str, kind: str, target_id: str, now: datetime
) -> JobLink:
    """Record what the job was started for; returns the row as it now is, with the
    outcome if the job's event got here first. The upsert waits on (and then sees) a
    concurrent event transaction writing the same row, so one of the two always
    sees both halves."""
    statement = _insert(session)(job_links).values(
        job_id=job_id,
        target_kind=kind,
        target_id=target_id,
        outcome=None,
        text="",
        error="",
        applied=False,
        updated_at=now,
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id"],
                set_={"target_kind": kind, "target_id": target_id, "updated_at": now},
            ).returning(*job_links.c)
        )
    ).one()
    return _link(row)


async def link_outcome(
    session: AsyncSession, job_id: str, outcome: str, text: str, error: str, now: datetime
) -> JobLink:
    """Record how the job ended; returns the row with its target if one is known.
    A job ends once, so a repeated outcome writes the same values again."""
    statement = _insert(session)(job_links).values(
        job_id=job_id,
        target_kind=None,
        target_id=None,
        outcome=outcome,
        text=text,
        error=error,
        applied=False,
        updated_at=now,
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id"],
                set_={
                    "outcome": statement.excluded.outcome,
                    "text": statement.excluded.text,
                    "error": statement.excluded.error,
                    "updated_at": now,
                },
            ).returning(*job_links.c)
        )
    ).one()
    return _link(row)


async def mark_applied(session: AsyncSession, job_id: str) -> None:
    await session.execute(
        update(job_links).where(job_links.c.job_id == job_id).values(applied=True)
    )


# ---- user.deleted --------------------------------------------------------------------


async def delete_user_content(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Soft-delete a user's posts, chats and lessons."""
    for table, owner in (
        (posts, posts.c.author_id),
        (chats, chats.c.owner_id),
        (lessons, lessons.c.owner_id),
    ):
        await session.execute(
            update(table)
            .where(owner == user_id, table.c.deleted_at.is_(None))
            .values(deleted_at=now)
        )
