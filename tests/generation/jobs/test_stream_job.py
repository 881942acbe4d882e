"""StreamJob: CreateJob and the job's stream in one call, over real gRPC (the stream
itself is WatchJob's, tested in test_streaming.py). The new job comes first, the
reply follows with no gap and no repeat, a replay of the key streams the same job
(no second hold), the same key by CreateJob names the same job, refusals come before
any event, and a client that asked for it cancels the job by going away."""

from __future__ import annotations

from typing import Any

import grpc

from klik.generation.v1 import generation_pb2
from services.generation.domain import MAX_TOKENS
from tests.generation.jobs.conftest import JobsStack
from tests.generation.jobs.test_streaming import SLOW, final, price, text_of
from tests.tokens import Metadata
from tests.wallet.support import failure


def stream(stack: JobsStack, who: Metadata, **fields: object) -> grpc.aio.UnaryStreamCall:
    return stack.stub().StreamJob(
        generation_pb2.StreamJobRequest(**fields),  # type: ignore[arg-type]
        metadata=who,
        timeout=30,
    )


async def collect(call: grpc.aio.UnaryStreamCall) -> list[generation_pb2.StreamJobResponse]:
    return [event async for event in call]


async def test_the_new_job_comes_first_then_its_reply_streams(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    events = await collect(stream(stack, who, kind="TEXT", prompt=SLOW, idempotency_key="s1"))
    first = events[0]
    assert first.WhichOneof("event") == "job" and first.event_id == "0"
    # RUNNING when a claim loop was idle and started it as it was queued.
    assert first.job.status in ("QUEUED", "RUNNING") and first.job.id
    done = final(events)  # type: ignore[arg-type]
    assert done.id == first.job.id and done.status == "SUCCEEDED"
    assert text_of(events) == done.result.text  # type: ignore[arg-type]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    assert len(deltas) == done.result.usage.completion_tokens > 1
    assert done.cost_credits == price(done.result.usage)
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_a_replayed_key_streams_the_same_job_with_no_second_hold(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    body: dict[str, Any] = {"kind": "TEXT", "prompt": "a short one", "idempotency_key": "again"}
    once = await collect(stream(stack, who, **body))
    again = await collect(stream(stack, who, **body))
    done = final(once)  # type: ignore[arg-type]
    assert final(again).id == done.id  # type: ignore[arg-type]
    # The finished job's whole text, as a snapshot first: nothing is produced twice.
    assert again[0].WhichOneof("event") == "snapshot"
    assert text_of(again) == done.result.text  # type: ignore[arg-type]
    by_create = await stack.create(who, **body)
    assert by_create.id == done.id
    assert await stack.sandbox.count("/v1/chat/completions") == 1
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_the_key_with_another_body_is_refused_before_any_event(stack: JobsStack) -> None:
    _, who = await stack.user()
    await stack.create(who, kind="TEXT", prompt="first body", idempotency_key="k")
    reused = await failure(
        collect(stream(stack, who, kind="TEXT", prompt="another body", idempotency_key="k"))
    )
    assert reused.code is grpc.StatusCode.ABORTED and reused.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_refusal_comes_before_any_event_and_creates_nothing(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    broke = await failure(
        collect(stream(stack, who, kind="TEXT", prompt="x", options={"max_tokens": MAX_TOKENS}))
    )
    assert broke.code is grpc.StatusCode.FAILED_PRECONDITION
    assert broke.reason == "INSUFFICIENT_CREDITS"
    wrong = await failure(
        collect(stream(stack, who, kind="TEXT", prompt="x", options={"max_tokens": -1}))
    )
    assert wrong.reason == "INVALID_OPTIONS"
    blank = await failure(collect(stream(stack, who, kind="TEXT", prompt="  ")))
    assert blank.code is grpc.StatusCode.INVALID_ARGUMENT
    listed = await stack.stub().ListJobs(generation_pb2.ListJobsRequest(), metadata=who)
    assert list(listed.jobs) == []
    await stack.settled(user_id, 100)


async def test_going_away_cancels_the_job_only_when_asked(stack: JobsStack) -> None:
    _, who = await stack.user()
    jobs = {}
    for cancel in (True, False):
        call = stream(
            stack,
            who,
            kind="TEXT",
            prompt="a long story [[fault:rate=5]]",
            cancel_on_disconnect=cancel,
        )
        async for event in call:
            if event.WhichOneof("event") == "job":
                jobs[cancel] = event.job.id
            if event.WhichOneof("event") == "delta":
                break
        call.cancel()
    assert (await stack.finished(who, jobs[True])).status == "CANCELLED"
    assert (await stack.finished(who, jobs[False], within=30)).status == "SUCCEEDED"
