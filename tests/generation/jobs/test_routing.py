"""Providers, plural, with routing (issue 13): a job created with a model alias runs
on the first of its models that can reply, over real gRPC and real HTTP to the
sandbox, which plays both an OpenAI-compatible server (`first`) and Anthropic's
Messages API (`second`) at different prices. The hold covers the dearest candidate;
the charge is at the model that replied, which the job names."""

from __future__ import annotations

import json

import grpc

from klik.generation.v1 import generation_pb2
from sandbox import content
from services.generation.domain import Kind, Usage
from services.generation.pricing import Prices, Request
from services.generation.settings import catalogue_from_env
from tests.generation.jobs.conftest import JobsStack, MakeJobsStack
from tests.wallet.support import failure

PRICES = Prices()
OPENAI_PATH, MESSAGES_PATH = "/v1/chat/completions", "/v1/messages"
ROUTED = {
    "KLIK_LLM_PROVIDERS": json.dumps(
        [
            {
                "name": "first",
                "type": "openai",
                "base_url": "{sandbox}/v1",
                "models": [{"id": "fast-model", "credits_per_million_tokens": 1_000}],
            },
            {
                "name": "second",
                "type": "anthropic",
                "base_url": "{sandbox}/v1",
                "api_key": "sk-sandbox",
                "models": [{"id": "careful-model", "credits_per_million_tokens": 3_000}],
            },
        ]
    ),
    "KLIK_LLM_ALIASES": json.dumps({"chat": ["first/fast-model", "second/careful-model"]}),
}
CATALOGUE = catalogue_from_env(
    {name: value.replace("{sandbox}", "http://sandbox") for name, value in ROUTED.items()}
)
FAST = CATALOGUE.resolve(Kind.TEXT, "first", "fast-model")[1]
CAREFUL = CATALOGUE.resolve(Kind.TEXT, "second", "careful-model")[1]


def charge(model: str, usage: generation_pb2.Usage) -> int:
    priced = FAST if model == FAST.id else CAREFUL
    tokens = Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    return PRICES.actual(Kind.TEXT, priced, tokens)


def open_circuit(stack: JobsStack, provider: str) -> None:
    """Fail calls on `provider`'s breaker until it opens (the fake clock keeps it so)."""
    breaker = stack.replicas[0].providers.breakers[provider]
    while breaker.state != "open":
        permit = breaker.acquire()
        assert permit is not None
        breaker.failed(permit)


async def routed(make_jobs_stack: MakeJobsStack) -> JobsStack:
    return await make_jobs_stack(catalogue_env=ROUTED)


