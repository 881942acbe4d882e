"""Assistants (saved personas), and the persona a chat speaks as: each chat started
with an assistant keeps the version it answers as in `chats.persona`, rewritten in
the transaction of every change the chat is to follow (see
`services.content.assistants`). Soft-deleted assistants are never read, except by
their idempotency key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc
from services.content.domain import Assistant, Persona, Visibility
from services.content.store.tables import assistants, before, chats


def persona_json(persona: Persona | None) -> str | None:
    if persona is None:
        return None
    return json.dumps(
        {
            "name": persona.name,
            "instructions": persona.instructions,
            "model": persona.model,
            "temperature": persona.temperature,
        }
    )


def load_persona(value: str | None) -> Persona | None:
    if not value:
        return None
    data = json.loads(value)
    temperature = data.get("temperature")
    return Persona(
        name=str(data["name"]),
        instructions=str(data["instructions"]),
        model=str(data["model"]),
        temperature=None if temperature is None else float(temperature),
    )


def _assistant(row: Row[Any]) -> Assistant:
    return Assistant(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        description=row.description,
        instructions=row.instructions,
        model=row.model,
        temperature=row.temperature,
        visibility=Visibility(row.visibility),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _values(assistant: Assistant) -> dict[str, Any]:
    return {
        "name": assistant.name,
        "description": assistant.description,
        "instructions": assistant.instructions,
        "model": assistant.model,
        "temperature": assistant.temperature,
        "visibility": assistant.visibility.value,
        "updated_at": assistant.updated_at,
    }


async def add_assistant(
    session: AsyncSession, assistant: Assistant, *, idempotency_key: str, fingerprint: str
) -> None:
    await session.execute(
        insert(assistants).values(
            id=assistant.id,
            owner_id=assistant.owner_id,
            idempotency_key=idempotency_key or None,
            fingerprint=fingerprint,
            created_at=assistant.created_at,
            **_values(assistant),
        )
    )


@dataclass(frozen=True)
class KeyedAssistant:
    """The assistant an idempotency key created, and whether it was deleted since."""

    assistant: Assistant
    fingerprint: str
    deleted: bool


async def assistant_by_key(session: AsyncSession, owner_id: str, key: str) -> KeyedAssistant | None:
    row = (
        await session.execute(
            select(assistants).where(
                assistants.c.owner_id == owner_id, assistants.c.idempotency_key == key
            )
        )
    ).first()
    if row is None:
        return None
    return KeyedAssistant(_assistant(row), row.fingerprint, row.deleted_at is not None)


async def get_assistant(
    session: AsyncSession, assistant_id: str, *, lock: Literal["share", "update"] | None = None
) -> Assistant | None:
    """The live assistant; `lock`: hold its row until the transaction ends, shared
    (a chat starting with it) or exclusive (a change to it), so a chat never starts
    with a version a concurrent change has already replaced."""
    query = select(assistants).where(
        assistants.c.id == assistant_id, assistants.c.deleted_at.is_(None)
    )
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    row = (await session.execute(query)).first()
    return None if row is None else _assistant(row)


async def save_assistant(session: AsyncSession, assistant: Assistant) -> None:
    await session.execute(
        update(assistants).where(assistants.c.id == assistant.id).values(**_values(assistant))
    )


async def delete_assistant(session: AsyncSession, assistant_id: str, now: datetime) -> None:
    await session.execute(
        update(assistants)
        .where(assistants.c.id == assistant_id, assistants.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )


async def list_assistants(
    session: AsyncSession,
    *,
    owner_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Assistant]:
    """Newest first: one owner's (`owner_id`), or else every public one."""
    query = select(assistants).where(assistants.c.deleted_at.is_(None))
    if owner_id is not None:
        query = query.where(assistants.c.owner_id == owner_id)
    else:
        query = query.where(assistants.c.visibility == Visibility.PUBLIC.value)
    if after is not None:
        query = query.where(before(assistants.c.created_at, assistants.c.id, *after))
    query = query.order_by(assistants.c.created_at.desc(), assistants.c.id.desc()).limit(limit + 1)
    return [_assistant(row) for row in (await session.execute(query)).all()]


async def follow_assistant(session: AsyncSession, assistant: Assistant, *, everyone: bool) -> None:
    """The chats started with `assistant` answer as its current version from now on:
    its owner's chats, and (`everyone`) other users' chats too."""
    query = update(chats).where(chats.c.assistant_id == assistant.id, chats.c.deleted_at.is_(None))
    if not everyone:
        query = query.where(chats.c.owner_id == assistant.owner_id)
    await session.execute(query.values(persona=persona_json(assistant.persona)))
