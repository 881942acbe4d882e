"""Use cases of assistants (saved personas: name, instructions, model, temperature):
create, read, list (the owner's, and everyone's public ones), change and delete.

What chats started with an assistant answer as: each such chat keeps the version it
speaks as (`Chat.persona`), written when the chat starts and rewritten in the same
transaction as every change to the assistant, so a reply always uses the version
last saved, with no extra read at send time:

- the owner's own chats follow every change;
- other users' chats follow while the assistant is public: making it private (or
  deleting it) leaves them the last public version, so they keep working and a
  private edit never reaches them;
- deleting the assistant changes no chat: every chat keeps answering as the last
  version it had.

The assistant's row is locked (shared by a chat starting with it, exclusive by a
change) so a chat never starts with a version a concurrent change has replaced."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit import idempotency
from kit.db import UnitOfWork
from services.content import authors, domain, store
from services.content.chats import require_chat_model
from services.content.domain import (
    Assistant,
    AssistantDraft,
    AssistantView,
    Viewer,
    Visibility,
)
from services.content.generation_client import Generation


@dataclass(frozen=True)
class AssistantPage:
    assistants: list[AssistantView]
    next_after: tuple[datetime, str] | None


class Assistants:
    def __init__(self, uow: UnitOfWork, generation: Generation) -> None:
        self._uow = uow
        self._generation = generation

    async def create(
        self, viewer: Viewer, token: str, draft: AssistantDraft, key: str
    ) -> AssistantView:
        key = idempotency.check_key(key)
        fingerprint = idempotency.fingerprint(
            "CreateAssistant",
            (
                draft.name,
                draft.description,
                draft.instructions,
                draft.model,
                draft.temperature,
                draft.visibility.value,
            ),
        )
        await require_chat_model(self._generation, token, draft.model)
        now = datetime.now(UTC)
        assistant = Assistant(
            id=str(uuid.uuid4()),
            owner_id=viewer.user_id,
            name=draft.name,
            description=draft.description,
            instructions=draft.instructions,
            model=draft.model,
            temperature=draft.temperature,
            visibility=draft.visibility,
            created_at=now,
            updated_at=now,
        )
        # A concurrent create with the same key loses the insert race, then finds
        # the winner's assistant.
        for attempt in range(2):
            try:
                async with self._uow.write() as session:
                    earlier = (
                        await store.assistant_by_key(session, viewer.user_id, key) if key else None
                    )
                    if earlier is not None:
                        idempotency.check_replay(earlier.fingerprint, fingerprint)
                        if earlier.deleted:
                            raise domain.assistant_not_found(earlier.assistant.id)
                        return await authors.assistant_view(session, earlier.assistant)
                    await store.add_assistant(
                        session, assistant, idempotency_key=key, fingerprint=fingerprint
                    )
                    return await authors.assistant_view(session, assistant)
            except IntegrityError:
                if attempt or not key:
                    raise
        raise AssertionError("unreachable")

    async def get(self, viewer: Viewer, assistant_id: str) -> AssistantView:
        async with self._uow.read() as session:
            assistant = domain.visible_assistant(
                await _get(session, assistant_id), viewer, assistant_id
            )
            return await authors.assistant_view(session, assistant)

    async def list(
        self, viewer: Viewer, *, public: bool, after: tuple[datetime, str] | None, limit: int
    ) -> AssistantPage:
        """The viewer's own assistants, or (`public`) everyone's public ones."""
        async with self._uow.read() as session:
            rows = await store.list_assistants(
                session, owner_id=None if public else viewer.user_id, after=after, limit=limit
            )
            more = len(rows) > limit
            rows = rows[:limit]
            views = await authors.assistant_views(session, rows)
        return AssistantPage(views, (rows[-1].created_at, rows[-1].id) if more else None)

    async def update(
        self, viewer: Viewer, token: str, assistant_id: str, changes: dict[str, object]
    ) -> AssistantView:
        model = changes.get("model")
        if isinstance(model, str):
            await require_chat_model(self._generation, token, model)
        async with self._uow.write() as session:
            current = domain.owned_assistant(
                await _get(session, assistant_id, lock="update"), viewer, assistant_id
            )
            changed = domain.apply_assistant_update(current, changes, datetime.now(UTC))
            await store.save_assistant(session, changed)
            await store.follow_assistant(
                session, changed, everyone=changed.visibility is Visibility.PUBLIC
            )
            return await authors.assistant_view(session, changed)

    async def delete(self, viewer: Viewer, assistant_id: str) -> None:
        async with self._uow.write() as session:
            domain.owned_assistant(
                await _get(session, assistant_id, lock="update"), viewer, assistant_id
            )
            await store.delete_assistant(session, assistant_id, datetime.now(UTC))


async def _get(
    session: AsyncSession, assistant_id: str, *, lock: Literal["share", "update"] | None = None
) -> Assistant | None:
    if not domain.plausible_id(assistant_id):
        return None
    return await store.get_assistant(session, assistant_id, lock=lock)
