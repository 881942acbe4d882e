"""Server-streaming RPCs as Server-Sent Events (gateway.transcoding.streaming), through
a real gateway on a socket to a real grpc.aio server of the test contract's streaming
RPCs (tests/gateway/fakes.py FakeStreams), read with a streaming httpx client."""

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

from klik.events.v1.events_pb2 import UserDeleted
from tests.gateway.conftest import RoutesContract
from tests.gateway.fakes import (
    SERVERS,
    StartGateway,
    StreamUpstream,
    Upstream,
    error_of,
    lines_until_heartbeats,
    wait_slot_free,
)
from tests.gateway.test_events import EventReader, js  # noqa: F401 - js is a fixture
from tests.helpers import envelope, publish_envelope, unique, wait_for

ERROR_KEYS = {"code", "status", "message", "details", "request_id"}


@dataclass
class Sse:
    event: str
    data: Any
    id: str | None = None


class Reader(EventReader):
    """A text/event-stream whose ids are any string, and may be absent."""

    async def next_event(self) -> Sse | None:
        """The next event; None when the stream ended."""
        fields = await self.fields()
        if fields is None:
            return None
        assert set(fields) <= {"id", "event", "data"}, fields
        return Sse(fields["event"], json.loads(fields["data"]), fields.get("id"))

    async def rest(self, within: float = 10.0) -> list[Sse]:
        """Every event up to the end of the stream."""
        found = []
        async with asyncio.timeout(within):
            while (event := await self.next_event()) is not None:
                found.append(event)
        return found


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient, method: str, path: str, **options: Any
) -> AsyncIterator[Reader]:
    async with client.stream(method, path, **options) as response:
        assert response.status_code == 200, await response.aread()
        yield Reader(response)


async def streaming_gateway(
    start_gateway: StartGateway,
    contract: RoutesContract,
    stream_upstream: StreamUpstream,
    **overrides: str,
) -> httpx.AsyncClient:
    return await start_gateway(
        services={"generation": (contract.service,)},
        KLIK_GENERATION_ADDR=stream_upstream.address,
        **overrides,
    )


@pytest.fixture
async def gateway(
    start_gateway: StartGateway, contract: RoutesContract, stream_upstream: StreamUpstream
) -> httpx.AsyncClient:
    return await streaming_gateway(start_gateway, contract, stream_upstream)


async def test_events_are_named_by_the_oneof_with_ids_from_event_id(
    gateway: httpx.AsyncClient, stream_upstream: StreamUpstream
) -> None:
    async with sse(gateway, "GET", "/v1/things/t-1:watch") as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["x-accel-buffering"] == "no"
        events = await stream.rest()
    assert stream.retry == 3000
    assert events == [
        # A message: the unary routes' JSON (every field printed, int64 a string).
        Sse(
            "thing",
            {
                "id": "t-1",
                "name": "one",
                "size": "7",
                "color": "COLOR_UNSPECIFIED",
                "tags": [],
                "labels": {},
                "count": "0",
                "blob": "",
                "ratio": 0.0,
                "flag": False,
            },
            "e-1",
        ),
        Sse("note", "hello", "e-2"),  # a scalar: its JSON value
        Sse("count", "9007199254740993"),  # no event_id: no id line
        # e-4 set no field of the oneof: nothing to send.
        Sse("label", {"text": "done"}, "e-5"),
    ]
    (request,) = stream_upstream.fake.calls
    assert request.thing_id == "t-1"


async def test_a_post_body_decodes_as_for_unary_and_a_oneof_less_message_is_message(
    gateway: httpx.AsyncClient, stream_upstream: StreamUpstream
) -> None:
    async with sse(
        gateway, "POST", "/v1/things/t-9:stream", json={"reason": "why", "amount": "3"}
    ) as stream:
        events = await stream.rest()
    assert [(e.event, e.id, e.data["id"], e.data["name"]) for e in events] == [
        ("message", None, "t-9-0", "why"),
        ("message", None, "t-9-1", "why"),
    ]
    (request,) = stream_upstream.fake.calls
    assert (request.thing_id, request.reason, request.amount) == ("t-9", "why", 3)
    bad = await gateway.post("/v1/things/t-9:stream", json={"amount": "lots"})
    assert bad.status_code == 400
    error_of(bad, "INVALID_FIELD", "INVALID_ARGUMENT")
    assert len(stream_upstream.fake.calls) == 1


