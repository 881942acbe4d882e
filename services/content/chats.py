"""Use cases of chats: create (optionally speaking as an assistant), list, read,
rename, delete, and SendMessage, which stores the user's message and starts the CHAT
job that answers it (see `services.content.job_links` for how the job's outcome finds
its way back to the chat). A chat with an assistant sends every job with the
assistant's instructions as the system prompt, its model and temperature (the
version the chat holds: see `services.content.assistants`).

Deleting a chat is a soft delete: every read and send then finds no chat, and a
reply that arrives later is stored out of sight (it never brings the chat back).

Order: each SendMessage takes the chat's next turn number under the chat's row lock,
and a reply is stored at its question's turn, so a chat always reads question,
answer, question, answer... in the order the questions were sent, however the
replies race each other."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit import idempotency
from kit.db import UnitOfWork
from kit.errors import InvalidArgument
from klik.generation.v1 import generation_pb2
from services.content import domain, job_links, store
from services.content.domain import Chat, Message, Persona, Role, Viewer
from services.content.generation_client import Generation

UNKNOWN_MODEL = "UNKNOWN_MODEL"


@dataclass(frozen=True)
class Sent:
    message: Message
    job_id: str


@dataclass(frozen=True)
class ChatPage:
    chats: list[Chat]
    next_after: tuple[datetime, str] | None


@dataclass(frozen=True)
class _Turn:
    """A user message stored but not yet confirmed, with what its job needs."""

    message: Message
    model: str
    history: list[tuple[str, str]]
    persona: Persona | None
    done: bool = False


class Chats:
    def __init__(self, uow: UnitOfWork, generation: Generation) -> None:
        self._uow = uow
        self._generation = generation

    async def create(
        self, viewer: Viewer, token: str, title: str, model: str, assistant_id: str = ""
    ) -> Chat:
        title = domain.text_field("title", title, domain.MAX_TITLE)
        model = domain.text_field("model", model, domain.MAX_MODEL)
        if model and assistant_id:
            raise InvalidArgument(
                "INVALID_ARGUMENT",
                "a chat with an assistant answers with the assistant's model",
                details={"field": "model"},
            )
        await require_chat_model(self._generation, token, model)
        now = datetime.now(UTC)
        chat = Chat(str(uuid.uuid4()), viewer.user_id, title, model, now, now)
        async with self._uow.write() as session:
            if assistant_id:
                # Shared lock: a concurrent change to the assistant waits for this chat
                # and then rewrites its persona too.
                found = (
                    await store.get_assistant(session, assistant_id, lock="share")
                    if domain.plausible_id(assistant_id)
                    else None
                )
                assistant = domain.visible_assistant(found, viewer, assistant_id)
                chat = replace(
                    chat,
                    model=assistant.model,
                    assistant_id=assistant.id,
                    persona=assistant.persona,
                )
            await store.add_chat(session, chat)
        return chat

    async def rename(self, viewer: Viewer, chat_id: str, title: str) -> Chat:
        title = domain.text_field("title", title, domain.MAX_TITLE)
        async with self._uow.write() as session:
            chat = (
                await store.rename_chat(session, chat_id, viewer.user_id, title)
                if domain.plausible_id(chat_id)
                else None
            )
        if chat is None:
            raise domain.chat_not_found(chat_id)
        return chat

    async def delete(self, viewer: Viewer, chat_id: str) -> None:
        async with self._uow.write() as session:
            deleted = domain.plausible_id(chat_id) and await store.delete_chat(
                session, chat_id, viewer.user_id, datetime.now(UTC)
            )
        if not deleted:
            raise domain.chat_not_found(chat_id)

    async def get(self, viewer: Viewer, chat_id: str) -> tuple[Chat, list[Message]]:
        async with self._uow.read() as session:
            chat = await _find(session, chat_id, viewer.user_id)
            return chat, await store.chat_messages(session, chat.id)

    async def list(
        self, viewer: Viewer, *, after: tuple[datetime, str] | None, limit: int
    ) -> ChatPage:
        async with self._uow.read() as session:
            rows = await store.list_chats(session, viewer.user_id, after=after, limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return ChatPage(rows, (rows[-1].updated_at, rows[-1].id) if more else None)

    async def send(self, viewer: Viewer, token: str, chat_id: str, content: str, key: str) -> Sent:
        content = domain.text_field("content", content, domain.MAX_MESSAGE, required=True)
        key = idempotency.check_key(key)
        fingerprint = idempotency.fingerprint("SendMessage", (chat_id, content))
        turn = await self._store_turn(viewer, chat_id, content, key, fingerprint)
        if turn.done:
            return Sent(turn.message, turn.message.job_id)
        request = generation_pb2.CreateJobRequest(
            kind="CHAT",
            prompt=content,
            model=turn.model,
            history=[
                generation_pb2.ChatTurn(role=role, content=text) for role, text in turn.history
            ],
            idempotency_key=domain.job_key(job_links.MESSAGE, turn.message.id),
        )
        if turn.persona is not None:
            request.model = turn.persona.model
            request.options.system_prompt = turn.persona.instructions
            if turn.persona.temperature is not None:
                request.options.temperature = turn.persona.temperature
        message_id = turn.message.id
        job_id, _ = await job_links.start_job(
            self._uow,
            self._generation,
            token,
            request,
            resumable=bool(key),
            forget=lambda session: store.forget_message(session, message_id),
            record=lambda session, job_id: record_job(
                session, chat_id, message_id, job_id, datetime.now(UTC)
            ),
        )
        stored = Message(
            id=turn.message.id,
            chat_id=chat_id,
            role=Role.USER,
            content=content,
            job_id=job_id,
            created_at=turn.message.created_at,
            turn=turn.message.turn,
        )
        return Sent(stored, job_id)

    async def _store_turn(
        self, viewer: Viewer, chat_id: str, content: str, key: str, fingerprint: str
    ) -> _Turn:
        """Take the next turn and store the (unconfirmed) user message, or find the
        message stored under the same key before. A concurrent send with the same key
        loses the insert race and then finds the winner's message."""
        for attempt in range(2):
            try:
                async with self._uow.write() as session:
                    return await self._claim_turn(
                        session, viewer, chat_id, content, key, fingerprint
                    )
            except IntegrityError:
                if attempt or not key:
                    raise
        raise AssertionError("unreachable")

    async def _claim_turn(
        self,
        session: AsyncSession,
        viewer: Viewer,
        chat_id: str,
        content: str,
        key: str,
        fingerprint: str,
    ) -> _Turn:
        chat = await _find(session, chat_id, viewer.user_id)
        earlier = await store.message_by_key(session, viewer.user_id, key) if key else None
        if earlier is not None:
            idempotency.check_replay(earlier.fingerprint, fingerprint)
            return _Turn(
                earlier.message,
                chat.model,
                earlier.history,
                earlier.persona,
                done=earlier.confirmed,
            )
        turn = await store.next_turn(session, chat.id, viewer.user_id)
        if turn is None:
            raise domain.chat_not_found(chat_id)
        if chat.assistant_id:
            # Read again under the chat's lock: the persona an assistant's edit wrote
            # while this send waited for the lock.
            chat = await _find(session, chat_id, viewer.user_id)
        message = Message(
            id=str(uuid.uuid4()),
            chat_id=chat.id,
            role=Role.USER,
            content=content,
            job_id="",
            created_at=datetime.now(UTC),
            turn=turn,
        )
        history = domain.chat_context(await store.chat_messages(session, chat.id, before_turn=turn))
        await store.add_user_message(
            session,
            message,
            owner_id=viewer.user_id,
            idempotency_key=key,
            fingerprint=fingerprint,
            history=history,
            persona=chat.persona,
        )
        return _Turn(message, chat.model, history, chat.persona)


async def require_chat_model(generation: Generation, token: str, model: str) -> None:
    """A named model must be one of generation's CHAT models ("" is its default)."""
    if model and model not in await generation.chat_models(token):
        raise InvalidArgument(UNKNOWN_MODEL, f"no CHAT model {model!r}", details={"field": "model"})


async def _find(session: AsyncSession, chat_id: str, owner_id: str) -> Chat:
    chat = (
        await store.get_chat(session, chat_id, owner_id) if domain.plausible_id(chat_id) else None
    )
    if chat is None:
        raise domain.chat_not_found(chat_id)
    return chat


async def record_job(
    session: AsyncSession, chat_id: str, message_id: str, job_id: str, now: datetime
) -> None:
    """The user message is answered by `job_id`: show it, and meet the job's outcome
    if it came first. The job link first: the lock order of `job_links` (link, then chat)."""
    await job_links.link_target(session, job_id, job_links.MESSAGE, message_id, now)
    if not await store.confirm_message(session, message_id, job_id):
        raise domain.Superseded  # rolls the link back with the transaction
    await store.touch_chat(session, chat_id, now)
