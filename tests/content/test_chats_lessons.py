"""Chats and lessons end to end: the real content service starts CHAT and TEXT jobs on
the real generation service (with the user's own token), which holds and charges
credits on the real wallet and calls the provider sandbox over HTTP; the results come
back to content as `generation.job.*` events through real NATS."""

from __future__ import annotations

import asyncio
import json

import grpc
from sqlalchemy import func, select

from klik.content.v1 import content_pb2
from klik.generation.v1 import generation_pb2
from klik.wallet.v1 import wallet_pb2
from services.content.store import tables
from tests.content.conftest import FullStack, StartContent, new_user
from tests.content.support import failure
from tests.helpers import free_port, wait_for


async def new_chat(stack: FullStack, owner: str) -> str:
    reply = await stack.content.content.CreateChat(
        content_pb2.CreateChatRequest(title="study"), metadata=stack.content.user(owner)
    )
    chat_id: str = reply.chat.id
    return chat_id


async def send(stack: FullStack, owner: str, chat_id: str, text: str, key: str = "") -> str:
    reply = await stack.content.content.SendMessage(
        content_pb2.SendMessageRequest(chat_id=chat_id, content=text, idempotency_key=key),
        metadata=stack.content.user(owner),
    )
    assert reply.message.role == "user" and reply.message.content == text
    assert reply.job_id and reply.message.job_id == reply.job_id
    job_id: str = reply.job_id
    return job_id


async def answered(stack: FullStack, owner: str, chat_id: str, turns: int) -> content_pb2.Chat:
    """The chat once it holds `turns` questions with their replies."""

    async def complete() -> content_pb2.Chat | None:
        reply = await stack.content.content.GetChat(
            content_pb2.GetChatRequest(chat_id=chat_id), metadata=stack.content.user(owner)
        )
        chat: content_pb2.Chat = reply.chat
        return chat if len(chat.messages) >= 2 * turns else None

    chat = await wait_for(complete, 60, message=f"{turns} turns answered")
    assert chat is not None
    return chat


async def test_a_chat_of_several_turns_keeps_order_with_concurrent_sends(
    full_stack: FullStack,
) -> None:
    owner = new_user()
    await full_stack.register(owner)
    chat_id = await new_chat(full_stack, owner)

    # Two turns one after the other, each answered before the next question...
    for i, question in enumerate(("first question", "second question")):
        await send(full_stack, owner, chat_id, question)
        await answered(full_stack, owner, chat_id, i + 1)
    # ...then three sent at once.
    concurrent = [f"concurrent question {i}" for i in range(3)]
    jobs = await asyncio.gather(*(send(full_stack, owner, chat_id, q) for q in concurrent))
    chat = await answered(full_stack, owner, chat_id, 5)
    await full_stack.content.drained()

    messages = list(chat.messages)
    assert len(messages) == 10  # no reply twice, none lost
    assert [m.role for m in messages] == ["user", "assistant"] * 5
    questions = [m.content for m in messages[::2]]
    assert questions[:2] == ["first question", "second question"]
    assert sorted(questions[2:]) == sorted(concurrent)
    for asked, answer in zip(messages[::2], messages[1::2], strict=True):
        # Each reply right after its question: same job, and the sandbox quotes it.
        assert answer.job_id == asked.job_id
        assert f"“{asked.content}”" in answer.content
    assert {m.job_id for m in messages[4::2]} == set(jobs)

    # The second question's job got the first turn as its history (what CreateJob
    # was sent is kept with the message, so a retry sends the very same request).
    async with full_stack.content.session() as session:
        history = await session.scalar(
            select(tables.messages.c.history).where(tables.messages.c.id == messages[2].id)
        )
    assert isinstance(history, str)
    assert json.loads(history) == [["user", "first question"], ["assistant", messages[1].content]]


