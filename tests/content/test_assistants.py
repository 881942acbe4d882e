"""Assistants and managed chats end to end: the real content service, the real
generation service (charging the real wallet) and the provider sandbox over HTTP,
results back through real NATS. What each reply's job was sent with is read from
the sandbox's own request log: the system message, model and temperature that
reached the (OpenAI-compatible) provider."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from sqlalchemy import select

from klik.content.v1 import content_pb2
from klik.events.v1.events_pb2 import UserRegistered
from klik.generation.v1 import generation_pb2
from services.content.store import tables
from tests.content.conftest import FullStack, new_user
from tests.content.support import failure
from tests.content.test_chats_lessons import answered, send
from tests.helpers import envelope, publish_envelope, wait_for

CHAT_PATH = "/v1/chat/completions"


async def sandbox_chat_model(stack: FullStack, owner: str) -> str:
    """A CHAT model the OpenAI-compatible sandbox serves."""
    providers = await stack.generation.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=stack.content.user(owner)
    )
    model: str = next(
        m.id
        for p in providers.providers
        if p.name == "sandbox"
        for m in p.models
        if "CHAT" in m.kinds
    )
    return model


async def sent_to_provider(stack: FullStack, prompt: str) -> dict[str, Any]:
    """The body of the chat completion request whose last user message is `prompt`."""

    async def found() -> dict[str, Any] | None:
        for entry in await stack.sandbox.requests(CHAT_PATH):
            body = entry["json"]
            users = [m["content"] for m in body["messages"] if m["role"] == "user"]
            if users and users[-1] == prompt:
                return dict(body)
        return None

    body: dict[str, Any] | None = await wait_for(found, 30, message=f"the provider got {prompt!r}")
    assert body is not None
    return body


async def create_assistant(stack: FullStack, owner: str, **fields: Any) -> content_pb2.Assistant:
    fields = {"name": "Captain", "instructions": "Talk like a pirate.", **fields}
    reply = await stack.content.content.CreateAssistant(
        content_pb2.CreateAssistantRequest(**fields), metadata=stack.content.user(owner)
    )
    assistant: content_pb2.Assistant = reply.assistant
    return assistant


async def update_assistant(
    stack: FullStack, owner: str, assistant_id: str, *paths: str, **fields: Any
) -> content_pb2.Assistant:
    reply = await stack.content.content.UpdateAssistant(
        content_pb2.UpdateAssistantRequest(
            assistant_id=assistant_id,
            assistant=content_pb2.Assistant(**fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
        ),
        metadata=stack.content.user(owner),
    )
    assistant: content_pb2.Assistant = reply.assistant
    return assistant


async def chat_with(stack: FullStack, owner: str, assistant_id: str) -> content_pb2.Chat:
    reply = await stack.content.content.CreateChat(
        content_pb2.CreateChatRequest(title="with an assistant", assistant_id=assistant_id),
        metadata=stack.content.user(owner),
    )
    chat: content_pb2.Chat = reply.chat
    return chat


async def ask(
    stack: FullStack, owner: str, chat_id: str, question: str, turns: int
) -> dict[str, Any]:
    """Send `question` as the chat's turn number `turns`; wait for its reply; return
    what the provider was sent for it."""
    await send(stack, owner, chat_id, question)
    chat = await answered(stack, owner, chat_id, turns)
    assert f"“{question}”" in chat.messages[-1].content
    return await sent_to_provider(stack, question)


def system_prompt(body: dict[str, Any]) -> str | None:
    systems = [m["content"] for m in body["messages"] if m["role"] == "system"]
    assert len(systems) <= 1
    return systems[0] if systems else None


async def test_a_chat_with_an_assistant_speaks_as_its_current_version(
    full_stack: FullStack,
) -> None:
    owner, other = new_user(), new_user()
    for user in (owner, other):
        await full_stack.register(user)
    model = await sandbox_chat_model(full_stack, owner)
    assistant = await create_assistant(
        full_stack, owner, model=model, temperature=0.3, visibility="public"
    )
    assert (assistant.model, assistant.temperature, assistant.visibility) == (
        model,
        0.3,
        "public",
    )

    mine = await chat_with(full_stack, owner, assistant.id)
    assert (mine.assistant_id, mine.model) == (assistant.id, model)
    body = await ask(full_stack, owner, mine.id, "ahoy from the owner", 1)
    assert system_prompt(body) == "Talk like a pirate."
    assert body["model"] == model
    assert body["temperature"] == 0.3
    assert body["messages"][0]["role"] == "system"  # before the conversation

    # Someone else starts a chat with the public assistant and pays for its replies.
    theirs = await chat_with(full_stack, other, assistant.id)
    before = await full_stack.balance(other)
    body = await ask(full_stack, other, theirs.id, "ahoy from a stranger", 1)
    assert system_prompt(body) == "Talk like a pirate."
    jobs = await full_stack.generation.ListJobs(
        generation_pb2.ListJobsRequest(), metadata=full_stack.content.user(other)
    )
    assert len(jobs.jobs) == 1 and jobs.jobs[0].user_id == other
    after = await wait_for(
        lambda: _changed(full_stack, other, before), 30, message="the stranger was charged"
    )
    assert after is not None and after[0] < before[0]

    # An edit while public reaches every chat with it from its next reply.
    await update_assistant(
        full_stack,
        owner,
        assistant.id,
        "instructions",
        "temperature",
        instructions="Talk like a poet.",
        temperature=1.5,
    )
    body = await ask(full_stack, owner, mine.id, "owner after the edit", 2)
    assert (system_prompt(body), body["temperature"]) == ("Talk like a poet.", 1.5)
    # The conversation goes along with the system prompt.
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    body = await ask(full_stack, other, theirs.id, "stranger after the edit", 2)
    assert system_prompt(body) == "Talk like a poet."

    # Made private, then edited: the stranger's chat keeps the last public version;
    # the owner's follows. No one else can start a chat with it now.
    await update_assistant(full_stack, owner, assistant.id, "visibility", visibility="private")
    await update_assistant(
        full_stack,
        owner,
        assistant.id,
        "instructions",
        "temperature",
        instructions="Talk like a robot.",
    )
    body = await ask(full_stack, owner, mine.id, "owner when private", 3)
    assert system_prompt(body) == "Talk like a robot."
    assert "temperature" not in body  # unset: the model's default
    body = await ask(full_stack, other, theirs.id, "stranger when private", 3)
    assert (system_prompt(body), body["temperature"]) == ("Talk like a poet.", 1.5)
    code, reason, _ = await failure(chat_with(full_stack, other, assistant.id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")

    # Deleted: gone for everyone, but every chat with it still answers as the last
    # version it had.
    await full_stack.content.content.DeleteAssistant(
        content_pb2.DeleteAssistantRequest(assistant_id=assistant.id),
        metadata=full_stack.content.user(owner),
    )
    for call in (
        full_stack.content.content.GetAssistant(
            content_pb2.GetAssistantRequest(assistant_id=assistant.id),
            metadata=full_stack.content.user(owner),
        ),
        chat_with(full_stack, owner, assistant.id),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")
    body = await ask(full_stack, owner, mine.id, "owner after the delete", 4)
    assert system_prompt(body) == "Talk like a robot."
    body = await ask(full_stack, other, theirs.id, "stranger after the delete", 4)
    assert system_prompt(body) == "Talk like a poet."
    chat = await full_stack.content.content.GetChat(
        content_pb2.GetChatRequest(chat_id=mine.id), metadata=full_stack.content.user(owner)
    )
    assert chat.chat.assistant_id == assistant.id

    # A plain chat still has no system prompt.
    plain = await full_stack.content.content.CreateChat(
        content_pb2.CreateChatRequest(title="plain"), metadata=full_stack.content.user(owner)
    )
    assert plain.chat.assistant_id == ""
    body = await ask(full_stack, owner, plain.chat.id, "a plain question", 1)
    assert system_prompt(body) is None and "temperature" not in body


async def _changed(stack: FullStack, user: str, before: tuple[int, int]) -> tuple[int, int] | None:
    now = await stack.balance(user)
    return now if now != before and now[1] == 0 else None


async def test_assistants_are_validated_and_only_their_owner_changes_them(
    full_stack: FullStack,
) -> None:
    owner, other = new_user(), new_user()
    content = full_stack.content.content
    me, them = full_stack.content.user(owner), full_stack.content.user(other)
    for fields, field, reason in (
        ({"name": " "}, "name", "INVALID_ARGUMENT"),
        ({"name": "n" * 101}, "name", "INVALID_ARGUMENT"),
        ({"instructions": ""}, "instructions", "INVALID_ARGUMENT"),
        ({"instructions": "i" * 8001}, "instructions", "INVALID_ARGUMENT"),
        ({"description": "d" * 501}, "description", "INVALID_ARGUMENT"),
        ({"temperature": 2.5}, "temperature", "INVALID_TEMPERATURE"),
        ({"temperature": -0.1}, "temperature", "INVALID_TEMPERATURE"),
        ({"visibility": "friends"}, "visibility", "INVALID_VISIBILITY"),
        ({"model": "no-such-model"}, "model", "UNKNOWN_MODEL"),
    ):
        code, got, metadata = await failure(create_assistant(full_stack, owner, **fields))
        assert (code, got, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, reason, field)
    async with full_stack.content.session() as session:
        assert (await session.execute(select(tables.assistants))).all() == []

    # Private by default; the bounds themselves are accepted; idempotent by key.
    first = await create_assistant(
        full_stack, owner, temperature=2.0, idempotency_key="a-1", description="helps"
    )
    assert first.visibility == "private" and first.temperature == 2.0
    again = await create_assistant(
        full_stack, owner, temperature=2.0, idempotency_key="a-1", description="helps"
    )
    assert again.id == first.id
    code, reason, _ = await failure(
        create_assistant(full_stack, owner, temperature=0.0, idempotency_key="a-1")
    )
    assert (code, reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    # Concurrent copies of one create make one assistant.
    racing = await asyncio.gather(
        *(create_assistant(full_stack, owner, idempotency_key="a-2") for _ in range(4))
    )
    assert len({a.id for a in racing}) == 1
    async with full_stack.content.session() as session:
        keys = (await session.execute(select(tables.assistants.c.idempotency_key))).scalars()
        assert sorted(keys) == ["a-1", "a-2"]

    # Someone else's private assistant does not exist for them.
    for call in (
        content.GetAssistant(content_pb2.GetAssistantRequest(assistant_id=first.id), metadata=them),
        content.CreateChat(content_pb2.CreateChatRequest(assistant_id=first.id), metadata=them),
        content.DeleteAssistant(
            content_pb2.DeleteAssistantRequest(assistant_id=first.id), metadata=them
        ),
        update_assistant(full_stack, other, first.id, "name", name="mine now"),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")

    # Public: they see it (but not its instructions) and still cannot change it.
    shared = await update_assistant(full_stack, owner, first.id, "visibility", visibility="public")
    assert shared.instructions == "Talk like a pirate."
    seen = await content.GetAssistant(
        content_pb2.GetAssistantRequest(assistant_id=first.id), metadata=them
    )
    assert (seen.assistant.name, seen.assistant.instructions) == ("Captain", "")
    for call in (
        update_assistant(full_stack, other, first.id, "name", name="mine now"),
        content.DeleteAssistant(
            content_pb2.DeleteAssistantRequest(assistant_id=first.id), metadata=them
        ),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")

    # Updates: the mask names what changes, and only fields that exist; the named
    # fields are validated; an invalid update changes nothing.
    for paths, fields, field, reason in (
        (("owner_id",), {}, "update_mask", "INVALID_UPDATE_MASK"),
        (("temperature",), {"temperature": 3.0}, "temperature", "INVALID_TEMPERATURE"),
        (("model",), {"model": "no-such-model"}, "model", "UNKNOWN_MODEL"),
        (("name",), {"name": ""}, "name", "INVALID_ARGUMENT"),
    ):
        code, got, metadata = await failure(
            update_assistant(full_stack, owner, first.id, *paths, **fields)
        )
        assert (code, got, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, reason, field)
    renamed = await update_assistant(full_stack, owner, first.id, "name", name="Admiral")
    assert (renamed.name, renamed.description, renamed.temperature) == ("Admiral", "helps", 2.0)

    # A chat with an assistant cannot name its own model.
    code, reason, metadata = await failure(
        content.CreateChat(
            content_pb2.CreateChatRequest(assistant_id=first.id, model="x"), metadata=me
        )
    )
    assert (code, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "model")
    code, reason, _ = await failure(
        content.CreateChat(content_pb2.CreateChatRequest(assistant_id="nope"), metadata=me)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")

    # Deleted: its key replays to NOT_FOUND rather than making another.
    await content.DeleteAssistant(
        content_pb2.DeleteAssistantRequest(assistant_id=first.id), metadata=me
    )
    code, reason, _ = await failure(
        create_assistant(
            full_stack, owner, temperature=2.0, idempotency_key="a-1", description="helps"
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")


async def test_assistants_are_listed_newest_first_with_their_owner(
    full_stack: FullStack,
) -> None:
    owner, other = new_user(), new_user()
    event = envelope(
        "user.registered",
        UserRegistered(user_id=owner, display_name="Ada", handle="ada"),
        aggregate_id=owner,
    )
    await publish_envelope(full_stack.content.js, event)
    await full_stack.content.drained()
    content = full_stack.content.content
    me, them = full_stack.content.user(owner), full_stack.content.user(other)
    made = [
        await create_assistant(
            full_stack, owner, name=f"a{i}", visibility="public" if i % 2 else "private"
        )
        for i in range(4)
    ]
    theirs = await create_assistant(full_stack, other, name="theirs", visibility="public")

    # Mine, public and private, newest first, page by page.
    seen: list[str] = []
    token = ""
    while True:
        page = await content.ListAssistants(
            content_pb2.ListAssistantsRequest(page_size=3, page_token=token), metadata=me
        )
        seen += [a.id for a in page.assistants]
        token = page.next_page_token
        if not token:
            break
    assert seen == [a.id for a in reversed(made)]

    # Everyone's public ones, newest first, each with its owner's profile.
    page = await content.ListPublicAssistants(
        content_pb2.ListPublicAssistantsRequest(page_size=2), metadata=them
    )
    public = [(a.id, a.owner.user_id) for a in page.assistants]
    rest = await content.ListPublicAssistants(
        content_pb2.ListPublicAssistantsRequest(page_size=2, page_token=page.next_page_token),
        metadata=them,
    )
    public += [(a.id, a.owner.user_id) for a in rest.assistants]
    assert rest.next_page_token == ""
    assert public == [(theirs.id, other), (made[3].id, owner), (made[1].id, owner)]
    ada = page.assistants[1].owner
    assert (ada.handle, ada.display_name) == ("ada", "Ada")
    assert page.assistants[1].instructions == ""  # not theirs to see

    code, reason, _ = await failure(
        content.ListPublicAssistants(
            content_pb2.ListPublicAssistantsRequest(page_token="not-a-token"),
            metadata=them,
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")

    # A deleted user's assistants go with them.
    await full_stack.content.delete_user(owner)
    await full_stack.content.drained()
    page = await content.ListPublicAssistants(
        content_pb2.ListPublicAssistantsRequest(), metadata=them
    )
    assert [a.id for a in page.assistants] == [theirs.id]
    code, reason, _ = await failure(
        content.GetAssistant(
            content_pb2.GetAssistantRequest(assistant_id=made[3].id), metadata=them
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSISTANT_NOT_FOUND")


async def test_a_chat_is_renamed_and_deleted_by_its_owner_only(full_stack: FullStack) -> None:
    owner, other = new_user(), new_user()
    await full_stack.register(owner)
    content = full_stack.content.content
    me, them = full_stack.content.user(owner), full_stack.content.user(other)
    chat = (await content.CreateChat(content_pb2.CreateChatRequest(title="t"), metadata=me)).chat
    kept = (await content.CreateChat(content_pb2.CreateChatRequest(title="k"), metadata=me)).chat

    renamed = await content.UpdateChat(
        content_pb2.UpdateChatRequest(chat_id=chat.id, title="renamed"), metadata=me
    )
    assert (renamed.chat.id, renamed.chat.title) == (chat.id, "renamed")
    got = await content.GetChat(content_pb2.GetChatRequest(chat_id=chat.id), metadata=me)
    assert got.chat.title == "renamed"
    code, _, metadata = await failure(
        content.UpdateChat(
            content_pb2.UpdateChatRequest(chat_id=chat.id, title="t" * 201), metadata=me
        )
    )
    assert (code, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "title")
    for call in (
        content.UpdateChat(
            content_pb2.UpdateChatRequest(chat_id=chat.id, title="x"), metadata=them
        ),
        content.DeleteChat(content_pb2.DeleteChatRequest(chat_id=chat.id), metadata=them),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHAT_NOT_FOUND")

    # A reply still on its way (the provider streams it slowly) when the chat is deleted.
    question = "a slow question [[fault:rate=8]]"
    job_id = await send(full_stack, owner, chat.id, question)
    await content.DeleteChat(content_pb2.DeleteChatRequest(chat_id=chat.id), metadata=me)
    job = await full_stack.generation.GetJob(
        generation_pb2.GetJobRequest(job_id=job_id), metadata=me
    )
    assert job.job.status in ("QUEUED", "RUNNING"), "the reply was in flight"

    for call in (
        content.GetChat(content_pb2.GetChatRequest(chat_id=chat.id), metadata=me),
        content.SendMessage(
            content_pb2.SendMessageRequest(chat_id=chat.id, content="still there?"), metadata=me
        ),
        content.UpdateChat(content_pb2.UpdateChatRequest(chat_id=chat.id, title="x"), metadata=me),
        content.DeleteChat(content_pb2.DeleteChatRequest(chat_id=chat.id), metadata=me),
    ):
        code, reason, _ = await failure(call)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHAT_NOT_FOUND")

    async def replied() -> bool:
        async with full_stack.content.session() as session:
            rows = await session.execute(
                select(tables.messages.c.id).where(
                    tables.messages.c.chat_id == chat.id, tables.messages.c.position == 1
                )
            )
            return bool(rows.all())

    # The reply lands (out of sight) and brings nothing back.
    await wait_for(replied, 60, message="the late reply was handled")
    await full_stack.content.drained()
    listed = await content.ListChats(content_pb2.ListChatsRequest(), metadata=me)
    assert [c.id for c in listed.chats] == [kept.id]
    code, reason, _ = await failure(
        content.GetChat(content_pb2.GetChatRequest(chat_id=chat.id), metadata=me)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHAT_NOT_FOUND")
