"""The streaming adapters (OpenAI-compatible and Anthropic) against the real sandbox
over real HTTP: deltas that join into the plain reply, usage that agrees, retries
only before the first delta, StreamInterrupted after it, and a closed generator
that the sandbox sees close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.generation.catalogue import Endpoint
from services.generation.providers.anthropic import Anthropic
from services.generation.providers.breaker import CircuitBreaker, CircuitState
from services.generation.providers.connections import ConnectionGate
from services.generation.providers.errors import (
    ContentRejected,
    ProviderError,
    StreamInterrupted,
)
from services.generation.providers.http import ProviderHttp
from services.generation.providers.openai_compat import OpenAICompatible
from services.generation.providers.values import TextDelta, TextEnd, TextRequest, TextStreamItem
from tests.generation.conftest import POLICY, FakeClock, SandboxServer
from tests.helpers import wait_for

PROMPT = "Describe a lighthouse at night"


Streaming = OpenAICompatible | Anthropic


@pytest.fixture
async def http(sandbox: SandboxServer, clock: FakeClock) -> AsyncIterator[ProviderHttp]:
    async with httpx.AsyncClient() as client:
        yield ProviderHttp(
            "sandbox",
            client,
            CircuitBreaker(POLICY.breaker, clock),
            gate=ConnectionGate(POLICY.max_connections),
            retry=POLICY.retry,
            timeouts=POLICY.timeouts,
        )


@pytest.fixture(params=["openai", "anthropic"])
def adapter(
    request: pytest.FixtureRequest, http: ProviderHttp, sandbox: SandboxServer
) -> OpenAICompatible | Anthropic:
    endpoint = Endpoint(sandbox.url + "/v1")
    if request.param == "openai":
        return OpenAICompatible(http, endpoint)
    return Anthropic(http, endpoint)


def path_of(adapter: Streaming) -> str:
    return "/v1/chat/completions" if isinstance(adapter, OpenAICompatible) else "/v1/messages"


def ask(prompt: str = PROMPT, **fields: object) -> TextRequest:
    return TextRequest(model="sandbox-text", prompt=prompt, system_prompt="Be brief.", **fields)  # type: ignore[arg-type]


async def collect(adapter: Streaming, request: TextRequest) -> list[TextStreamItem]:
    return [item async for item in adapter.stream(request)]


async def test_deltas_join_into_the_plain_reply_with_the_same_usage(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    plain = await adapter.complete(ask())
    items = await collect(adapter, ask())
    *deltas, end = items
    assert all(isinstance(d, TextDelta) and d.text for d in deltas)
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == plain.text
    assert len(deltas) == plain.usage.completion_tokens > 1, "one delta per token"
    assert end == TextEnd("sandbox", "sandbox-text", "stop", plain.usage)

    cut = await collect(adapter, ask(max_tokens=3))
    assert isinstance(cut[-1], TextEnd) and cut[-1].finish_reason == "length"
    assert cut[-1].usage is not None and cut[-1].usage.completion_tokens == 3
    [*_, record] = await sandbox.streams(path_of(adapter))
    assert record["ended"] == "completed"


async def test_no_usage_from_the_provider_ends_with_usage_none(adapter: Streaming) -> None:
    items = await collect(adapter, ask(PROMPT + " [[fault:incomplete]]"))
    end = items[-1]
    assert isinstance(end, TextEnd) and end.usage is None and end.finish_reason == "stop"
    assert sum(isinstance(i, TextDelta) for i in items) > 1


async def test_a_failure_before_the_first_byte_is_retried(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    items = await collect(adapter, ask(PROMPT + " [[fault:503x1]]"))
    assert isinstance(items[-1], TextEnd) and items[-1].usage is not None
    log = await sandbox.requests(path_of(adapter))
    assert [r["status"] for r in log] == [503, 200]


async def test_a_drop_after_the_first_delta_is_interrupted_not_retried(
    adapter: Streaming, sandbox: SandboxServer, http: ProviderHttp
) -> None:
    deltas: list[str] = []
    with pytest.raises(StreamInterrupted) as raised:
        async for item in adapter.stream(ask(PROMPT + " [[fault:drop=3]]")):
            assert isinstance(item, TextDelta)
            deltas.append(item.text)
    assert len(deltas) == 3
    assert f"after {len(''.join(deltas))} characters" in raised.value.message
    assert raised.value.reason == "STREAM_INTERRUPTED"
    assert await sandbox.count(path_of(adapter)) == 1
    # The breaker counts it: two more and the circuit opens (threshold 3).
    for _ in range(2):
        with pytest.raises(StreamInterrupted):
            await collect(adapter, ask(PROMPT + " [[fault:drop=3]]"))
    assert http.breaker.state is CircuitState.OPEN


async def test_a_stall_past_the_read_timeout_is_interrupted(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    started = time.monotonic()
    seen = 0
    with pytest.raises(StreamInterrupted) as raised:
        async for _ in adapter.stream(ask(PROMPT + " [[fault:stall=2]]")):
            seen += 1
    assert seen == 2
    assert time.monotonic() - started >= POLICY.timeouts.read
    assert "read timeout" in raised.value.message
    # The adapter closed the stream: the sandbox saw the stalled stream close.
    [record] = await wait_for(lambda: _ended(sandbox, path_of(adapter), "stalled"))
    assert record["tokens"] == 2


async def test_closing_the_generator_closes_the_providers_stream(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    items = adapter.stream(ask(PROMPT + " [[fault:rate=20]]"))
    first = await anext(items)
    assert isinstance(first, TextDelta)
    await items.aclose()
    [record] = await wait_for(lambda: _ended(sandbox, path_of(adapter), "client_closed"))
    assert 1 <= record["tokens"] <= 3


async def test_breaking_out_of_the_loop_closes_the_providers_stream(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    seen = 0
    async for item in adapter.stream(ask(PROMPT + " [[fault:rate=20]]")):
        assert isinstance(item, TextDelta)
        seen += 1
        if seen == 2:
            break
    [record] = await wait_for(lambda: _ended(sandbox, path_of(adapter), "client_closed"))
    assert 2 <= record["tokens"] <= 4


async def test_a_cancelled_consumer_closes_the_providers_stream(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in adapter.stream(ask(PROMPT + " [[fault:rate=10]]")):
            got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = await wait_for(lambda: _ended(sandbox, path_of(adapter), "client_closed"))
    assert record["tokens"] >= 1


async def test_the_deadline_bounds_the_whole_stream(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    # 5 tokens a second: each gap (0.2 s) is within the read timeout (0.5 s), the
    # whole reply (2 s and more) is not within the deadline.
    started = time.monotonic()
    with pytest.raises(StreamInterrupted) as raised:
        await collect_with_deadline(adapter, ask(PROMPT + " [[fault:rate=5]]"), started + 0.7)
    assert "deadline" in raised.value.message
    assert time.monotonic() - started < 1.5


async def collect_with_deadline(
    adapter: Streaming, request: TextRequest, deadline: float
) -> list[TextStreamItem]:
    return [item async for item in adapter.stream(request, deadline=deadline)]


async def test_a_filtered_reply_is_content_rejected(adapter: Streaming) -> None:
    with pytest.raises(ContentRejected):
        await collect(adapter, ask(PROMPT + " [[fault:filtered]]"))


async def test_a_malformed_answer_is_refused_once(
    adapter: Streaming, sandbox: SandboxServer
) -> None:
    with pytest.raises(ProviderError) as raised:
        await collect(adapter, ask(PROMPT + " [[fault:malformed]]"))
    assert not isinstance(raised.value, StreamInterrupted)
    assert "malformed" in raised.value.message
    assert await sandbox.count(path_of(adapter)) == 1


async def test_anthropic_complete_sends_the_messages_api_body(
    http: ProviderHttp, sandbox: SandboxServer
) -> None:
    anthropic = Anthropic(http, Endpoint(sandbox.url + "/v1", api_key="sk-ant-test"))
    openai = OpenAICompatible(http, Endpoint(sandbox.url + "/v1"))
    request = ask(max_tokens=0)
    result = await anthropic.complete(request)
    same = await openai.complete(request)
    assert (result.text, result.usage, result.finish_reason) == (
        same.text,
        same.usage,
        "stop",
    )
    assert result.provider == "sandbox" and result.model == "sandbox-text"


async def _ended(sandbox: SandboxServer, path: str, how: str) -> list[dict[str, Any]]:
    return [s for s in await sandbox.streams(path) if s["ended"] == how]
