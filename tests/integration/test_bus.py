"""kit.bus against a real nats-server: streams are ensured idempotently, by racing
replicas too, and drift in their config is repaired."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.api import StorageType

from kit.bus import (
    DLQ_STREAM,
    DUPLICATE_WINDOW,
    EVENTS_STREAM,
    dead_letter_subject,
    ensure_streams,
    event_subject,
)


def test_subjects() -> None:
    assert event_subject("user.registered") == "klik.events.user.registered"
    assert dead_letter_subject("wallet-user-registered") == "klik.dlq.wallet-user-registered"


async def test_ensure_streams_is_idempotent_and_repairs_drift(js: JetStreamContext) -> None:
    await asyncio.gather(*(ensure_streams(js) for _ in range(5)))  # replicas racing
    events = (await js.stream_info(EVENTS_STREAM)).config
    assert events.subjects == ["klik.events.>"]
    assert events.storage == StorageType.FILE
    assert events.duplicate_window == DUPLICATE_WINDOW
    assert events.max_age == 7 * 24 * 3600
    assert (await js.stream_info(DLQ_STREAM)).config.subjects == ["klik.dlq.>"]

    events.max_age = 60.0
    events.duplicate_window = 30.0
    await js.update_stream(events)
    await ensure_streams(js)
    repaired = (await js.stream_info(EVENTS_STREAM)).config
    assert (repaired.max_age, repaired.duplicate_window) == (7 * 24 * 3600, DUPLICATE_WINDOW)
