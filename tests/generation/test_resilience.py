"""Provider calls under failure, against the real sandbox: retries with backoff that
honour Retry-After (measured on the sandbox's own request log), bounded attempts,
timeouts, malformed bodies, what is never retried because it may have started a
paid job, and the circuit breaker's whole cycle (its clock moved by hand)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time

import grpc
import pytest

from kit.context import deadline_var
from services.generation.providers.errors import (
    ContentRejected,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from services.generation.providers.http import Timeouts
from services.generation.providers.registry import Providers
from services.generation.providers.values import ImageRequest, TextRequest, VideoRequest
from tests.generation.conftest import POLICY, FakeClock, MakeProviders, SandboxServer
from tests.helpers import wait_for

CHAT = "/v1/chat/completions"
GENERATIONS = "/api/rest/v1/generations"


def text(prompt: str) -> TextRequest:
    return TextRequest(model="sandbox-text", prompt=prompt)


def image(prompt: str) -> ImageRequest:
    return ImageRequest(model="sandbox-image", prompt=prompt, width=32, height=32)


async def test_429_twice_then_success_waits_as_told(
    providers: Providers, sandbox: SandboxServer
) -> None:
    result = await providers.text("sandbox").complete(text("hello [[fault:429x2]]"))
    assert result.provider == "sandbox" and result.text
    log = await sandbox.requests(CHAT)
    assert [r["status"] for r in log] == [429, 429, 200], "exactly three requests"
    # The sandbox asked for Retry-After: 1; the gaps it saw are at least that, though
    # the client's own backoff here is hundredths of a second.
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(log)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert providers.circuit_state("sandbox") == "closed"


async def test_a_job_start_is_retried_after_429_honouring_an_http_date(
    providers: Providers, sandbox: SandboxServer
) -> None:
    """429 means the provider did not act, so even a paid start is retried."""
    started = await providers.images("sandbox").start(
        image("a kite [[fault:429x1,retry-after=@2]]")
    )
    assert started.job_id
    log = await sandbox.requests(GENERATIONS)
    assert [r["status"] for r in log] == [429, 200]
    # An HTTP-date has whole seconds: two seconds ahead is at least one from now.
    assert log[1]["at"] - log[0]["at"] >= 1.0


async def test_permanent_5xx_fails_after_bounded_attempts(
    providers: Providers, sandbox: SandboxServer
) -> None:
    with pytest.raises(ProviderError) as error:
        await providers.text("sandbox").complete(text("x [[fault:500]]"))
    assert error.value.reason == "PROVIDER_ERROR"
    assert error.value.message == "sandbox answered 500: sandbox fault: 500"
    assert error.value.details == {"provider": "sandbox"}
    assert await sandbox.count(CHAT) == 3, "max_attempts, no more"


async def test_a_job_start_is_not_retried_when_the_provider_may_have_acted(
    providers: Providers, sandbox: SandboxServer
) -> None:
    """A 500 after a start request may mean the job was started: repeating it could
    start (and pay for) a second one, so the call fails at once instead."""
    with pytest.raises(ProviderError):
        await providers.images("sandbox").start(image("x [[fault:500]]"))
    assert await sandbox.count(GENERATIONS) == 1
    # 503 says it was not: retried.
    started = await providers.images("sandbox").start(image("y [[fault:503x1]]"))
    assert started.job_id
    assert [r["status"] for r in await sandbox.requests(GENERATIONS)] == [500, 503, 200]


async def test_a_hanging_provider_times_out(
    make_providers: MakeProviders, sandbox: SandboxServer
) -> None:
    began = time.monotonic()
    with pytest.raises(ProviderTimeout) as error:
        await make_providers().text("sandbox").complete(text("x [[fault:hang]]"))
    assert error.value.reason == "PROVIDER_TIMEOUT"
    assert "no answer in time (ReadTimeout)" in error.value.message
    assert await sandbox.count(CHAT) == 3, "a completion may be asked again"
    assert time.monotonic() - began < 5, "three read timeouts of 0.5 s and short backoffs"

    # (A fresh breaker: three timeouts opened the first one.)
    with pytest.raises(ProviderTimeout):
        await make_providers().images("sandbox").start(image("x [[fault:hang]]"))
    assert await sandbox.count(GENERATIONS) == 1, "a start that may have started is not"


async def test_a_malformed_body_is_a_clear_error(
    providers: Providers, sandbox: SandboxServer
) -> None:
    with pytest.raises(ProviderError) as error:
        await providers.text("sandbox").complete(text("x [[fault:malformed]]"))
    assert error.value.reason == "PROVIDER_ERROR"
    assert error.value.message.startswith(
        "sandbox sent a malformed response (200): JSONDecodeError"
    )
    assert await sandbox.count(CHAT) == 1


async def test_circuit_opens_fails_fast_half_opens_and_closes(
    providers: Providers, sandbox: SandboxServer, clock: FakeClock
) -> None:
    await sandbox.fault("500")
    with pytest.raises(ProviderError):
        await providers.text("sandbox").complete(text("one"))  # 3 failed attempts
    assert providers.circuit_state("sandbox") == "open"
    assert await sandbox.count() == 3

    # Open: refused without a request, for every kind the provider serves.
    with pytest.raises(ProviderUnavailable) as refused:
        await providers.text("sandbox").complete(text("two"))
    assert refused.value.reason == "PROVIDER_UNAVAILABLE"
    assert refused.value.retry_after_seconds == 30.0
    with pytest.raises(ProviderUnavailable):
        await providers.images("sandbox").start(image("three"))
    with pytest.raises(ProviderUnavailable):
        providers.check_available("sandbox")
    assert await sandbox.count() == 3, "fail fast: nothing reached the sandbox"

    # After the cool-down one probe goes through; it fails: open again.
    clock.advance(30)
    assert providers.circuit_state("sandbox") == "half_open"
    providers.check_available("sandbox")  # half-open takes new work: it will probe
    with pytest.raises(ProviderError) as probe:
        await providers.text("sandbox").complete(text("probe"))
    assert not isinstance(probe.value, ProviderUnavailable)
    assert await sandbox.count() == 4, "exactly one probe, not retried"
    assert providers.circuit_state("sandbox") == "open"

    # The provider recovers; the next probe succeeds and closes the circuit.
    await sandbox.clear_faults()
    clock.advance(30)
    assert (await providers.text("sandbox").complete(text("probe again"))).text
    assert providers.circuit_state("sandbox") == "closed"
    await providers.text("sandbox").complete(text("and on"))
    assert await sandbox.count() == 6


async def test_half_open_lets_one_probe_through_at_a_time(
    providers: Providers, sandbox: SandboxServer, clock: FakeClock
) -> None:
    await sandbox.fault("500")
    with pytest.raises(ProviderError):
        await providers.text("sandbox").complete(text("trip"))
    await sandbox.clear_faults()
    clock.advance(30)

    probe = asyncio.create_task(
        providers.text("sandbox").complete(text("slow probe [[fault:latency=400]]"))
    )
    await wait_for(lambda: sandbox.count(CHAT), message="probe reached the sandbox")
    await wait_for(lambda: len(sandbox.state.requests) == 4, message="the probe is in flight")
    with pytest.raises(ProviderUnavailable):
        await providers.text("sandbox").complete(text("while probing"))
    assert (await probe).text
    assert providers.circuit_state("sandbox") == "closed"
    assert await sandbox.count(CHAT) == 4


async def test_a_cancelled_probe_frees_the_probe_slot(
    providers: Providers, sandbox: SandboxServer, clock: FakeClock
) -> None:
    await sandbox.fault("500")
    with pytest.raises(ProviderError):
        await providers.text("sandbox").complete(text("trip"))
    await sandbox.clear_faults()
    clock.advance(30)
    probe = asyncio.create_task(
        providers.text("sandbox").complete(text("probe [[fault:latency=5000]]"))
    )
    await wait_for(lambda: len(sandbox.state.requests) == 4, message="the probe is in flight")
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert providers.circuit_state("sandbox") == "half_open"
    assert (await providers.text("sandbox").complete(text("next probe"))).text
    assert providers.circuit_state("sandbox") == "closed"


async def test_requests_past_the_connection_limit_wait_in_the_replica_and_blame_no_one(
    make_providers: MakeProviders, sandbox: SandboxServer
) -> None:
    """One connection, held by a slow reply: the other calls wait for it at the
    gate, give up after the pool timeout (retried, as never sent), and the provider
    is not blamed for it: the circuit stays closed. Once the slot is free, calls go."""
    policy = dataclasses.replace(
        POLICY,
        max_connections=1,
        timeouts=Timeouts(connect=2.0, read=5.0, write=2.0, pool=0.1),
    )
    providers = make_providers(policy)
    slow = asyncio.ensure_future(
        providers.text("sandbox").complete(text("slow [[fault:latency=1500]]"))
    )

    async def slow_sent() -> bool:
        return await sandbox.count(CHAT) == 1

    await wait_for(slow_sent, 5, message="the slow request reached the sandbox")
    for _ in range(4):  # more than the breaker's threshold of 3
        with pytest.raises(ProviderTimeout) as error:
            await providers.text("sandbox").complete(text("waiting"))
        assert "no answer in time (PoolTimeout)" in error.value.message
    assert await sandbox.count(CHAT) == 1, "none of them reached the provider"
    assert providers.circuit_state("sandbox") == "closed"
    assert (await slow).text
    assert (await providers.text("sandbox").complete(text("after"))).text
    assert await sandbox.count(CHAT) == 2


async def test_refusals_do_not_open_the_circuit(
    providers: Providers, sandbox: SandboxServer
) -> None:
    for _ in range(5):  # more than the threshold of 3
        with pytest.raises(ProviderError) as error:
            await providers.images("sandbox").start(
                ImageRequest(model="sandbox-image", prompt="x", width=33, height=32)
            )
        assert "refused the request (400)" in error.value.message
    assert providers.circuit_state("sandbox") == "closed"
    assert await sandbox.count(GENERATIONS) == 5, "a refusal is not retried"


async def test_the_rpc_deadline_bounds_provider_calls(
    providers: Providers, sandbox: SandboxServer
) -> None:
    """A call made while serving an RPC gives up when the RPC's deadline does."""
    began = time.monotonic()
    token = deadline_var.set(began + 0.3)
    try:
        with pytest.raises(ProviderTimeout):
            await providers.text("sandbox").complete(text("x [[fault:latency=2000]]"))
    finally:
        deadline_var.reset(token)
    assert time.monotonic() - began < 1.5
    assert await sandbox.count(CHAT) == 1, "no retry past the deadline"

    with pytest.raises(ProviderTimeout) as error:
        await providers.text("sandbox").complete(text("late"), deadline=time.monotonic() - 1)
    assert error.value.message == "sandbox: deadline passed"
    assert await sandbox.count(CHAT) == 1, "an expired deadline sends nothing"
    assert providers.circuit_state("sandbox") == "closed", "no verdict: not a failure"