async def test_last_event_id_fills_the_request_unless_the_query_set_it(
    gateway: httpx.AsyncClient, stream_upstream: StreamUpstream
) -> None:
    headers = {"Last-Event-ID": "r-1"}
    async with sse(gateway, "GET", "/v1/things/resume:watch", headers=headers) as stream:
        (event,) = await stream.rest()
    assert event == Sse("note", "after r-1", "r-2")
    async with sse(
        gateway,
        "GET",
        "/v1/things/resume:watch",
        headers=headers,
        params={"last_event_id": "q-1"},
    ) as stream:
        (event,) = await stream.rest()
    assert event.data == "after q-1"


async def test_a_failure_before_the_first_message_is_the_json_error_response(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.get("/v1/things/missing:watch")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    assert error_of(reply, "THING_NOT_FOUND", "NOT_FOUND")["message"] == "no thing missing"
    metrics = (await gateway.get("/metrics")).text
    assert (
        'klik_gateway_upstream_errors_total{route="/v1/things/{thing_id}:watch",'
        'status="NOT_FOUND"} 1.0'
    ) in metrics


async def test_a_failure_after_the_start_ends_with_a_final_error_event(
    gateway: httpx.AsyncClient,
) -> None:
    async with sse(gateway, "GET", "/v1/things/flaky:watch") as stream:
        events = await stream.rest()
    first, last = events
    assert first == Sse("note", "first", "e-1")
    assert last.event == "error" and last.id is None
    assert set(last.data["error"]) == ERROR_KEYS
    assert last.data["error"]["code"] == "THING_MELTED"
    assert last.data["error"]["status"] == "FAILED_PRECONDITION"
    assert last.data["error"]["message"] == "the thing melted"
    assert last.data["error"]["details"] == {"at": 1}
    assert last.data["error"]["request_id"] == stream.response.headers["x-request-id"]


async def test_the_client_going_away_cancels_the_upstream_call(
    gateway: httpx.AsyncClient, stream_upstream: StreamUpstream
) -> None:
    # Started by initial metadata, before any message.
    async with sse(gateway, "GET", "/v1/things/idle:watch") as stream:
        await anext(stream.lines)  # the retry: line: the stream is open
    await wait_for(lambda: "idle" in stream_upstream.fake.cancelled, message="call cancelled")
    # And while the gateway still waits for the first message.
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=gateway.headers) as other:
        waiting = asyncio.create_task(other.get("/v1/things/silent:watch"))
        await wait_for(lambda: len(stream_upstream.fake.calls) == 2, message="second call")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await wait_for(lambda: "silent" in stream_upstream.fake.cancelled, message="call cancelled")


async def test_idle_streams_get_heartbeats(
    start_gateway: StartGateway, contract: RoutesContract, stream_upstream: StreamUpstream
) -> None:
    gateway = await streaming_gateway(
        start_gateway, contract, stream_upstream, KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS="0.1"
    )
    async with sse(gateway, "GET", "/v1/things/idle:watch") as stream:
        lines = await lines_until_heartbeats(stream.lines)
    assert lines[0] == "retry: 3000"
    assert lines.count(": keep-alive") == 2


