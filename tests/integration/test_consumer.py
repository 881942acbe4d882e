"""Event consumers against a real database and nats-server: every event is applied
exactly once, through crashes, redeliveries, duplicates and poison messages."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from google.protobuf.wrappers_pb2 import StringValue
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit.bus import DLQ_STREAM, EVENTS_STREAM, dead_letter_subject, event_subject
from kit.consumer import (
    DLQ_DELIVERIES,
    DLQ_ERROR,
    DLQ_EVENT_ID,
    DLQ_ORIGINAL_SUBJECT,
    EventConsumer,
    Handler,
)
from kit.db import make_engine
from kit.tables import processed_events
from klik.events.v1.envelope_pb2 import Envelope
from tests.helpers import (
    envelope,
    publish_envelope,
    run_module,
    stream_count,
    stream_messages,
    unique,
    wait_for,
)
from tests.integration import effects


def make_consumer(
    engine: AsyncEngine,
    js: JetStreamContext,
    event_type: str,
    *,
    consumer: str | None = None,
    handler: Handler[StringValue] = effects.record,
    **options: float,
) -> EventConsumer[StringValue]:
    return EventConsumer(
        engine,
        js,
        consumer=consumer or unique("test-consumer-"),
        event_type=event_type,
        handler=handler,
        payload_type=StringValue,
        **{"retry_delay": 0.02, "fetch_timeout": 0.2, **options},  # type: ignore[arg-type]
    )


async def settled(js: JetStreamContext, consumer: str) -> bool:
    """Nothing left to deliver and nothing awaiting an ack (so nothing to redeliver)."""
    try:
        info = await js.consumer_info(EVENTS_STREAM, consumer)
    except NotFoundError:
        return False  # not created yet
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def outcomes(consumer: str, outcome: str) -> float:
    labels = {"consumer": consumer, "outcome": outcome}
    return REGISTRY.get_sample_value("klik_events_consumed_total", labels) or 0.0


async def drain(
    worker: EventConsumer[StringValue], js: JetStreamContext, within: float = 15
) -> None:
    async def done() -> bool:
        await worker.process_batch(wait=0.1)
        return await settled(js, worker.consumer)

    await wait_for(done, within, message=f"{worker.consumer} settled")


async def inbox(engine: AsyncEngine, consumer: str) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.scalars(
            select(processed_events.c.event_id).where(processed_events.c.consumer == consumer)
        )
        return list(result)


async def test_effect_and_inbox_commit_together_then_ack(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.apply.")
    attempts = 0

    async def flaky(session: AsyncSession, env: Envelope, payload: StringValue) -> None:
        nonlocal attempts
        attempts += 1
        await effects.record(session, env, payload)
        if attempts == 1:
            raise RuntimeError("fails after writing its effect")

    worker = make_consumer(engine, js, event_type, handler=flaky)
    await worker.process_batch(wait=0.1)  # creates the durable consumer
    env = envelope(event_type, StringValue(value="v"), request_id="req-42")
    await publish_envelope(js, env)

    await wait_for(lambda: _processed(worker), message="first delivery")
    # The failed attempt rolled back its effect and its inbox row together.
    assert attempts == 1
    assert await effects.count(engine) == 0
    assert await inbox(engine, worker.consumer) == []

    await drain(worker, js)
    assert attempts == 2
    assert await effects.count(engine, env.id) == 1
    assert await inbox(engine, worker.consumer) == [env.id]
    async with engine.connect() as conn:
        request_ids = list(await conn.scalars(select(effects.effects.c.request_id)))
    assert request_ids == ["req-42"]  # the handler ran with the event's request id


async def _processed(worker: EventConsumer[StringValue]) -> bool:
    return await worker.process_batch(wait=0.1) > 0


async def test_crash_after_commit_before_ack_applies_once(
    engine: AsyncEngine, js: JetStreamContext, database_url: str, nats_url: str
) -> None:
    event_type = unique("test.ackcrash.")
    consumer = unique("test-ackcrash-")
    env = envelope(event_type, StringValue(value="once"))
    await publish_envelope(js, env)

    code, _ = await run_module(
        "tests.integration.scripts.consumer_crash",
        database_url,
        nats_url,
        consumer,
        event_type,
        "1",
    )
    assert code == -signal.SIGKILL
    assert await effects.count(engine, env.id) == 1  # committed before the crash
    info = await js.consumer_info(EVENTS_STREAM, consumer)
    assert info.num_ack_pending == 1  # ...but never acked

    calls = 0

    async def counting(session: AsyncSession, e: Envelope, payload: StringValue) -> None:
        nonlocal calls
        calls += 1
        await effects.record(session, e, payload)

    worker = make_consumer(engine, js, event_type, consumer=consumer, handler=counting, ack_wait=1)
    await drain(worker, js)  # the redelivery comes once ack_wait expires

    # The redelivery arrived and was recognised as already applied.
    assert outcomes(consumer, "duplicate") == 1
    assert calls == 0
    assert await effects.count(engine, env.id) == 1


async def test_failing_handler_goes_to_dlq_after_max_deliver(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.poison.")
    calls = 0

    async def broken(session: AsyncSession, e: Envelope, payload: StringValue) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"cannot handle {payload.value}\nsecond line")

    worker = make_consumer(engine, js, event_type, handler=broken, max_deliver=3)
    env = envelope(event_type, StringValue(value="bad"))
    await publish_envelope(js, env)
    dlq = dead_letter_subject(worker.consumer)

    await drain(worker, js)

    assert calls == 3
    [dead] = await stream_messages(js, DLQ_STREAM, dlq)
    assert dead.data == env.SerializeToString()
    assert dead.headers is not None
    assert dead.headers[DLQ_ORIGINAL_SUBJECT] == event_subject(event_type)
    assert dead.headers[DLQ_EVENT_ID] == env.id
    assert dead.headers[DLQ_ERROR] == "ValueError: cannot handle bad second line"
    assert dead.headers[DLQ_DELIVERIES] == "3"
    assert await inbox(engine, worker.consumer) == []
    # Terminated: settled means nothing pending or awaiting ack, so no redelivery.
    assert await worker.process_batch(wait=0.2) == 0
    assert calls == 3


async def test_unparseable_message_goes_to_dlq_at_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.garbage.")
    calls = 0

    async def handler(session: AsyncSession, e: Envelope, payload: StringValue) -> None:
        nonlocal calls
        calls += 1

    worker = make_consumer(engine, js, event_type, handler=handler)
    await js.publish(event_subject(event_type), b"\xff\xfe not a protobuf")
    wrong_type = envelope(event_type, Envelope(id="nested"))  # payload is not a StringValue
    await publish_envelope(js, wrong_type)

    await drain(worker, js)

    dead = await stream_messages(js, DLQ_STREAM, dead_letter_subject(worker.consumer))
    assert [m.data for m in dead] == [b"\xff\xfe not a protobuf", wrong_type.SerializeToString()]
    assert all(m.headers and m.headers[DLQ_DELIVERIES] == "1" for m in dead)
    assert [m.headers and m.headers[DLQ_EVENT_ID] for m in dead] == ["", wrong_type.id]
    assert calls == 0


async def test_duplicate_publishes_of_one_event_apply_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.dup.")
    worker = make_consumer(engine, js, event_type)
    env = envelope(event_type, StringValue(value="dup"))
    for n in range(3):  # different Nats-Msg-Id each time, so the broker keeps all three
        await publish_envelope(js, env, msg_id=f"{env.id}-{n}")
    assert await stream_count(js, EVENTS_STREAM, event_subject(event_type)) == 3

    await drain(worker, js)

    assert await effects.count(engine, env.id) == 1
    assert await inbox(engine, worker.consumer) == [env.id]


async def test_two_replicas_racing_on_duplicates_apply_each_event_once(
    engine: AsyncEngine, js: JetStreamContext, database_url: str
) -> None:
    event_type = unique("test.race.")
    consumer = unique("test-race-")
    envs = [envelope(event_type, StringValue(value=str(n))) for n in range(40)]
    for env in envs:
        for copy in range(2):
            await publish_envelope(js, env, msg_id=f"{env.id}-{copy}")

    second_engine = make_engine(database_url)
    replicas = [
        make_consumer(engine, js, event_type, consumer=consumer, batch=4),
        make_consumer(second_engine, js, event_type, consumer=consumer, batch=4),
    ]
    tasks = [asyncio.create_task(replica.run()) for replica in replicas]
    try:
        await wait_for(lambda: settled(js, consumer), 20, message="both replicas done")
    finally:
        for replica in replicas:
            replica.stop()
        await asyncio.gather(*tasks)
        await second_engine.dispose()

    query = select(effects.effects.c.event_id, func.count()).group_by(effects.effects.c.event_id)
    async with engine.connect() as conn:
        counts = {event_id: n for event_id, n in await conn.execute(query)}
    assert counts == {env.id: 1 for env in envs}
    assert outcomes(consumer, "handled") == 40
    assert outcomes(consumer, "duplicate") == 40


class Crashed(BaseException):
    """What a replica that dies mid-delivery leaves behind: no ack, no nak, no DLQ."""


async def test_a_message_that_crashes_every_delivery_is_dead_lettered_by_the_server(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.crashloop.")
    deliveries = 0

    async def crashing(session: AsyncSession, e: Envelope, payload: StringValue) -> None:
        nonlocal deliveries
        deliveries += 1
        raise Crashed

    worker = make_consumer(engine, js, event_type, handler=crashing, max_deliver=3, ack_wait=1)
    env = envelope(event_type, StringValue(value="kills its consumer"))
    await publish_envelope(js, env)
    dlq = dead_letter_subject(worker.consumer)

    async def dead_lettered() -> bool:
        # Each "restarted" replica fetches again; the crash escapes the consumer.
        with contextlib.suppress(Crashed):
            await worker.process_batch(wait=0.2)
        return await stream_count(js, DLQ_STREAM, dlq) == 1

    await wait_for(dead_lettered, 20, message="the crash-looping message dead-lettered")
    [dead] = await stream_messages(js, DLQ_STREAM, dlq)
    assert dead.data == env.SerializeToString()
    assert dead.headers is not None
    assert dead.headers[DLQ_EVENT_ID] == env.id
    assert dead.headers[DLQ_ORIGINAL_SUBJECT] == event_subject(event_type)
    assert dead.headers[DLQ_DELIVERIES] == "3"
    assert "no outcome after 3 deliveries" in dead.headers[DLQ_ERROR]
    info = await js.consumer_info(EVENTS_STREAM, worker.consumer)
    assert info.config.max_deliver == 3
    assert deliveries == 3
    # The server delivers it no more, however long the consumer keeps fetching.
    ack_wait_later = asyncio.get_running_loop().time() + 1.5
    while asyncio.get_running_loop().time() < ack_wait_later:
        with contextlib.suppress(Crashed):
            await worker.process_batch(wait=0.3)
    assert deliveries == 3


async def test_an_existing_unlimited_durable_gets_the_delivery_limit(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.limit.")
    consumer = unique("test-limit-")
    await js.add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            name=consumer,
            durable_name=consumer,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=event_subject(event_type),
            ack_wait=30,
            max_deliver=-1,
        ),
    )
    worker = make_consumer(engine, js, event_type, consumer=consumer, max_deliver=4)
    await worker.process_batch(wait=0.1)
    info = await js.consumer_info(EVENTS_STREAM, consumer)
    assert info.config.max_deliver == 4


async def test_stop_ends_a_waiting_fetch_at_once(engine: AsyncEngine, js: JetStreamContext) -> None:
    event_type = unique("test.stop.")
    worker = make_consumer(engine, js, event_type, fetch_timeout=10.0)
    running = asyncio.create_task(worker.run())

    async def fetching() -> bool:
        # The server holds the run loop's pull request: it is waiting for messages.
        try:
            info = await js.consumer_info(EVENTS_STREAM, worker.consumer)
        except NotFoundError:
            return False
        return bool(info.num_waiting and info.num_waiting >= 1)

    await wait_for(fetching, 5, message="waiting in a fetch")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert loop.time() - asked < 0.5  # not the rest of the 10 s fetch