async def test_send_message_is_idempotent_by_key(full_stack: FullStack) -> None:
    owner = new_user()
    await full_stack.register(owner)
    chat_id = await new_chat(full_stack, owner)
    first = await send(full_stack, owner, chat_id, "hello", key="k-1")
    again = await send(full_stack, owner, chat_id, "hello", key="k-1")
    assert again == first
    code, reason, _ = await failure(send(full_stack, owner, chat_id, "other", key="k-1"))
    assert (code, reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    chat = await answered(full_stack, owner, chat_id, 1)
    await full_stack.content.drained()
    assert [m.role for m in chat.messages] == ["user", "assistant"]
    jobs = await full_stack.generation.ListJobs(
        generation_pb2.ListJobsRequest(), metadata=full_stack.content.user(owner)
    )
    assert [job.id for job in jobs.jobs] == [first]  # one job, charged once

    # generation's succeeded event again, under another event id: no second reply,
    # no second asset.
    succeeded = jobs.jobs[0]
    assert succeeded.status == "SUCCEEDED"
    await full_stack.content.job_event(succeeded)
    await full_stack.content.job_event(succeeded, msg_id="copy")
    await full_stack.content.drained()
    chat = await answered(full_stack, owner, chat_id, 1)
    assert [m.role for m in chat.messages] == ["user", "assistant"]
    assets = await full_stack.content.content.ListAssets(
        content_pb2.ListAssetsRequest(), metadata=full_stack.content.user(owner)
    )
    assert [a.job_id for a in assets.assets] == [first]
    assert assets.assets[0].text == chat.messages[1].content


async def test_a_send_that_failed_without_an_answer_resumes_with_its_key(
    full_stack: FullStack, start_content: StartContent
) -> None:
    owner = new_user()
    await full_stack.register(owner)
    chat_id = await new_chat(full_stack, owner)
    # A replica that cannot reach generation: the outcome of its call is unknown.
    cut_off = await start_content(env={"KLIK_GENERATION_PORT": str(free_port())})
    code, reason, _ = await failure(
        cut_off.content.SendMessage(
            content_pb2.SendMessageRequest(chat_id=chat_id, content="hi", idempotency_key="k"),
            metadata=cut_off.user(owner),
        )
    )
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "GENERATION_UNAVAILABLE")
    # The client retries with its key and reaches the message stored the first time.
    job_id = await send(full_stack, owner, chat_id, "hi", key="k")
    chat = await answered(full_stack, owner, chat_id, 1)
    await full_stack.content.drained()
    await cut_off.drained()
    assert [(m.role, m.job_id) for m in chat.messages] == [
        ("user", job_id),
        ("assistant", job_id),
    ]
    async with full_stack.content.session() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(tables.messages)
            .where(tables.messages.c.chat_id == chat_id)
        )
    assert rows == 2


async def test_a_failed_reply_leaves_one_visible_note(full_stack: FullStack) -> None:
    owner = new_user()
    await full_stack.register(owner)
    chat_id = await new_chat(full_stack, owner)
    job_id = await send(full_stack, owner, chat_id, "tell me [[fault:500]]")
    chat = await answered(full_stack, owner, chat_id, 1)
    note = chat.messages[1]
    assert (note.role, note.job_id) == ("assistant", job_id)
    assert note.content.startswith("[The reply could not be generated")
    await full_stack.content.drained()
    assert len((await answered(full_stack, owner, chat_id, 1)).messages) == 2
    assert await full_stack.balance(owner) == (100, 0)  # a failed reply costs nothing


