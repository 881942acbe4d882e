"""`GET /v1/events` through a real gateway and a real nats-server: envelopes are
published to KLIK_EVENTS as the outbox relay would, and read back as Server-Sent
Events by a real HTTP client."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from gateway.eventhub import Closing, Event, Overflowed, Subscriber
from kit import bus
from klik.events.v1.events_pb2 import (
    JobTransitioned,
    UserDeleted,
    UserRegistered,
    WalletChanged,
)
from klik.generation.v1.generation_pb2 import Job
from tests.gateway.fakes import (
    SERVERS,
    StartGateway,
    Upstream,
    error_of,
    lines_until_heartbeats,
    wait_slot_free,
)
from tests.helpers import envelope, publish_envelope, unique, wait_for


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await bus.connect(nats_url, name="test-events")
    stream = nc.jetstream()
    await bus.ensure_streams(stream)
    yield stream
    await nc.close()


async def publish_job(js: JetStreamContext, user: str, job_id: str, status: str) -> None:
    payload = JobTransitioned(job=Job(id=job_id, user_id=user, status=status.upper()))
    env = envelope(f"generation.job.{status}", payload, aggregate_id=job_id)
    env.user_id = user
    await publish_envelope(js, env)


async def publish_wallet(js: JetStreamContext, user: str, balance: int) -> None:
    env = envelope("wallet.changed", WalletChanged(user_id=user, balance=balance))
    env.user_id = user
    await publish_envelope(js, env)


@dataclass
class Sse:
    id: int
    event: str
    data: dict[str, Any]


class EventReader:
    """Parses a text/event-stream as it arrives; keeps comments and `retry:` too."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    async def fields(self) -> dict[str, str] | None:
        """The next event's fields, None at the end of the stream (comments and
        `retry:` lines are recorded on the way)."""
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if "data" in fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            if name == "retry":
                self.retry = int(value)
            else:
                assert name not in fields, f"{name} twice in one event"
                fields[name] = value
        assert not fields, f"a partial event at the end: {fields}"
        return None

    async def next(self) -> Sse:
        """The next event."""
        fields = await self.fields()
        if fields is None:
            raise AssertionError("the stream ended")
        return Sse(int(fields["id"]), fields["event"], json.loads(fields["data"]))

    async def take(self, count: int, within: float = 10.0) -> list[Sse]:
        async with asyncio.timeout(within):
            return [await self.next() for _ in range(count)]


@asynccontextmanager
async def open_stream(
    gateway: httpx.AsyncClient,
    token: str,
    last_event_id: int | None = None,
    *,
    token_in_query: bool = False,
) -> AsyncIterator[EventReader]:
    """Open /v1/events once the gateway's event hub is up (503 until then); with
    `token_in_query` the way a browser's EventSource must, `?access_token=`."""
    headers = {} if token_in_query else {"Authorization": f"Bearer {token}"}
    params = {"access_token": token} if token_in_query else {}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    client = httpx.AsyncClient(base_url=gateway.base_url, timeout=httpx.Timeout(10, read=15))
    try:

        async def opened() -> httpx.Response | None:
            request = client.build_request("GET", "/v1/events", headers=headers, params=params)
            response = await client.send(request, stream=True)
            if response.status_code == 200:
                return response
            assert response.status_code == 503, response.status_code
            await response.aclose()
            return None

        response = await wait_for(opened, message="event stream opened")
        assert response is not None
        try:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            yield EventReader(response)
        finally:
            await response.aclose()
    finally:
        await client.aclose()