async def test_an_alias_holds_its_dearest_candidates_estimate(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await routed(make_jobs_stack)
    _, who = await stack.user()
    prompt = "a short question"
    options = generation_pb2.JobOptions(max_tokens=10_000)
    job = await stack.create(who, kind="TEXT", prompt=prompt, model="chat", options=options)
    estimates = [
        PRICES.estimate(Kind.TEXT, m, Request(text=prompt, max_tokens=10_000))
        for m in (FAST, CAREFUL)
    ]
    assert estimates[0] < estimates[1], "the test needs candidates of different prices"
    assert job.cost_credits == estimates[1]
    assert (job.alias, job.provider, job.model) == ("chat", "first", "fast-model")
    done = await stack.finished(who, job.id)
    assert (done.status, done.provider, done.model) == ("SUCCEEDED", "first", "fast-model")
    assert done.cost_credits == charge("fast-model", done.result.usage) < estimates[1]


async def test_first_providers_circuit_open_the_second_serves_at_its_price(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await routed(make_jobs_stack)
    user_id, who = await stack.user()
    open_circuit(stack, "first")
    job = await stack.create(who, kind="CHAT", prompt="hello there", model="chat")
    assert (job.provider, job.model) == ("second", "careful-model"), "first available"
    done = await stack.finished(who, job.id)
    assert (done.status, done.alias, done.provider, done.model) == (
        "SUCCEEDED",
        "chat",
        "second",
        "careful-model",
    )
    assert done.result.text == content.reply("careful-model", "hello there", 1024)[0]
    assert done.cost_credits == charge("careful-model", done.result.usage) > 0
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.sandbox.count(OPENAI_PATH) == 0, "an open circuit is not called"
    assert await stack.sandbox.count(MESSAGES_PATH) == 1


async def test_every_candidates_circuit_open_is_refused_before_any_hold(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await routed(make_jobs_stack)
    user_id, who = await stack.user()
    for name in ("first", "second"):
        open_circuit(stack, name)
    refused = await failure(
        stack.stub().CreateJob(
            generation_pb2.CreateJobRequest(kind="TEXT", prompt="hi", model="chat"),
            metadata=who,
            timeout=10,
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "PROVIDER_UNAVAILABLE",
    )
    assert await stack.money(user_id) == (100, 0)


async def test_a_replay_gets_its_job_even_when_every_circuit_opened_since(
    make_jobs_stack: MakeJobsStack,
) -> None:
    """CreateJob prices a request before it looks for its key (no read before the
    insert); a replay it would now refuse still gets the job its key made."""
    stack = await routed(make_jobs_stack)
    _, who = await stack.user()

    def request(key: str) -> generation_pb2.CreateJobRequest:
        return generation_pb2.CreateJobRequest(
            kind="TEXT", prompt="once", model="chat", idempotency_key=key
        )

    job = (await stack.stub().CreateJob(request("k-1"), metadata=who, timeout=10)).job
    await stack.finished(who, job.id)
    for name in ("first", "second"):
        open_circuit(stack, name)
    again = (await stack.stub().CreateJob(request("k-1"), metadata=who, timeout=10)).job
    assert (again.id, again.status) == (job.id, "SUCCEEDED")
    other = await failure(stack.stub().CreateJob(request("k-2"), metadata=who, timeout=10))
    assert other.reason == "PROVIDER_UNAVAILABLE", "a new key is still refused"
    assert await stack.sandbox.count(OPENAI_PATH) == 1


async def test_the_default_alias_falls_back_when_the_first_fails_before_its_first_token(
    stack: JobsStack,
) -> None:
    """`make run`'s config: the sandbox's two shapes under `default-chat`."""
    user_id, who = await stack.user()
    await stack.sandbox.fault("500", path=OPENAI_PATH)
    job = await stack.create(who, kind="TEXT", prompt="fall back please", model="default-chat")
    assert (job.alias, job.provider) == ("default-chat", "sandbox")
    done = await stack.finished(who, job.id)
    assert (done.status, done.provider, done.model) == (
        "SUCCEEDED",
        "sandbox-anthropic",
        "sandbox-text",
    )
    assert done.result.text == content.reply("sandbox-text", "fall back please", 1024)[0]
    await stack.settled(user_id, 100 - done.cost_credits)
    # The first was asked as often as its retries allow, then the second once.
    assert await stack.sandbox.count(OPENAI_PATH) == 3
    assert await stack.sandbox.count(MESSAGES_PATH) == 1


async def test_a_failure_after_the_first_token_is_not_restarted_elsewhere(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await routed(make_jobs_stack)
    user_id, who = await stack.user()
    prompt = "three words only [[fault:drop=3]]"
    job = await stack.create(who, kind="CHAT", prompt=prompt, model="chat")
    done = await stack.finished(who, job.id)
    assert (done.status, done.error.code) == ("FAILED", "STREAM_INTERRUPTED")
    assert (done.provider, done.model) == ("first", "fast-model")
    assert len(done.result.text.split()) == 3
    assert done.result.usage_estimated
    assert done.cost_credits == charge("fast-model", done.result.usage) > 0
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.sandbox.count(OPENAI_PATH) == 1, "asked once"
    assert await stack.sandbox.count(MESSAGES_PATH) == 0, "no silent restart elsewhere"


async def test_a_job_on_the_anthropic_provider_streams_and_is_charged_its_usage(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await routed(make_jobs_stack)
    user_id, who = await stack.user()
    prompt = "tell me about the sea"
    job = await stack.create(
        who,
        kind="CHAT",
        prompt=prompt,
        provider="second",
        model="careful-model",
        history=[generation_pb2.ChatTurn(role="user", content="hi")],
        options=generation_pb2.JobOptions(system_prompt="be brief", max_tokens=200),
    )
    assert job.alias == ""
    done = await stack.finished(who, job.id)
    assert (done.status, done.provider, done.model) == ("SUCCEEDED", "second", "careful-model")
    text = content.reply("careful-model", prompt, 200)[0]
    usage = done.result.usage
    assert done.result.text == text and not done.result.usage_estimated
    assert usage.completion_tokens == content.tokens(text)
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert done.cost_credits == charge("careful-model", usage)
    await stack.settled(user_id, 100 - done.cost_credits)
    [request] = await stack.sandbox.requests(MESSAGES_PATH)
    assert request["status"] == 200
