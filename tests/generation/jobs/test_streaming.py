"""TEXT and CHAT replies stream (issue 13): WatchJob over real gRPC, from the replica
running the job and from another one, joined late and resumed; billing to the
token, estimated when the provider sends no usage; cancel and failure mid-stream.
The sandbox streams at `[[fault:rate=N]]` tokens a second."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from klik.generation.v1 import generation_pb2
from services.generation import tokens
from services.generation.catalogue import SANDBOX_MODELS
from services.generation.domain import Kind, Usage
from services.generation.pricing import Prices
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.helpers import wait_for
from tests.tokens import Metadata
from tests.wallet.support import failure

PRICES = Prices()
TEXT_MODEL = next(m for m in SANDBOX_MODELS if Kind.TEXT in m.kinds)
# Long enough to watch it arrive: 12 to 35 words at 8 a second.
SLOW = "tell me about lighthouses [[fault:rate=8]]"


def price(usage: generation_pb2.Usage) -> int:
    return PRICES.actual(
        Kind.TEXT,
        TEXT_MODEL,
        Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
    )


def watch(
    stack: JobsStack, who: Metadata, job_id: str, replica: int = 0, **fields: object
) -> grpc.aio.UnaryStreamCall:
    return stack.stub(replica).WatchJob(
        generation_pb2.WatchJobRequest(job_id=job_id, **fields),  # type: ignore[arg-type]
        metadata=who,
        timeout=30,
    )


async def collect(
    call: AsyncIterator[generation_pb2.WatchJobResponse],
) -> list[generation_pb2.WatchJobResponse]:
    return [event async for event in call]


def text_of(events: list[generation_pb2.WatchJobResponse], start: str = "") -> str:
    """The text a client puts together from the events, checking that every delta
    starts exactly where the text so far ends (no gap, no repeat)."""
    text = start
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "snapshot":
            assert not text, "a snapshot comes first or not at all"
            text = event.snapshot.text
        elif kind == "delta":
            assert event.delta.offset == len(text), (event.delta.offset, len(text))
            text += event.delta.text
        if kind in ("snapshot", "delta"):
            assert event.event_id == str(len(text))
    return text


def final(events: list[generation_pb2.WatchJobResponse]) -> generation_pb2.Job:
    assert events[-1].WhichOneof("event") == "job"
    job: generation_pb2.Job = events[-1].job
    assert job.status in ("SUCCEEDED", "FAILED", "CANCELLED")
    return job


async def test_a_reply_streams_and_is_charged_its_priced_usage(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt=SLOW)
    call = watch(stack, who, job.id)
    events: list[generation_pb2.WatchJobResponse] = []
    first_delta_status = ""
    async for event in call:
        events.append(event)
        if event.WhichOneof("event") == "delta" and not first_delta_status:
            # The first token is here while the provider is still producing the rest.
            first_delta_status = (await stack.get(who, job.id)).status
    assert first_delta_status == "RUNNING"
    done = final(events)
    assert done.status == "SUCCEEDED"
    assert text_of(events) == done.result.text and done.result.text.startswith("Sandbox reply")
    assert not done.result.usage_estimated
    assert done.cost_credits == price(done.result.usage)
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    assert len(deltas) == done.result.usage.completion_tokens
    assert deltas[-1].tokens == len(deltas)
    assert [e.job.status for e in events if e.WhichOneof("event") == "job"][-2:] == [
        "RUNNING",
        "SUCCEEDED",
    ]
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_a_late_joiner_on_another_replica_gets_the_text_so_far_then_the_rest(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=2)
    _, who = await stack.user()
    job = await stack.create(who, kind="CHAT", prompt=SLOW, replica=0)
    first = watch(stack, who, job.id, replica=0)
    early: list[generation_pb2.WatchJobResponse] = []
    async for event in first:
        early.append(event)
        if sum(e.WhichOneof("event") == "delta" for e in early) >= 5:
            break
    # Join from both replicas mid-stream: whichever runs the job, one is "another".
    late = await asyncio.gather(
        collect(watch(stack, who, job.id, replica=0)),
        collect(watch(stack, who, job.id, replica=1)),
        collect(first),
    )
    done = final(late[0])
    assert done.status == "SUCCEEDED"
    for events in late[:2]:
        assert events[0].WhichOneof("event") == "snapshot"
        assert events[0].snapshot.text  # the text so far
        assert text_of(events) == done.result.text
    assert text_of(early + late[2]) == done.result.text


async def test_last_event_id_resumes_a_dropped_stream_with_no_gap_and_no_repeat(
    make_jobs_stack: MakeJobsStack,
) -> None:
    # A reply of up to 4.4 s: the default 5 s deadline is too close on a busy machine.
    stack = await make_jobs_stack(deadline=30.0)
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt=SLOW)
    call = watch(stack, who, job.id)
    seen: list[generation_pb2.WatchJobResponse] = []
    async for event in call:
        seen.append(event)
        if sum(e.WhichOneof("event") == "delta" for e in seen) >= 4:
            break
    call.cancel()  # the connection drops
    so_far = text_of(seen)
    resumed = await collect(watch(stack, who, job.id, last_event_id=seen[-1].event_id))
    assert resumed[0].WhichOneof("event") in ("delta", "job")
    done = final(resumed)
    assert done.status == "SUCCEEDED", done.error
    assert text_of(resumed, start=so_far) == done.result.text
    # The job was not stopped by the drop.
    assert done.result.text != so_far


async def test_a_finished_job_streams_its_whole_text_and_its_final_status(
    stack: JobsStack,
) -> None:
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="a short one")
    done = await stack.finished(who, job.id)
    events = await collect(watch(stack, who, job.id))
    assert [e.WhichOneof("event") for e in events] == ["snapshot", "job"]
    assert events[0].snapshot.text == done.result.text and final(events) == done
    for bad in ("999999", "not-a-number"):
        refused = await failure(collect(watch(stack, who, job.id, last_event_id=bad)))
        assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
        assert refused.reason == "INVALID_EVENT_ID"


async def test_another_users_job_is_not_found(stack: JobsStack) -> None:
    _, who = await stack.user()
    _, other = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="mine")
    refused = await failure(collect(watch(stack, other, job.id)))
    assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")


async def test_an_id_that_is_no_job_id_is_not_found_and_never_a_subject(
    stack: JobsStack,
) -> None:
    """A watch subscribes before it reads the row; a wildcard must never be one."""
    _, who = await stack.user()
    for job_id in (">", "*", "a b", str(uuid.uuid4()).upper()):
        refused = await failure(collect(watch(stack, who, job_id)))
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")


async def test_without_a_usage_chunk_the_reply_is_charged_by_the_tokenizer(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    prompt = "count my words [[fault:incomplete]]"
    job = await stack.create(who, kind="TEXT", prompt=prompt)
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED" and done.result.usage_estimated
    usage = done.result.usage
    assert usage.completion_tokens == tokens.count(done.model, done.result.text)
    assert usage.prompt_tokens == tokens.count(done.model, prompt) + 2 * tokens.TOKENS_PER_MESSAGE
    assert done.cost_credits == price(usage)
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_cancel_mid_stream_charges_the_text_so_far_and_closes_the_provider_stream(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="a long story [[fault:rate=10]]")
    call = watch(stack, who, job.id)
    seen: list[generation_pb2.WatchJobResponse] = []
    async for event in call:
        seen.append(event)
        if sum(e.WhichOneof("event") == "delta" for e in seen) >= 3:
            break
    reply = await stack.stub().CancelJob(
        generation_pb2.CancelJobRequest(job_id=job.id), metadata=who, timeout=10
    )
    cancelled = reply.job
    assert cancelled.status == "CANCELLED"
    rest = [event async for event in call]
    assert final(rest).status == "CANCELLED"
    text = cancelled.result.text
    assert text and text_of(seen + rest) == text
    assert cancelled.result.usage_estimated
    assert cancelled.cost_credits == price(cancelled.result.usage) > 0
    await stack.settled(user_id, 100 - cancelled.cost_credits)
    assert await stack.charges(user_id) == [-cancelled.cost_credits]

    # The sandbox saw its stream closed by the client, well before its end.
    async def closed() -> list[dict[str, Any]] | None:
        found = await stack.sandbox.streams()
        return found if found and found[-1]["ended"] else None

    streams = await wait_for(closed, 10, message="the stream's end recorded")
    assert streams is not None
    assert streams[-1]["ended"] == "client_closed"
    assert streams[-1]["tokens"] < 20


async def test_a_stream_that_breaks_after_its_first_token_fails_and_charges_what_came(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="three words only [[fault:drop=3]]")
    done = await stack.finished(who, job.id)
    assert done.status == "FAILED"
    assert len(done.result.text.split()) == 3
    assert done.cost_credits == price(done.result.usage) > 0
    await stack.settled(user_id, 100 - done.cost_credits)
    # Not silently restarted: the provider was asked once.
    assert await stack.sandbox.count("/v1/chat/completions") == 1


async def test_a_client_that_asked_for_it_cancels_the_job_by_going_away(
    stack: JobsStack,
) -> None:
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="a long story [[fault:rate=5]]")
    call = watch(stack, who, job.id, cancel_on_disconnect=True)
    async for event in call:
        if event.WhichOneof("event") == "delta":
            break
    call.cancel()
    done = await stack.finished(who, job.id)
    assert done.status == "CANCELLED"


async def test_a_refused_watch_cancels_nothing_even_if_asked_to(stack: JobsStack) -> None:
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="keep going [[fault:rate=40]]")
    refused = await failure(
        collect(watch(stack, who, job.id, last_event_id="oops", cancel_on_disconnect=True))
    )
    assert refused.reason == "INVALID_EVENT_ID"
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED"


async def test_a_client_that_goes_away_does_not_stop_the_job(stack: JobsStack) -> None:
    _, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="keep going [[fault:rate=40]]")
    call = watch(stack, who, job.id)
    async for event in call:
        if event.WhichOneof("event") == "delta":
            break
    call.cancel()
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED"


async def deltas_seen(stack: JobsStack, who: Metadata, job_id: str, count: int) -> str:
    """Watch until `count` deltas arrived; the text so far."""
    seen: list[generation_pb2.WatchJobResponse] = []
    call = watch(stack, who, job_id)
    async for event in call:
        seen.append(event)
        if sum(e.WhichOneof("event") == "delta" for e in seen) >= count:
            break
    call.cancel()
    return text_of(seen)


async def test_a_reply_whose_worker_died_mid_stream_is_not_started_again(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=1, deadline=20.0)
    user_id, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="a long story [[fault:rate=5]]")
    await deltas_seen(stack, who, job.id, 2)
    so_far = await stack.column(job.id, "partial_text")
    await stack.start()
    await stack.replicas[0].kill()  # the lease runs out; the second replica resumes it
    done = await stack.finished(who, job.id, within=30, replica=1)
    assert done.status == "FAILED" and done.error.code == "STREAM_INTERRUPTED"
    assert done.result.text.startswith(so_far) and done.result.usage_estimated
    assert done.cost_credits == price(done.result.usage) > 0
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.sandbox.count("/v1/chat/completions") == 1, "asked once"


async def test_cancelling_a_reply_whose_worker_is_gone_charges_the_text_last_saved(
    make_jobs_stack: MakeJobsStack,
) -> None:
    # A lease far longer than the test: nobody resumes the job meanwhile.
    stack = await make_jobs_stack(
        replicas=1, deadline=20.0, lease_seconds=120.0, cancel_wait_seconds=0.5
    )
    user_id, who = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="a long story [[fault:rate=5]]")
    await deltas_seen(stack, who, job.id, 2)
    await stack.replicas[0].kill()
    so_far = await stack.column(job.id, "partial_text")
    reply = await stack.stub().CancelJob(
        generation_pb2.CancelJobRequest(job_id=job.id), metadata=who, timeout=10
    )
    cancelled = reply.job
    assert cancelled.status == "CANCELLED" and cancelled.result.text == so_far
    assert cancelled.cost_credits == price(cancelled.result.usage) > 0
    await stack.settled(user_id, 100 - cancelled.cost_credits)
