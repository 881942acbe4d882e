"""The events `GET /v1/events` streams: one shared JetStream subscription per gateway
replica, fanned out in memory to the open streams of each user.

Why one shared subscription rather than a consumer per connection: an event's user is
inside its envelope, not in its subject (`klik.events.<type>`), so a per-connection
consumer cannot filter server-side by user — N open streams would each receive and
decode every event (N x events of work and traffic, and N consumers on the broker).
Here each event crosses the wire and is decoded once per replica, then handed only to
its user's queues (a dict lookup), whatever the number of connections.

Resuming (`Last-Event-ID`) is the one thing the shared subscription cannot do; a
resuming stream first registers for live events (they queue), then replays
`(last id, stream's last sequence at that moment]` with a short-lived pull consumer of
its own, then drains its queue skipping what the replay already sent. The SSE id is
the stream sequence, and both sources deliver in sequence order, so "send only
sequences above the last one sent" gives neither gaps nor duplicates."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import prometheus_client
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gateway.openstreams import OpenStreams
from gateway.transcoding.streaming import sse_frame
from kit.bus import (
    EVENTS_PREFIX,
    EVENTS_STREAM,
    event_options,
    event_types_of,
    unsubscribe_quietly,
)
from klik.events.v1 import events_pb2  # noqa: F401 - registers the payload types for JSON
from klik.events.v1.envelope_pb2 import Envelope

log = logging.getLogger(__name__)

OPEN_STREAMS = prometheus_client.Gauge(
    "klik_gateway_event_streams", "Open GET /v1/events streams on this replica."
)

ALL_EVENTS = EVENTS_PREFIX + ">"
_REPLAY_BATCH = 256
_REPLAY_WAIT_SECONDS = 1.0


def streamed_types(files: Iterable[FileDescriptor]) -> frozenset[str]:
    """The event types a client sees on its stream: those of every payload message in
    `files` whose `(klik.options.v1.event)` option says `streamed: true`."""
    found: set[str] = set()
    for file in files:
        for message in _messages(file.message_types_by_name.values()):
            event = event_options(message)
            if event is not None and event.streamed:
                found.update(event_types_of(message))
    return frozenset(found)


def _messages(messages: Iterable[Descriptor]) -> Iterator[Descriptor]:
    for message in messages:
        yield message
        yield from _messages(message.nested_types)


@dataclass(frozen=True)
class Event:
    sequence: int  # the KLIK_EVENTS stream sequence: the SSE id
    type: str
    data: str  # the envelope as one line of JSON, payload decoded, proto field names

    @cached_property
    def frame(self) -> bytes:
        """The event as SSE: encoded once, however many of its user's streams send it."""
        return sse_frame(self.type, self.data, str(self.sequence))


def render(envelope: Envelope) -> str:
    document = json_format.MessageToDict(envelope, preserving_proto_field_name=True)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def read(msg: Msg, streamed: frozenset[str]) -> tuple[int, Envelope] | None:
    """(stream sequence, envelope) of an event of a `streamed` type that concerns a
    user, else None."""
    if msg.subject.removeprefix(EVENTS_PREFIX) not in streamed:
        return None
    try:
        envelope = Envelope.FromString(msg.data)
    except DecodeError:
        log.error("unreadable event on %s", msg.subject)
        return None
    if not envelope.user_id:
        return None
    return msg.metadata.sequence.stream, envelope


class StreamEnded(Exception):
    """The stream must end now; the client resumes with Last-Event-ID, so nothing
    is lost."""


class Overflowed(StreamEnded):
    """The client read too slowly and its buffer filled."""


class Closing(StreamEnded):
    """The gateway is shutting down."""


class Revoked(StreamEnded):
    """The stream's user was deleted: their token is refused everywhere now."""


