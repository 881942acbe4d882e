"""`GET /v1/events`: the caller's own events as Server-Sent Events (see
gateway.eventhub for where they come from).

Each event is `id:` its stream sequence, `event:` its type, `data:` one line of JSON.
A stream without `Last-Event-ID` starts at "now"; with one, it resumes right after
that event. A comment line every few seconds keeps idle connections open through
proxies and lets the server notice a client that went away. A stream lasts as long
as the access token it was opened with."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.admission import Admission
from gateway.errors import GatewayError, error_body
from gateway.eventhub import Event, EventHub, Revoked, StreamEnded, Subscriber, TooManyStreams
from gateway.policy import READ
from gateway.settings import EventStreamSettings

log = logging.getLogger(__name__)

HEARTBEAT = b": keep-alive\n\n"


def format_event(event: Event) -> bytes:
    return f"id: {event.sequence}\nevent: {event.type}\ndata: {event.data}\n\n".encode()


def final_error(code: str, message: str) -> bytes:
    """The last event of a stream the gateway ends because its token is no longer
    good: `event: error` with API.md's error body, and no `id:` (it is no event of
    the log, so Last-Event-ID stays the last one sent)."""
    body = error_body("UNAUTHENTICATED", message, code=code)
    return f"event: error\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


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
    """Runs `on_close` however the response ends, even when the client is gone
    before the first byte (a plain generator's `finally` would never run then)."""

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


async def events(
    hub: EventHub,
    subscriber: Subscriber,
    after: int | None,
    settings: EventStreamSettings,
    until: float,
) -> AsyncIterator[bytes]:
    """The stream's body. It ends when the token it was opened with expires (`until`,
    epoch seconds) or its user is revoked, with a final `event: error`: the client
    reconnects with a fresh token and Last-Event-ID."""
    yield f"retry: {settings.retry_ms}\n\n".encode()
    sent = 0
    if after is not None:
        sent = after
        # Registered before this read: whatever the hub fans out from now on is
        # queued, and the replay covers everything up to here.
        through = await hub.last_sequence()
        async for missed in hub.replay(subscriber.user_id, after, through):
            yield format_event(missed)
            sent = missed.sequence
    while time.time() < until:
        try:
            event = await subscriber.next(min(settings.heartbeat_seconds, until - time.time()))
        except Revoked:
            log.info("event stream ended: Revoked", extra={"sent": sent})
            yield final_error("INVALID_TOKEN", "access token is no longer valid")
            return
        except StreamEnded as ended:
            log.info("event stream ended: %s", type(ended).__name__, extra={"sent": sent})
            return
        if event is None:
            yield HEARTBEAT
        elif event.sequence > sent:
            yield format_event(event)
            sent = event.sequence
    yield final_error("TOKEN_EXPIRED", "the access token expired: reconnect with a new one")


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
        except TooManyStreams:
            raise GatewayError(
                "RESOURCE_EXHAUSTED",
                f"at most {hub.max_per_user} event streams per user",
                code="TOO_MANY_STREAMS",
                details={"limit": hub.max_per_user},
            ) from None
    except GatewayError as error:
        return error.response()
    return EventStreamResponse(
        events(hub, subscriber, after, settings, claims.expires_at),
        on_close=lambda: hub.unregister(subscriber),
    )
