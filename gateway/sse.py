"""`GET /v1/events`: the caller's own events as Server-Sent Events (see
gateway.eventhub for where they come from); and what every event stream of the
gateway shares (the streaming RPC routes' too, gateway.transcoding.streaming): the
response, heartbeats, the end at the token's expiry, the final `event: error`.

Each event is `id:` its stream sequence, `event:` its type, `data:` one line of JSON.
A stream without `Last-Event-ID` starts at "now"; with one, it resumes right after
that event. A comment line every few seconds keeps idle connections open through
proxies and lets the server notice a client that went away. A stream lasts as long
as the access token it was opened with."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.admission import Admission
from gateway.errors import GatewayError, error_body
from gateway.eventhub import EventHub, Revoked, StreamEnded, Subscriber
from gateway.openstreams import TooManyStreams
from gateway.policy import READ
from gateway.settings import EventStreamSettings
from gateway.transcoding.streaming import one_line_json

log = logging.getLogger(__name__)

HEARTBEAT = b": keep-alive\n\n"


def error_event(body: Mapping[str, object]) -> bytes:
    """A stream's last event: `event: error` with API.md's error body as `data:`, and
    no `id:` (it is no event of the stream, so Last-Event-ID stays the last one sent)."""
    return f"event: error\ndata: {one_line_json(body)}\n\n".encode()


def final_error(code: str, message: str) -> bytes:
    """The last event of a stream the gateway ends because its token is no longer good."""
    return error_event(error_body("UNAUTHENTICATED", message, code=code))


def token_expired() -> bytes:
    """The last event of a stream that outlived its access token: the client
    reconnects with a new one (and Last-Event-ID)."""
    return final_error("TOKEN_EXPIRED", "the access token expired: reconnect with a new one")


def gateway_error_event(error: GatewayError) -> bytes:
    body = error_body(error.status, error.message, code=error.code, details=error.details)
    return error_event(body)


def too_many_streams(limit: int, what: str) -> GatewayError:
    """429 `TOO_MANY_STREAMS`: the caller holds `limit` open `what` already."""
    return GatewayError(
        "RESOURCE_EXHAUSTED",
        f"at most {limit} {what} per user",
        code="TOO_MANY_STREAMS",
        details={"limit": limit},
    )


def last_event_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id", "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise GatewayError(
            "INVALID_ARGUMENT",
            "Last-Event-ID must be the id of an event this stream sent",
            code="INVALID_LAST_EVENT_ID",
        )
    return int(text)


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, never cached or buffered by a proxy. Runs `on_close`
    however the response ends, even when the client is gone before the first byte
    (a plain generator's `finally` would never run then)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def keep_alive(
    frames: AsyncGenerator[bytes, None], settings: EventStreamSettings, until: float
) -> AsyncIterator[bytes]:
    """The body of every streaming RPC route (`/v1/events` does the same in `events`
    with timers instead of a task per frame, as it holds thousands of streams with
    nothing to cancel under them): `retry:` first, then
    `frames` as they come, a heartbeat comment whenever `heartbeat_seconds` pass
    without one (it keeps proxies from closing an idle stream and lets the server
    notice a client that went away), and, if `frames` has not ended by `until` (epoch
    seconds: the access token's expiry), a final `event: error` `TOKEN_EXPIRED` — the
    client reconnects with a fresh token (and Last-Event-ID)."""
    yield f"retry: {settings.retry_ms}\n\n".encode()
    # The next frame is awaited in a task of its own, left running across heartbeats:
    # cancelling it (wait_for would) could cancel what it reads from (a gRPC call).
    pending: asyncio.Future[bytes] | None = None
    try:
        while (left := until - time.time()) > 0:
            if pending is None:
                pending = asyncio.ensure_future(_next(frames))
            done, _ = await asyncio.wait({pending}, timeout=min(settings.heartbeat_seconds, left))
            if not done:
                if until > time.time():
                    yield HEARTBEAT
                continue
            try:
                frame = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield frame
        yield token_expired()
    finally:
        if pending is not None:
            pending.cancel()  # ends `frames` from inside (it was running)
        else:
            with contextlib.suppress(RuntimeError):
                await frames.aclose()


async def _next(frames: AsyncGenerator[bytes, None]) -> bytes:
    return await anext(frames)


async def events(
    hub: EventHub,
    subscriber: Subscriber,
    after: int | None,
    settings: EventStreamSettings,
    until: float,
) -> AsyncGenerator[bytes, None]:
    """`GET /v1/events`' body: what keep_alive gives every stream (`retry:`, the
    heartbeats, the end at `until`, the token's expiry), made from two timers per
    stream instead of a task per event; the missed events after `after` first, then
    the live ones. It ends when its user is revoked, with a final `event: error`."""
    yield f"retry: {settings.retry_ms}\n\n".encode()
    sent = 0
    if after is not None:
        sent = after
        # Registered before this read: whatever the hub fans out from now on is
        # queued, and the replay covers everything up to here.
        through = await hub.last_sequence()
        async for missed in hub.replay(subscriber.user_id, after, through):
            yield missed.frame
            sent = missed.sequence
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    beat_due = False

    def beat() -> None:
        nonlocal beat_due
        beat_due = True
        subscriber.wake()

    # Re-armed only when it fires: a stream busy with events touches no timer.
    heartbeat = loop.call_at(quiet_since + settings.heartbeat_seconds, beat)
    expiry = loop.call_later(max(0.0, until - time.time()), subscriber.wake)
    try:
        while True:
            try:
                batch = await subscriber.take()
            except Revoked:
                log.info("event stream ended: Revoked", extra={"sent": sent})
                yield final_error("INVALID_TOKEN", "access token is no longer valid")
                return
            except StreamEnded as ended:
                log.info("event stream ended: %s", type(ended).__name__, extra={"sent": sent})
                return
            if time.time() >= until:
                yield token_expired()
                return
            fresh = [event for event in batch if event.sequence > sent]
            if fresh:
                sent = fresh[-1].sequence
                quiet_since = loop.time()
                yield b"".join(event.frame for event in fresh)
            if beat_due:
                beat_due = False
                if loop.time() - quiet_since >= settings.heartbeat_seconds:
                    yield HEARTBEAT
                    quiet_since = loop.time()
                heartbeat = loop.call_at(quiet_since + settings.heartbeat_seconds, beat)
    finally:
        heartbeat.cancel()
        expiry.cancel()


async def stream_events(request: Request) -> Response:
    admission: Admission = request.app.state.admission
    settings: EventStreamSettings = request.app.state.settings.events
    hub: EventHub | None = request.app.state.upstreams.events
    try:
        # A browser's EventSource cannot send Authorization: it may pass ?access_token=.
        claims = await admission.admit(request, READ, public=False, query_token=True)
        assert claims is not None
        after = last_event_id(request)
        if hub is None:
            raise GatewayError(
                "UNAVAILABLE", "the event stream is not ready", headers={"Retry-After": "1"}
            )
        try:
            subscriber = hub.register(claims.subject)
        except TooManyStreams as refused:
            raise too_many_streams(refused.limit, "event streams") from None
    except GatewayError as error:
        return error.response()
    return EventStreamResponse(
        events(hub, subscriber, after, settings, claims.expires_at),
        on_close=lambda: hub.unregister(subscriber),
    )
