"""The event bus: NATS connections and the JetStream streams every service shares.

Subjects: events are published on `klik.events.<type>` (stream KLIK_EVENTS); messages
a consumer gave up on go to `klik.dlq.<consumer>` (stream KLIK_DLQ).

Event types are written once, in the contracts: each payload message in
protos/klik/events/v1 declares its type with `option (klik.options.v1.event)`, and
code asks the payload for it (`event_type_of(WalletChanged)`), never spells it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from nats.aio.client import Client, Server
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from kit.backoff import Backoff
from klik.options.v1 import options_pb2

if TYPE_CHECKING:  # what the stubs say a generated message's DESCRIPTOR may be
    from google._upb._message import Descriptor as UpbDescriptor

__all__ = [
    "DLQ_STREAM",
    "EVENTS_STREAM",
    "connect",
    "dead_letter_subject",
    "ensure_streams",
    "event_options",
    "event_subject",
    "event_type_of",
    "event_types_of",
    "unsubscribe_quietly",
]

log = logging.getLogger(__name__)

EVENTS_STREAM = "KLIK_EVENTS"
DLQ_STREAM = "KLIK_DLQ"
EVENTS_PREFIX = "klik.events."
DLQ_PREFIX = "klik.dlq."
RECONNECT_FIRST_SECONDS = 0.1

_DAY = 24 * 3600.0
# The broker drops a re-publish of an event id seen within this window; it bounds
# how long a relay may take between publishing and marking a row before a retry
# becomes a (harmless, inbox-deduplicated) duplicate delivery.
DUPLICATE_WINDOW = 600.0

Callback = Callable[[], Awaitable[None]]


async def unsubscribe_quietly(subscription: Any, what: str) -> None:
    """Stop a push subscription on the way out: the connection may already be gone,
    and a stopping component must not fail on that."""
    try:
        await subscription.unsubscribe()
    except Exception as exc:
        log.debug("%s unsubscribe failed: %s", what, exc)


def event_subject(event_type: str) -> str:
    return EVENTS_PREFIX + event_type


def dead_letter_subject(consumer: str) -> str:
    return DLQ_PREFIX + consumer


# An event payload: a message, its class or its descriptor.
Payload: TypeAlias = "Message | type[Message] | Descriptor | UpbDescriptor"
# protoc's stubs type extensions as plain FieldDescriptors, which Extensions[] refuses.
_EVENT: Any = options_pb2.event


def _descriptor(payload: Payload) -> Descriptor:
    if isinstance(payload, Message | type):
        return cast(Descriptor, payload.DESCRIPTOR)
    return cast(Descriptor, payload)


def event_options(payload: Payload) -> options_pb2.Event | None:
    """The `(klik.options.v1.event)` option of a payload message, None without one."""
    options = _descriptor(payload).GetOptions()
    if not options.HasExtension(_EVENT):
        return None
    event: options_pb2.Event = options.Extensions[_EVENT]
    return event


def event_types_of(payload: Payload) -> tuple[str, ...]:
    """Every event type `payload` is the payload of, as its message declares: its
    `type`, or `<type>.<variant>` for each of its variants; () when it declares none."""
    event = event_options(payload)
    if event is None or not event.type:
        return ()
    if not event.variants:
        return (event.type,)
    return tuple(f"{event.type}.{variant}" for variant in event.variants)


def event_type_of(payload: Payload, variant: str = "") -> str:
    """The event type of `payload` (a message, its class or its descriptor), from its
    `(klik.options.v1.event)` option: `event_type_of(WalletChanged)` is
    `wallet.changed`; a payload that lists variants needs one,
    `event_type_of(JobTransitioned, "queued")` is `generation.job.queued`.
    ValueError when the message declares no event type, or `variant` is missing,
    extra or not one it declares."""
    descriptor = _descriptor(payload)
    event = event_options(descriptor)
    if event is None or not event.type:
        raise ValueError(f"{descriptor.full_name} declares no (klik.options.v1.event) type")
    if not event.variants and not variant:
        return event.type
    if variant not in event.variants:
        declared = ", ".join(event.variants) or "none"
        raise ValueError(
            f"{descriptor.full_name}: variant {variant!r} is not declared (declared: {declared})"
        )
    return f"{event.type}.{variant}"


async def connect(
    url: str,
    *,
    name: str,
    on_disconnect: Callback | None = None,
    on_reconnect: Callback | None = None,
    max_backoff: float = 5.0,
) -> Client:
    """Connect to NATS and stay connected: reconnects forever, with jittered backoff.

    The first connection is retried forever too, so a service started before NATS
    waits for it. `on_disconnect` / `on_reconnect` let the server flip its health.
    """

    client = Client()

    async def disconnected() -> None:
        if client.is_closed:
            return  # a deliberate close(), not an outage
        log.warning("nats disconnected", extra={"nats_name": name})
        if on_disconnect is not None:
            await on_disconnect()

    async def reconnected() -> None:
        log.info("nats reconnected", extra={"nats_name": name})
        if on_reconnect is not None:
            await on_reconnect()

    async def error(exc: Exception) -> None:
        log.warning("nats error: %s", exc, extra={"nats_name": name})

    # Full jitter, so replicas don't reconnect in step.
    wait = Backoff(RECONNECT_FIRST_SECONDS, max_backoff, "full")

    def next_server(servers: list[Server], _info: dict[str, Any]) -> tuple[Server | None, float]:
        attempts = min(server.reconnects for server in servers)
        return None, wait.delay(attempts + 1)

    await client.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        reconnect_to_server_handler=next_server,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
    return client


@dataclass(frozen=True)
class _Stream:
    name: str
    subjects: list[str]
    max_age: float

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=self.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=self.max_age,
            duplicate_window=DUPLICATE_WINDOW,
        )


_STREAMS = (
    _Stream(EVENTS_STREAM, [EVENTS_PREFIX + ">"], max_age=7 * _DAY),
    _Stream(DLQ_STREAM, [DLQ_PREFIX + ">"], max_age=30 * _DAY),
)


async def ensure_streams(js: JetStreamContext) -> None:
    """Create or update KLIK_EVENTS and KLIK_DLQ. Idempotent; replicas may race on it."""
    for stream in _STREAMS:
        await _ensure_stream(js, stream.config())


async def _ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> None:
    assert wanted.name is not None
    try:
        current = (await js.stream_info(wanted.name)).config
    except NotFoundError:
        try:
            await js.add_stream(wanted)
            log.info("created stream %s", wanted.name)
            return
        except BadRequestError:
            # Another replica created it between our lookup and our create.
            current = (await js.stream_info(wanted.name)).config
    if _differs(current, wanted):
        await js.update_stream(wanted)
        log.info("updated stream %s", wanted.name)


def _differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    return (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or not _close(current.max_age, wanted.max_age)
        or not _close(current.duplicate_window, wanted.duplicate_window)
    )


def _close(a: float | None, b: float | None) -> bool:
    return abs((a or 0.0) - (b or 0.0)) < 1e-3
