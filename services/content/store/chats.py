"""Chats and their messages. A turn is a user message (position 0), shown once its
job is known, and at most one reply or failure note (position 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Chat, Message, Persona, Role
from services.content.store.assistants import load_persona, persona_json
from services.content.store.pending import PendingRows
from services.content.store.tables import before, chats, messages


def _chat(row: Row[Any]) -> Chat:
    return Chat(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        model=row.model,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        assistant_id=row.assistant_id or "",
        persona=load_persona(row.persona),
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
            assistant_id=chat.assistant_id or None,
            persona=persona_json(chat.persona),
        )
    )


async def rename_chat(
    session: AsyncSession, chat_id: str, owner_id: str, title: str
) -> Chat | None:
    """Give the caller's chat a new title; None when they have no such chat."""
    row = (
        await session.execute(
            update(chats)
            .where(
                chats.c.id == chat_id, chats.c.owner_id == owner_id, chats.c.deleted_at.is_(None)
            )
            .values(title=title)
            .returning(*chats.c)
        )
    ).first()
    return None if row is None else _chat(row)


async def delete_chat(session: AsyncSession, chat_id: str, owner_id: str, now: datetime) -> bool:
    """Soft-delete the caller's chat; False when they have no such chat."""
    result = await session.execute(
        update(chats)
        .where(chats.c.id == chat_id, chats.c.owner_id == owner_id, chats.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
        query = query.where(before(chats.c.updated_at, chats.c.id, *after))
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
    persona: Persona | None = None


def _pending(row: Row[Any]) -> PendingMessage:
    history = [(str(role), str(text)) for role, text in json.loads(row.history or "[]")]
    return PendingMessage(
        _message(row),
        row.owner_id,
        row.fingerprint,
        row.confirmed,
        history,
        load_persona(row.persona),
    )


_user_messages = PendingRows(messages, _pending)

message_by_key = _user_messages.by_key
confirm_message = _user_messages.confirm
forget_message = _user_messages.forget


async def add_user_message(
    session: AsyncSession,
    message: Message,
    *,
    owner_id: str,
    idempotency_key: str,
    fingerprint: str,
    history: list[tuple[str, str]],
    persona: Persona | None = None,
) -> None:
    """Store a turn's user message, hidden until its job is confirmed, with what its
    job is sent (history, persona)."""
    await _user_messages.add(
        session,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        history=json.dumps(history),
        persona=persona_json(persona),
        id=message.id,
        chat_id=message.chat_id,
        owner_id=owner_id,
        turn=message.turn,
        position=0,
        role=Role.USER.value,
        content=message.content,
        failed=False,
        created_at=message.created_at,
    )


async def get_user_message(session: AsyncSession, message_id: str) -> PendingMessage | None:
    row = (
        await session.execute(
            select(messages).where(messages.c.id == message_id, messages.c.position == 0)
        )
    ).first()
    if row is None:
        return None
    return _pending(row)


async def add_reply(session: AsyncSession, reply: Message, owner_id: str) -> bool:
    """Append the reply (or failure note) of a turn unless it has one. Returns
    whether it did."""
    created = await session.scalar(
        dialect_insert(session, messages)
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
            persona=None,
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
