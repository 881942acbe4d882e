"""Premium-only models (plans): a model marked `premium` in the catalogue is served
only to a caller whose access token has the role `premium` (or moderator, admin);
anyone else is refused PERMISSION_DENIED `PREMIUM_REQUIRED` before any hold. Over
real gRPC, the real wallet and the sandbox's OpenAI-compatible server."""

from __future__ import annotations

import json

import grpc

from klik.generation.v1 import generation_pb2
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.wallet.support import failure

PREMIUM = {
    "KLIK_LLM_PROVIDERS": json.dumps(
        [
            {
                "name": "first",
                "type": "openai",
                "base_url": "{sandbox}/v1",
                "models": [
                    {"id": "plain-model", "default": True},
                    {"id": "gold-model", "premium": True},
                ],
            }
        ]
    ),
    "KLIK_LLM_ALIASES": json.dumps({"best": ["first/plain-model", "first/gold-model"]}),
}


async def premium_stack(make_jobs_stack: MakeJobsStack) -> JobsStack:
    return await make_jobs_stack(catalogue_env=PREMIUM)


async def test_a_premium_model_is_refused_without_the_role(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await premium_stack(make_jobs_stack)
    user_id, who = await stack.user()
    for model in ("gold-model", "best"):
        refused = await failure(
            stack.stub().CreateJob(
                generation_pb2.CreateJobRequest(
                    kind="TEXT",
                    prompt="hi",
                    provider="first" if model != "best" else "",
                    model=model,
                ),
                metadata=who,
                timeout=10,
            )
        )
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "PREMIUM_REQUIRED",
        ), model
    assert await stack.rows() == 0
    assert await stack.money(user_id) == (100, 0)  # nothing held
    # The plain model is everyone's.
    job = await stack.create(who, kind="TEXT", prompt="hi", provider="first", model="plain-model")
    assert (await stack.finished(who, job.id)).status == "SUCCEEDED"


async def test_a_premium_caller_is_served(make_jobs_stack: MakeJobsStack) -> None:
    stack = await premium_stack(make_jobs_stack)
    user_id, _ = await stack.user()
    who = stack.wallet.user(user_id, "premium")
    job = await stack.create(who, kind="TEXT", prompt="hi", provider="first", model="gold-model")
    done = await stack.finished(who, job.id)
    assert (done.status, done.model) == ("SUCCEEDED", "gold-model")
    listed = await stack.stub().ListProviders(
        generation_pb2.ListProvidersRequest(), metadata=who, timeout=10
    )
    [first] = [p for p in listed.providers if p.name == "first"]
    assert {m.id: m.premium for m in first.models} == {"plain-model": False, "gold-model": True}