async def test_a_browser_passes_its_token_in_the_query_and_it_reaches_the_service(
    gateway: httpx.AsyncClient, upstream: Upstream, stream_upstream: StreamUpstream
) -> None:
    token = upstream.auth.authority.access_token(unique("browser-"))
    async with httpx.AsyncClient(base_url=gateway.base_url) as browser:
        async with sse(
            browser, "GET", "/v1/things/t-1:watch", params={"access_token": token}
        ) as stream:
            assert len(await stream.rest()) == 4
        (metadata,) = stream_upstream.fake.metadata
        assert metadata["authorization"] == f"Bearer {token}"
        forged = await browser.get(
            "/v1/things/t-1:watch", params={"access_token": token[:-4] + "AAAA"}
        )
        assert forged.status_code == 401
        assert 'error="invalid_token"' in forged.headers["www-authenticate"]
        anonymous = await browser.get("/v1/things/t-1:watch")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="klik"'
    assert len(stream_upstream.fake.calls) == 1  # the refused ones cost no call


async def test_open_streams_per_user_are_capped_and_freed_when_the_client_leaves(
    start_gateway: StartGateway,
    contract: RoutesContract,
    stream_upstream: StreamUpstream,
    upstream: Upstream,
) -> None:
    gateway = await streaming_gateway(
        start_gateway, contract, stream_upstream, KLIK_GATEWAY_STREAM_MAX_PER_USER="1"
    )
    async with sse(gateway, "GET", "/v1/things/idle:watch"):
        second = await gateway.get("/v1/things/t-1:watch")
        assert second.status_code == 429
        assert error_of(second, "TOO_MANY_STREAMS", "RESOURCE_EXHAUSTED")["details"] == {"limit": 1}
        assert len(stream_upstream.fake.calls) == 1
        # Another user has slots of their own.
        token = upstream.auth.authority.access_token(unique("other-"))
        headers = {"Authorization": f"Bearer {token}"}
        async with sse(gateway, "GET", "/v1/things/t-1:watch", headers=headers) as other:
            assert len(await other.rest()) == 4
    await wait_slot_free(gateway, "/v1/things/t-1:watch")


async def test_a_stream_ends_when_its_token_expires(
    gateway: httpx.AsyncClient, upstream: Upstream, stream_upstream: StreamUpstream
) -> None:
    token = upstream.auth.authority.access_token(unique("brief-"), lifetime=2)
    headers = {"Authorization": f"Bearer {token}"}
    async with sse(gateway, "GET", "/v1/things/idle:watch", headers=headers) as stream:
        (last,) = await stream.rest()
    assert last.event == "error" and last.id is None
    assert last.data["error"]["code"] == "TOKEN_EXPIRED"
    await wait_for(lambda: "idle" in stream_upstream.fake.cancelled, message="call cancelled")


async def test_stopping_the_gateway_ends_open_streams_with_an_error_event(
    gateway: httpx.AsyncClient, stream_upstream: StreamUpstream
) -> None:
    server, task = SERVERS[gateway]
    async with sse(gateway, "GET", "/v1/things/idle:watch") as stream:
        await anext(stream.lines)
        server.handle_exit(signal.SIGTERM, None)
        server._captured_signals.clear()  # not really received (see test_events)
        (last,) = await stream.rest()
    assert last.event == "error"
    assert last.data["error"]["status"] == "UNAVAILABLE"
    await asyncio.wait_for(task, 5)
    await wait_for(lambda: "idle" in stream_upstream.fake.cancelled, message="call cancelled")


async def test_a_deleted_users_open_stream_ends_with_an_error_event(
    gateway: httpx.AsyncClient,
    upstream: Upstream,
    stream_upstream: StreamUpstream,
    js: JetStreamContext,  # noqa: F811 - the fixture imported above
) -> None:
    user = unique("doomed-")
    headers = {"Authorization": f"Bearer {upstream.auth.authority.access_token(user)}"}
    async with sse(gateway, "GET", "/v1/things/idle:watch", headers=headers) as stream:
        await anext(stream.lines)
        await publish_envelope(js, envelope("user.deleted", UserDeleted(user_id=user)))
        (last,) = await stream.rest()
    assert last.event == "error" and last.data["error"]["code"] == "INVALID_TOKEN"
    await wait_for(lambda: "idle" in stream_upstream.fake.cancelled, message="call cancelled")