async def test_an_answer_missing_what_the_api_promises_is_malformed(
    providers: Providers, make_providers: MakeProviders, sandbox: SandboxServer
) -> None:
    """Valid JSON is not enough: no images or duration is no result, no usage no
    price. Each is a clear PROVIDER_ERROR, and counts against the provider."""
    leonardo = providers.images("sandbox")
    started = await leonardo.start(image("x [[fault:incomplete]]"))
    with pytest.raises(ProviderError) as no_images:
        await leonardo.wait(started.job_id, deadline=time.monotonic() + 10)
    assert "a COMPLETE generation without images" in no_images.value.message

    heygen = providers.videos("sandbox")
    video = await heygen.start(
        VideoRequest(model="sandbox-avatar", script="x [[fault:incomplete]]")
    )
    with pytest.raises(ProviderError) as no_duration:
        await heygen.wait(video.job_id, deadline=time.monotonic() + 10)
    assert "a completed video without its duration" in no_duration.value.message

    fresh = make_providers()  # a breaker of its own, to count from zero
    for attempt in range(3):
        with pytest.raises(ProviderError) as no_usage:
            await fresh.text("sandbox").complete(text(f"{attempt} [[fault:incomplete]]"))
        assert no_usage.value.message == (
            "sandbox sent a malformed response (200): Malformed: no usage in the response"
        )
    assert await sandbox.count(CHAT) == 3, "not retried"
    assert fresh.circuit_state("sandbox") == "open", "three malformed answers in a row"


async def test_a_filtered_reply_is_content_rejected(
    providers: Providers, sandbox: SandboxServer
) -> None:
    with pytest.raises(ContentRejected) as error:
        await providers.text("sandbox").complete(text("something awful [[fault:filtered]]"))
    assert (error.value.reason, error.value.code) == (
        "CONTENT_REJECTED",
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert await sandbox.count(CHAT) == 1, "a refusal is not retried"
    assert providers.circuit_state("sandbox") == "closed"
