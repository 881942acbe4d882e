"""The outbox against real PostgreSQL (or the SQLite fallback) and a real nats-server:
events are never lost, never published twice, and keep their per-aggregate order."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from nats.js import JetStreamContext
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus
from kit.bus import EVENTS_STREAM, event_subject
from kit.context import request_id_var
from kit.db import UnitOfWork, make_engine, session_factory
from kit.outbox import OutboxRelay, add_event, prune_published
from kit.tables import outbox, partition_of
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import WalletChanged
from tests.helpers import run_module, stream_count, stream_messages, unique, wait_for
from tests.natsserver import NatsServer


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int(await conn.scalar(query) or 0)


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)


async def test_add_event_rolls_back_with_the_callers_transaction(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    with pytest.raises(RuntimeError, match="business rule"):
        async with sessions() as session, session.begin():
            await add_event(session, "test.rollback", StringValue(value="x"), aggregate_id="a")
            raise RuntimeError("business rule failed after the event was added")
    assert await outbox_rows(engine) == 0


async def test_add_event_refuses_a_payload_under_a_type_it_does_not_declare(
    engine: AsyncEngine,
) -> None:
    """A klik payload names its own event types (kit.bus.event_type_of)."""
    sessions = session_factory(engine)
    refused = r"WalletChanged is the payload of wallet\.changed, not of 'wallet\.chnaged'"
    with pytest.raises(ValueError, match=refused):
        async with sessions() as session, session.begin():
            await add_event(session, "wallet.chnaged", WalletChanged(), aggregate_id="a")
    assert await outbox_rows(engine) == 0
    async with sessions() as session, session.begin():
        payload = WalletChanged(user_id="a")
        await add_event(session, bus.event_type_of(payload), payload, aggregate_id="a")
    assert await outbox_rows(engine) == 1


async def test_a_unit_of_work_that_recorded_an_event_wakes_the_relay(engine: AsyncEngine) -> None:
    """Only commits with events notify: a commit without one (a PENDING job, a lease
    renewal) would send the relay to the database for nothing."""
    woken: list[str] = []
    uow = UnitOfWork(session_factory(engine), lambda: woken.append("woken"))
    async with uow.write() as session:
        await session.execute(update(outbox).where(outbox.c.id == "none").values(seq=0))
    assert woken == []
    async with uow.write() as session:
        await add_event(session, "test.notify", StringValue(value="x"), aggregate_id="a")
    assert woken == ["woken"]
    assert await outbox_rows(engine) == 1


async def test_add_event_commits_an_envelope_with_the_callers_transaction(
    engine: AsyncEngine,
) -> None:
    token = request_id_var.set("req-123")
    try:
        async with session_factory(engine)() as session, session.begin():
            event_id = await add_event(
                session, "test.commit", StringValue(value="hi"), aggregate_id="agg-7", user_id="u1"
            )
    finally:
        request_id_var.reset(token)
    async with engine.connect() as conn:
        row = (await conn.execute(select(outbox).where(outbox.c.id == event_id))).one()
    assert row.subject == "klik.events.test.commit"
    assert row.partition == partition_of("agg-7")
    assert row.published_at is None
    env = Envelope.FromString(row.payload)
    payload = StringValue()
    assert env.payload.Unpack(payload)
    assert (env.id, env.type, env.aggregate_id, env.user_id, env.request_id, payload.value) == (
        event_id,
        "test.commit",
        "agg-7",
        "u1",
        "req-123",
        "hi",
    )
    assert env.occurred_at.seconds > 0


async def test_relay_publishes_with_msg_id_and_marks_rows(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event_type = unique("test.relay.")
    async with session_factory(engine)() as session, session.begin():
        ids = [
            await add_event(
                session, event_type, StringValue(value=str(i)), aggregate_id=f"a{i % 2}"
            )
            for i in range(5)
        ]
    relay = OutboxRelay(engine, js)

    assert await relay.relay_once() == 5
    assert await unpublished(engine) == 0
    assert await relay.relay_once() == 0

    messages = await stream_messages(js, EVENTS_STREAM, event_subject(event_type))
    envelopes = [Envelope.FromString(m.data) for m in messages]
    assert [m.headers and m.headers["Nats-Msg-Id"] for m in messages] == [e.id for e in envelopes]
    # Partitions are relayed independently: order holds per aggregate, not globally.
    for aggregate in ("a0", "a1"):
        in_stream = [e.id for e in envelopes if e.aggregate_id == aggregate]
        assert in_stream == [i for n, i in enumerate(ids) if f"a{n % 2}" == aggregate]
    assert sorted(e.id for e in envelopes) == sorted(ids)
    assert relay.stats.duplicates == 0


async def test_failed_publish_leaves_rows_for_the_next_pass(
    engine: AsyncEngine, js: JetStreamContext, nats_url: str
) -> None:
    event_type = unique("test.fail.")
    async with session_factory(engine)() as session, session.begin():
        await add_event(session, event_type, StringValue(value="x"), aggregate_id="a")
    closed = await bus.connect(nats_url, name="closed")
    await closed.close()
    broken = OutboxRelay(engine, closed.jetstream(), publish_timeout=0.5)

    assert await broken.relay_once() == 0
    assert broken.stats.failures == 1
    assert await unpublished(engine) == 1
    assert await stream_count(js, EVENTS_STREAM, event_subject(event_type)) == 0

    assert await OutboxRelay(engine, js).relay_once() == 1
    assert await unpublished(engine) == 0


async def test_crash_after_commit_before_publish_publishes_once(
    engine: AsyncEngine, js: JetStreamContext, database_url: str, nats_url: str
) -> None:
    event_type = unique("test.crash.commit.")
    code, out = await run_module(
        "tests.integration.scripts.outbox_crash", "commit", database_url, nats_url, event_type
    )
    assert code == -signal.SIGKILL
    event_id = out.strip()
    assert await unpublished(engine) == 1

    assert await OutboxRelay(engine, js).relay_once() == 1

    messages = await stream_messages(js, EVENTS_STREAM, event_subject(event_type))
    assert [m.headers and m.headers["Nats-Msg-Id"] for m in messages] == [event_id]
    assert await unpublished(engine) == 0


async def test_crash_after_publish_before_mark_publishes_once(
    engine: AsyncEngine, js: JetStreamContext, database_url: str, nats_url: str
) -> None:
    event_type = unique("test.crash.publish.")
    code, out = await run_module(
        "tests.integration.scripts.outbox_crash", "publish", database_url, nats_url, event_type
    )
    assert code == -signal.SIGKILL
    event_id = out.strip()
    # Published and acknowledged, but the process died before marking the row.
    assert await stream_count(js, EVENTS_STREAM, event_subject(event_type)) == 1
    assert await unpublished(engine) == 1

    relay = OutboxRelay(engine, js)
    assert await relay.relay_once() == 1
    assert relay.stats.duplicates == 1  # the broker recognised the Nats-Msg-Id

    messages = await stream_messages(js, EVENTS_STREAM, event_subject(event_type))
    assert [m.headers and m.headers["Nats-Msg-Id"] for m in messages] == [event_id]
    assert await unpublished(engine) == 0


async def test_two_relays_deliver_each_event_once_in_aggregate_order(
    engine: AsyncEngine, js: JetStreamContext, database_url: str, nats_url: str
) -> None:
    event_type = unique("test.scale.")
    aggregates = [f"agg-{n}" for n in range(20)]
    written: dict[str, list[str]] = defaultdict(list)
    rng = random.Random(7)
    sessions = session_factory(engine)
    for _ in range(10):
        async with sessions() as session, session.begin():
            for _ in range(100):
                aggregate = rng.choice(aggregates)
                value = f"{aggregate}:{len(written[aggregate])}"
                written[aggregate].append(value)
                await add_event(
                    session, event_type, StringValue(value=value), aggregate_id=aggregate
                )

    # Each replica: its own engine (connection pool) and its own NATS connection.
    replicas = []
    for n in range(2):
        nc = await bus.connect(nats_url, name=f"relay-{n}")
        own_engine = make_engine(database_url)
        relay = OutboxRelay(own_engine, nc.jetstream(), batch_size=25, poll_interval=0.05)
        replicas.append((nc, own_engine, relay, asyncio.create_task(relay.run())))
    try:
        await wait_for(lambda: _all_published(engine), 60, message="outbox drained by two relays")
    finally:
        for nc, own_engine, relay, task in replicas:
            relay.stop()
            await task
            await own_engine.dispose()
            await nc.close()

    messages = await stream_messages(js, EVENTS_STREAM, event_subject(event_type), within=30)
    received: dict[str, list[str]] = defaultdict(list)
    ids = []
    for msg in messages:
        env = Envelope.FromString(msg.data)
        payload = StringValue()
        env.payload.Unpack(payload)
        ids.append(env.id)
        received[env.aggregate_id].append(payload.value)
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
    assert received == written  # every aggregate's events, in the order written
    # Partition locks kept the replicas from ever publishing the same row twice.
    assert sum(relay.stats.duplicates for _, _, relay, _ in replicas) == 0
    assert sum(relay.stats.published for _, _, relay, _ in replicas) == 1000


async def _all_published(engine: AsyncEngine) -> bool:
    return await unpublished(engine) == 0


async def test_relay_recovers_when_the_broker_comes_back(
    engine: AsyncEngine, js: JetStreamContext, nats_server: NatsServer
) -> None:
    event_type = unique("test.outage.")
    relay = OutboxRelay(engine, js, publish_timeout=0.3)
    nats_server.stop()
    try:
        async with session_factory(engine)() as session, session.begin():
            await add_event(session, event_type, StringValue(value="x"), aggregate_id="a")
        assert await relay.relay_once() == 0
        assert relay.stats.failures == 1
        assert await unpublished(engine) == 1
    finally:
        nats_server.start()

    await wait_for(relay.relay_once, 20, message="published after the broker restart")
    assert await unpublished(engine) == 0
    assert await stream_count(js, EVENTS_STREAM, event_subject(event_type)) == 1


async def test_prune_deletes_only_old_published_rows(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session, session.begin():
        old, recent, pending = [
            await add_event(session, "test.prune", StringValue(value=v), aggregate_id=v)
            for v in ("old", "recent", "pending")
        ]
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for event_id, published_at in ((old, now - timedelta(days=8)), (recent, now)):
            await conn.execute(
                update(outbox).where(outbox.c.id == event_id).values(published_at=published_at)
            )

    assert await prune_published(engine, timedelta(days=7)) == 1
    async with engine.connect() as conn:
        left = set(await conn.scalars(select(outbox.c.id)))
    assert left == {recent, pending}