class Subscriber:
    """One open stream's live events. The hub offers them; the stream takes all that
    wait at once (so a burst costs one wake and one write, not one per event), and
    its own timers `wake` it with nothing (a heartbeat is due, the token expired).
    Neither side makes a task or a timer per event: at thousands of streams per
    replica that bookkeeping, not the sending, was the fan-out's cost."""

    def __init__(self, user_id: str, buffer: int) -> None:
        self.user_id = user_id
        self._buffer = buffer
        self._events: deque[Event] = deque()
        self._overflowed = False
        self._ending: StreamEnded | None = None
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Event) -> None:
        if self._overflowed:
            return
        if len(self._events) >= self._buffer:
            self._overflowed = True  # what fit is still sent, then the stream ends
        else:
            self._events.append(event)
        self.wake()

    def close(self, why: StreamEnded | None = None) -> None:
        """End the stream: `why` is what its `take` raises (Closing by default)."""
        self._ending = why or Closing()
        self.wake()

    def wake(self) -> None:
        """Return the waiting `take` now, with what is queued (perhaps nothing)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[Event]:
        """Every queued event, oldest first; waits until there is one, or until
        `wake` ([] then). Raises the StreamEnded the stream must end with."""
        if self._ending is not None:
            raise self._ending
        if not self._events:
            if self._overflowed:
                raise Overflowed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            if self._ending is not None:
                raise self._ending
        events = list(self._events)
        self._events.clear()
        return events


class EventHub:
    """Fans out the events of the `streamed` types (see `streamed_types`)."""

    def __init__(
        self, js: JetStreamContext, *, streamed: frozenset[str], max_per_user: int, buffer: int
    ) -> None:
        self.js = js
        self.streamed = streamed
        self.buffer = buffer
        self._open: OpenStreams[Subscriber] = OpenStreams(max_per_user)
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._first = 1

    async def start(self) -> None:
        """Subscribe to events from now on."""
        self._first = await self.last_sequence() + 1
        self._subscription = await self.js.subscribe(
            ALL_EVENTS,
            stream=EVENTS_STREAM,
            cb=self._on_message,
            # Ordered: recreated after a gap or a NATS outage, resuming after the last
            # sequence seen, so the fan-out itself never skips an event.
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=self._first),
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await unsubscribe_quietly(subscription, "event hub")

    async def last_sequence(self) -> int:
        info = await self.js.stream_info(EVENTS_STREAM)
        return int(info.state.last_seq)

    @property
    def max_per_user(self) -> int:
        return self._open.max_per_key

    def register(self, user_id: str) -> Subscriber:
        """Raises gateway.openstreams.TooManyStreams past `max_per_user`."""
        subscriber = Subscriber(user_id, self.buffer)
        self._open.add(user_id, subscriber)
        OPEN_STREAMS.inc()
        return subscriber

    def close_all(self) -> None:
        """End every open stream (the gateway is stopping: without this, each open
        stream would hold the shutdown for the whole grace period)."""
        for subscriber in self._open:
            subscriber.close()

    def revoke(self, user_id: str) -> None:
        """End the open streams of `user_id` (a deleted user), with Revoked."""
        for subscriber in self._open.of(user_id):
            subscriber.close(Revoked())

    def unregister(self, subscriber: Subscriber) -> None:
        if self._open.remove(subscriber.user_id, subscriber):
            OPEN_STREAMS.dec()

    async def _on_message(self, msg: Msg) -> None:
        found = read(msg, self.streamed)
        if found is None:
            return
        sequence, envelope = found
        # An ordered consumer reset before its first message restarts at sequence 1;
        # what came before this hub started is the replay's business.
        if sequence < self._first:
            return
        subscribers = self._open.of(envelope.user_id)
        if not subscribers:
            return
        event = Event(sequence, envelope.type, render(envelope))
        for subscriber in subscribers:
            subscriber.offer(event)

    async def replay(self, user_id: str, after: int, through: int) -> AsyncIterator[Event]:
        """`user_id`'s events with sequences in (after, through], in order, from a
        consumer that exists only for this call."""
        if after >= through:
            return
        subscription = await self.js.pull_subscribe(
            ALL_EVENTS,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after + 1,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,  # the broker drops it even if we die mid-way
            ),
        )
        try:
            sequence = after
            while sequence < through:
                try:
                    batch = await subscription.fetch(_REPLAY_BATCH, timeout=_REPLAY_WAIT_SECONDS)
                except TimeoutError:
                    return  # nothing more: the rest of the range was deleted or expired
                for msg in batch:
                    sequence = msg.metadata.sequence.stream
                    if sequence > through:
                        return
                    found = read(msg, self.streamed)
                    if found is not None and found[1].user_id == user_id:
                        yield Event(sequence, found[1].type, render(found[1]))
        finally:
            await self._delete(subscription)

    async def _delete(self, subscription: JetStreamContext.PullSubscription) -> None:
        try:
            info = await subscription.consumer_info()
            await subscription.unsubscribe()
            await self.js.delete_consumer(EVENTS_STREAM, info.name)
        except Exception as exc:  # inactive_threshold removes it anyway
            log.debug("replay consumer cleanup failed: %s", exc)
