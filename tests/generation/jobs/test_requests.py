"""CreateJob's refusals (each documented code, and no hold placed), and ListJobs'
pages, filter and cursors."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from klik.generation.v1 import generation_pb2
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.wallet.support import failure

Opts = generation_pb2.JobOptions


@pytest.mark.parametrize(
    ("fields", "code", "reason"),
    [
        ({"kind": "POEM"}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KIND"),
        ({"kind": "TEXT", "prompt": "  "}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (
            {"kind": "TEXT", "provider": "openai"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "UNKNOWN_PROVIDER",
        ),
        ({"kind": "TEXT", "model": "gpt-9"}, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_MODEL"),
        (
            {"kind": "TEXT", "options": Opts(width=512)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "IMAGE", "options": Opts(num_images=5)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "IMAGE", "options": Opts(width=100)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "CHAT", "options": Opts(temperature=2.5)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "AVATAR_VIDEO", "options": Opts(avatar_id="nobody")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "AVATAR_VIDEO", "options": Opts(voice_id="mute")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
        (
            {"kind": "TEXT", "history": [generation_pb2.ChatTurn(role="user", content="x")]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_OPTIONS",
        ),
    ],
)
async def test_create_job_refusals_hold_nothing(
    stack: JobsStack, fields: dict[str, Any], code: grpc.StatusCode, reason: str
) -> None:
    user_id, who = await stack.user()
    request = generation_pb2.CreateJobRequest(**{"prompt": "hello", **fields})
    refused = await failure(stack.stub().CreateJob(request, metadata=who))
    assert (refused.code, refused.reason) == (code, reason)
    assert await stack.money(user_id) == (100, 0)
    assert await stack.rows() == 0


async def test_an_unreachable_avatar_catalogue_is_provider_unavailable(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    await stack.sandbox.fault("500", path="/v2/avatars")
    request = generation_pb2.CreateJobRequest(
        kind="AVATAR_VIDEO", prompt="hello", options=Opts(avatar_id="anyone")
    )
    refused = await failure(stack.stub().CreateJob(request, metadata=who))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "PROVIDER_UNAVAILABLE",
    )
    assert await stack.money(user_id) == (100, 0)
    assert await stack.rows() == 0


async def test_create_job_needs_a_user_token(stack: JobsStack) -> None:
    refused = await failure(
        stack.stub().CreateJob(generation_pb2.CreateJobRequest(kind="TEXT", prompt="hi"))
    )
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED


async def test_list_jobs_pages_newest_first_with_a_status_filter(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(workers=0)  # nothing runs: all stay QUEUED
    _, who = await stack.user()
    _, other = await stack.user()
    created = [(await stack.create(who, kind="TEXT", prompt=f"job {i}")).id for i in range(5)]
    await stack.create(other, kind="TEXT", prompt="not yours")
    cancelled = created[1]
    await stack.stub().CancelJob(generation_pb2.CancelJobRequest(job_id=cancelled), metadata=who)

    seen, token = [], ""
    while True:
        page = await stack.stub().ListJobs(
            generation_pb2.ListJobsRequest(page_size=2, page_token=token), metadata=who
        )
        assert len(page.jobs) <= 2
        seen += [job.id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == created[::-1]

    only = await stack.stub().ListJobs(
        generation_pb2.ListJobsRequest(status="CANCELLED"), metadata=who
    )
    assert [job.id for job in only.jobs] == [cancelled]
    queued = await stack.stub().ListJobs(
        generation_pb2.ListJobsRequest(status="QUEUED"), metadata=who
    )
    assert [job.id for job in queued.jobs] == [j for j in created[::-1] if j != cancelled]

    for request, reason in (
        (generation_pb2.ListJobsRequest(status="DONE"), "INVALID_STATUS"),
        (generation_pb2.ListJobsRequest(status="PENDING"), "INVALID_STATUS"),
        (generation_pb2.ListJobsRequest(page_token="garbage"), "INVALID_PAGE_TOKEN"),
    ):
        refused = await failure(stack.stub().ListJobs(request, metadata=who))
        assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)


async def test_an_estimate_is_the_hold_a_job_would_place_and_places_none(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    request = generation_pb2.EstimateJobRequest(
        kind="TEXT",
        prompt="how long is a piece of string",
        options=generation_pb2.JobOptions(max_tokens=200),
    )
    estimate = await stack.stub().EstimateJob(request, metadata=who, timeout=10)
    assert estimate.estimate_credits > 0
    assert (estimate.provider, estimate.model) != ("", "")
    assert await stack.money(user_id) == (100, 0), "nothing held"
    assert await stack.rows() == 0, "no job"
    job = await stack.create(who, kind="TEXT", prompt=request.prompt, options=request.options)
    assert job.cost_credits == estimate.estimate_credits
    assert (job.provider, job.model) == (estimate.provider, estimate.model)
    refused = await failure(
        stack.stub().EstimateJob(
            generation_pb2.EstimateJobRequest(kind="SONG", prompt="la"), metadata=who, timeout=10
        )
    )
    assert refused.reason == "INVALID_KIND"