async def test_without_credits_no_message_or_lesson_is_stored(full_stack: FullStack) -> None:
    owner, sink = new_user(), new_user()
    await full_stack.register(owner)
    await full_stack.register(sink)
    me = full_stack.content.user(owner)
    # Spend every credit first.
    await full_stack.wallet.Transfer(
        wallet_pb2.TransferRequest(to_user_id=sink, amount=100, idempotency_key="all"),
        metadata=me,
    )
    chat_id = await new_chat(full_stack, owner)

    code, reason, _ = await failure(send(full_stack, owner, chat_id, "hello?", key="k"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    code, reason, _ = await failure(send(full_stack, owner, chat_id, "hello?"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    chat = await full_stack.content.content.GetChat(
        content_pb2.GetChatRequest(chat_id=chat_id), metadata=me
    )
    assert list(chat.chat.messages) == []

    code, reason, _ = await failure(
        full_stack.content.content.CreateLesson(
            content_pb2.CreateLessonRequest(topic="x", content_type="quiz", difficulty=1),
            metadata=me,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    lessons = await full_stack.content.content.ListLessons(
        content_pb2.ListLessonsRequest(), metadata=me
    )
    assert list(lessons.lessons) == []
    async with full_stack.content.session() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(tables.messages)
            .where(tables.messages.c.owner_id == owner)
        )
        lesson_rows = await session.scalar(
            select(func.count())
            .select_from(tables.lessons)
            .where(tables.lessons.c.owner_id == owner)
        )
    assert rows == lesson_rows == 0  # nothing half-written, not even hidden

    # With credits again, the same key works: the refusal was not recorded as its result.
    await full_stack.wallet.Transfer(
        wallet_pb2.TransferRequest(to_user_id=owner, amount=50, idempotency_key="back"),
        metadata=full_stack.content.user(sink),
    )
    await send(full_stack, owner, chat_id, "hello?", key="k")
    assert len((await answered(full_stack, owner, chat_id, 1)).messages) == 2


async def test_chat_models_are_checked(full_stack: FullStack) -> None:
    owner = new_user()
    me = full_stack.content.user(owner)
    code, reason, metadata = await failure(
        full_stack.content.content.CreateChat(
            content_pb2.CreateChatRequest(model="no-such-model"), metadata=me
        )
    )
    assert (code, reason, metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_MODEL",
        "model",
    )
    providers = await full_stack.generation.ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=me
    )
    chat_model = next(m.id for p in providers.providers for m in p.models if "CHAT" in m.kinds)
    chat = await full_stack.content.content.CreateChat(
        content_pb2.CreateChatRequest(model=chat_model), metadata=me
    )
    assert chat.chat.model == chat_model


async def lesson_when(
    stack: FullStack, owner: str, lesson_id: str, status: str
) -> content_pb2.Lesson:
    async def reached() -> content_pb2.Lesson | None:
        reply = await stack.content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=lesson_id), metadata=stack.content.user(owner)
        )
        lesson: content_pb2.Lesson = reply.lesson
        return lesson if lesson.status == status else None

    lesson = await wait_for(reached, 60, message=f"lesson {status}")
    assert lesson is not None
    return lesson


async def test_a_lesson_goes_generating_to_ready_then_published(full_stack: FullStack) -> None:
    owner = new_user()
    await full_stack.register(owner)
    me = full_stack.content.user(owner)
    created = await full_stack.content.content.CreateLesson(
        content_pb2.CreateLessonRequest(topic="photosynthesis", content_type="quiz", difficulty=8),
        metadata=me,
    )
    assert created.lesson.status in ("generating", "ready")
    assert created.lesson.job_id
    code, reason, _ = await failure(
        full_stack.content.content.GetLesson(
            content_pb2.GetLessonRequest(lesson_id=created.lesson.id),
            metadata=full_stack.content.user(new_user()),
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "LESSON_NOT_FOUND")

    ready = await lesson_when(full_stack, owner, created.lesson.id, "ready")
    assert ready.body.startswith("Sandbox reply to")
    job = await full_stack.generation.GetJob(
        generation_pb2.GetJobRequest(job_id=ready.job_id), metadata=me
    )
    # The prompt was built for the type and the difficulty.
    assert "quiz about photosynthesis" in job.job.prompt
    assert "Difficulty 8 of 10" in job.job.prompt
    balance, held = await full_stack.balance(owner)
    assert held == 0 and balance == 100 - job.job.cost_credits and job.job.cost_credits > 0

    published = await full_stack.content.content.PublishLesson(
        content_pb2.PublishLessonRequest(lesson_id=ready.id), metadata=me
    )
    assert published.lesson.status == "published"
    # Published lessons are readable by every signed-in user.
    seen = await full_stack.content.content.GetLesson(
        content_pb2.GetLessonRequest(lesson_id=ready.id),
        metadata=full_stack.content.user(new_user()),
    )
    assert seen.lesson.body == ready.body


async def test_a_lesson_fails_when_the_provider_fails_and_costs_nothing(
    full_stack: FullStack,
) -> None:
    owner = new_user()
    await full_stack.register(owner)
    me = full_stack.content.user(owner)
    created = await full_stack.content.content.CreateLesson(
        content_pb2.CreateLessonRequest(
            topic="volcanoes [[fault:500]]", content_type="lesson", difficulty=2
        ),
        metadata=me,
    )
    failed = await lesson_when(full_stack, owner, created.lesson.id, "failed")
    assert failed.body == ""
    assert await full_stack.balance(owner) == (100, 0)  # the hold was released
    code, reason, _ = await failure(
        full_stack.content.content.PublishLesson(
            content_pb2.PublishLessonRequest(lesson_id=failed.id), metadata=me
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LESSON_NOT_READY")


async def test_stream_message_sends_then_streams_the_reply_that_the_chat_then_keeps(
    full_stack: FullStack,
) -> None:
    owner = new_user()
    await full_stack.register(owner)
    chat_id = await new_chat(full_stack, owner)
    question = "tell me a story [[fault:rate=50]]"
    call = full_stack.content.content.StreamMessage(
        content_pb2.StreamMessageRequest(chat_id=chat_id, content=question, idempotency_key="s1"),
        metadata=full_stack.content.user(owner),
        timeout=60,
    )
    events = [event async for event in call]
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "sent" and events[0].sent.message.content == question
    assert "delta" in kinds and kinds[-1] == "job"
    final = events[-1].job
    assert final.status == "SUCCEEDED" and final.id == events[0].sent.job_id
    # The reply's stream may join after its first tokens: they come as the snapshot.
    streamed = "".join(
        e.snapshot.text if e.WhichOneof("event") == "snapshot" else e.delta.text
        for e in events
        if e.WhichOneof("event") in ("snapshot", "delta")
    )
    assert streamed == final.result.text
    chat = await answered(full_stack, owner, chat_id, 1)
    assert chat.messages[1].content == final.result.text
    # The same key streams the same reply again: no second message, no second job.
    again = [
        event
        async for event in full_stack.content.content.StreamMessage(
            content_pb2.StreamMessageRequest(
                chat_id=chat_id, content=question, idempotency_key="s1"
            ),
            metadata=full_stack.content.user(owner),
            timeout=60,
        )
    ]
    assert again[0].sent.job_id == final.id
    assert again[1].snapshot.text == final.result.text and again[-1].job.status == "SUCCEEDED"