async def test_a_jobs_transitions_arrive_in_order_and_only_to_their_user(
    gateway: httpx.AsyncClient, upstream: Upstream, js: JetStreamContext
) -> None:
    alice, bob = unique("alice-"), unique("bob-")
    authority = upstream.auth.authority
    async with open_stream(gateway, authority.access_token(alice)) as stream:
        await publish_job(js, bob, "job-b", "queued")
        await publish_job(js, alice, "job-a", "queued")
        registered = envelope("user.registered", UserRegistered(user_id=alice))
        registered.user_id = alice  # not a streamed type
        await publish_envelope(js, registered)
        await publish_job(js, alice, "job-a", "running")
        await publish_wallet(js, bob, 7)
        await publish_wallet(js, alice, 95)
        await publish_job(js, alice, "job-a", "succeeded")
        events = await stream.take(4)
    assert stream.retry == 3000
    assert [e.event for e in events] == [
        "generation.job.queued",
        "generation.job.running",
        "wallet.changed",
        "generation.job.succeeded",
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(e.data["user_id"] == alice for e in events)
    first = events[0].data
    assert first["type"] == "generation.job.queued"
    assert first["payload"]["@type"] == "type.googleapis.com/klik.events.v1.JobTransitioned"
    assert first["payload"]["job"] == {"id": "job-a", "user_id": alice, "status": "QUEUED"}
    assert events[2].data["payload"]["balance"] == "95"  # int64: a JSON string


async def test_a_stream_resumes_after_last_event_id_without_gaps_or_repeats(
    gateway: httpx.AsyncClient, upstream: Upstream, js: JetStreamContext
) -> None:
    user = unique("resumer-")
    token = upstream.auth.authority.access_token(user)
    async with open_stream(gateway, token) as stream:
        for status in ("queued", "running"):
            await publish_job(js, user, "job-r", status)
        seen = await stream.take(2)
    # While the client is away: its own events and someone else's.
    await publish_wallet(js, user, 90)
    await publish_job(js, unique("other-"), "job-x", "queued")
    await publish_job(js, user, "job-r", "succeeded")
    await publish_wallet(js, user, 85)
    consumers = (await js.stream_info(bus.EVENTS_STREAM)).state.consumer_count
    async with open_stream(gateway, token, last_event_id=seen[-1].id) as stream:
        missed = await stream.take(3)
        # The replay's own consumer is gone once it has caught up.
        await wait_for(lambda: _consumers_at_most(js, consumers), message="replay consumer deleted")
        await publish_job(js, user, "job-s", "queued")  # live, after the replay
        live = await stream.take(1)
    resumed = missed + live
    assert [e.event for e in resumed] == [
        "wallet.changed",
        "generation.job.succeeded",
        "wallet.changed",
        "generation.job.queued",
    ]
    ids = [e.id for e in seen + resumed]
    assert ids == sorted(set(ids)), "an event repeated or came out of order"
    assert all(e.data["user_id"] == user for e in resumed)


async def _consumers_at_most(js: JetStreamContext, count: int) -> bool:
    return (await js.stream_info(bus.EVENTS_STREAM)).state.consumer_count <= count


async def test_resuming_from_the_middle_replays_only_what_followed(
    gateway: httpx.AsyncClient, upstream: Upstream, js: JetStreamContext
) -> None:
    user = unique("middle-")
    token = upstream.auth.authority.access_token(user)
    async with open_stream(gateway, token) as stream:
        for balance in (1, 2, 3):
            await publish_wallet(js, user, balance)
        first, second, third = await stream.take(3)
    async with open_stream(gateway, token, last_event_id=first.id) as stream:
        await publish_wallet(js, user, 4)
        again = await stream.take(3)
    assert [e.data["payload"]["balance"] for e in again] == ["2", "3", "4"]
    assert [e.id for e in again[:2]] == [second.id, third.id]


async def test_without_last_event_id_a_stream_starts_at_now(
    gateway: httpx.AsyncClient, upstream: Upstream, js: JetStreamContext
) -> None:
    user = unique("fresh-")
    await publish_wallet(js, user, 1)  # before the stream: never sent
    async with open_stream(gateway, upstream.auth.authority.access_token(user)) as stream:
        await publish_wallet(js, user, 2)
        (event,) = await stream.take(1)
    assert event.data["payload"]["balance"] == "2"


async def test_idle_streams_get_heartbeats(start_gateway: StartGateway, upstream: Upstream) -> None:
    gateway = await start_gateway(
        KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS="0.1", KLIK_GATEWAY_SSE_RETRY_MS="1500"
    )
    token = upstream.auth.authority.access_token(unique("idle-"))
    async with open_stream(gateway, token) as stream:
        lines = await lines_until_heartbeats(stream.lines)
    assert lines[0] == "retry: 1500"


async def test_streams_per_user_are_limited_and_freed_when_the_client_leaves(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_SSE_MAX_PER_USER="1")
    token = upstream.auth.authority.access_token(unique("greedy-"))
    headers = {"Authorization": f"Bearer {token}"}
    async with open_stream(gateway, token):
        second = await gateway.get("/v1/events", headers=headers)
        assert second.status_code == 429
        error_of(second, "TOO_MANY_STREAMS", "RESOURCE_EXHAUSTED")
    # The first client left: its slot is freed once the gateway notices.
    await wait_slot_free(gateway, "/v1/events", headers)


async def test_a_browser_passes_its_token_in_the_query_on_this_route_only(
    gateway: httpx.AsyncClient, upstream: Upstream, js: JetStreamContext
) -> None:
    user = unique("browser-")
    token = upstream.auth.authority.access_token(user)
    async with open_stream(gateway, token, token_in_query=True) as stream:
        await publish_wallet(js, unique("someone-else-"), 9)
        await publish_wallet(js, user, 3)
        (event,) = await stream.take(1)
    assert event.data["user_id"] == user
    assert event.data["payload"]["balance"] == "3"
    async with httpx.AsyncClient(base_url=gateway.base_url) as browser:
        forged = await browser.get("/v1/events", params={"access_token": token[:-4] + "AAAA"})
        assert forged.status_code == 401
        assert 'error="invalid_token"' in forged.headers["www-authenticate"]
        # Every other route wants the header: a token in a URL ends up in logs.
        elsewhere = await browser.get("/v1/wallet", params={"access_token": token})
        assert elsewhere.status_code == 401
        assert elsewhere.headers["www-authenticate"] == 'Bearer realm="klik"'


async def test_the_event_stream_needs_a_valid_token(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        reply = await anonymous.get("/v1/events")
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == 'Bearer realm="klik"'
        token = upstream.auth.authority.access_token("u-1")
        bad = await anonymous.get(
            "/v1/events", headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "x1"}
        )
        assert bad.status_code == 400
        error_of(bad, "INVALID_LAST_EVENT_ID", "INVALID_ARGUMENT")


async def test_a_stream_ends_when_its_token_expires(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS="0.2")
    token = upstream.auth.authority.access_token(unique("brief-"), lifetime=2)
    async with open_stream(gateway, token) as stream:
        async with asyncio.timeout(10):
            lines = [line async for line in stream.lines]  # ends: the server closed it
    assert lines[0].startswith("retry: ")
    assert final_error_of(lines)["code"] == "TOKEN_EXPIRED"


def final_error_of(lines: list[str]) -> dict[str, Any]:
    """The error body of a stream's last event, which must be `event: error` with no id."""
    events = [block.split("\n") for block in "\n".join(lines).strip().split("\n\n")]
    last = dict(line.split(": ", 1) for line in events[-1] if not line.startswith(":"))
    assert set(last) == {"event", "data"}, last
    assert last["event"] == "error"
    body = json.loads(last["data"])
    assert set(body["error"]) == {"code", "status", "message", "details", "request_id"}
    assert body["error"]["status"] == "UNAUTHENTICATED"
    error: dict[str, Any] = body["error"]
    return error


async def test_a_deleted_users_open_stream_ends_with_an_error_event(
    start_gateway: StartGateway, upstream: Upstream, js: JetStreamContext
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS="0.2")
    user, other = unique("doomed-"), unique("spared-")
    authority = upstream.auth.authority
    async with (
        open_stream(gateway, authority.access_token(user)) as doomed,
        open_stream(gateway, authority.access_token(other)) as spared,
    ):
        await publish_wallet(js, user, 5)
        assert (await doomed.take(1))[0].data["payload"]["balance"] == "5"
        await publish_envelope(js, envelope("user.deleted", UserDeleted(user_id=user)))
        async with asyncio.timeout(10):
            lines = [line async for line in doomed.lines]  # ends: the server closed it
        assert final_error_of(lines)["code"] == "INVALID_TOKEN"
        # Another user's stream goes on.
        await publish_wallet(js, other, 9)
        assert (await spared.take(1))[0].data["payload"]["balance"] == "9"


async def test_a_client_too_slow_for_its_buffer_gets_what_fit_then_its_stream_ends() -> None:
    subscriber = Subscriber("u", buffer=2)
    for sequence in (1, 2, 3, 4):
        subscriber.offer(Event(sequence, "wallet.changed", "{}"))
    assert await subscriber.take() == [
        Event(1, "wallet.changed", "{}"),
        Event(2, "wallet.changed", "{}"),
    ]
    with pytest.raises(Overflowed):  # 3 and 4 were dropped: it must resume instead
        await subscriber.take()


async def test_a_subscriber_takes_what_queued_at_once_and_a_wake_returns_nothing() -> None:
    subscriber = Subscriber("u", buffer=10)
    waiting = asyncio.ensure_future(subscriber.take())
    await asyncio.sleep(0)  # let it wait
    subscriber.wake()
    assert await waiting == []
    waiting = asyncio.ensure_future(subscriber.take())
    await asyncio.sleep(0)
    for sequence in (1, 2, 3):
        subscriber.offer(Event(sequence, "wallet.changed", "{}"))
    assert [e.sequence for e in await waiting] == [1, 2, 3]
    assert Event(7, "wallet.changed", "{}").frame == b"id: 7\nevent: wallet.changed\ndata: {}\n\n"
    subscriber.offer(Event(4, "wallet.changed", "{}"))
    subscriber.close()
    with pytest.raises(Closing):  # closing wins over what is still queued
        await subscriber.take()


async def test_stopping_the_gateway_ends_open_streams_at_once(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway()
    server, task = SERVERS[gateway]
    token = upstream.auth.authority.access_token(unique("leaving-"))
    async with open_stream(gateway, token) as stream:
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
        # uvicorn re-raises a handled signal once it has stopped, which would stop
        # pytest too: this one was not really received.
        server._captured_signals.clear()
        async with asyncio.timeout(5):
            lines = [line async for line in stream.lines]  # the server ended it
    assert lines[0].startswith("retry: ")
    # No grace period is configured here: without closing the streams, uvicorn
    # would wait for this one forever.
    await asyncio.wait_for(task, 5)
