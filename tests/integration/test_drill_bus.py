"""Drill: NATS stopped for 10 s while a service keeps writing events and consuming
them. Every event written is published once and applied once: none lost, none
doubled (the outbox keeps them through the outage, Nats-Msg-Id and the inbox absorb
the retries)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus, db
from kit.bus import EVENTS_STREAM, event_subject
from kit.consumer import EventConsumer
from kit.outbox import OutboxRelay, add_event
from klik.events.v1.envelope_pb2 import Envelope
from tests.helpers import free_port, stream_messages, unique, wait_for
from tests.integration import effects
from tests.natsserver import NatsServer, nats_server_binary

OUTAGE_SECONDS = 10.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(nats_server_binary(), free_port(), tmp_path / "js", tmp_path / "log")
    server.start()
    yield server
    server.stop()


@pytest.mark.drill
async def test_nats_stopped_for_10s_under_load_loses_and_doubles_no_event(
    engine: AsyncEngine, broker: NatsServer
) -> None:
    event_type = unique("test.drill.")
    nc = await bus.connect(broker.url, name="drill")
    js = nc.jetstream()
    await bus.ensure_streams(js)
    # Retry delays capped at 2 s (30 s by default) so the drill stays short.
    relay = OutboxRelay(engine, js, poll_interval=0.05, publish_timeout=0.5, max_backoff=2.0)
    uow = db.UnitOfWork(db.session_factory(engine), relay.notify)
    consumer = EventConsumer(
        engine,
        js,
        consumer=unique("drill-"),
        event_type=event_type,
        handler=effects.record,
        payload_type=StringValue,
        fetch_timeout=0.5,
        max_restart_delay=2.0,
        # A delivery whose ack the outage swallowed comes back after ack_wait.
        ack_wait=3.0,
    )
    written: list[str] = []
    producing = True

    async def produce() -> None:
        # A service under steady load: one event per transaction, outage or not.
        for n in itertools.count():
            if not producing:
                return
            async with uow.write() as session:
                written.append(
                    await add_event(
                        session, event_type, StringValue(value=str(n)), aggregate_id="a"
                    )
                )
            await asyncio.sleep(0.1)  # pacing the load, not waiting for anything

    tasks = [asyncio.create_task(job) for job in (relay.run(), consumer.run(), produce())]
    try:
        await wait_for(lambda: _applied_at_least(engine, 10), 15, message="events flowing")
        await asyncio.to_thread(broker.stop)
        during = len(written)
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        assert len(written) > during  # the service kept taking writes
        await asyncio.to_thread(broker.start)
        backlog = len(written)  # the outage's events, and then some new ones
        await wait_for(lambda: _applied_at_least(engine, backlog + 5), 30, message="flowing again")
        producing = False
        await tasks[2]
        await wait_for(lambda: _applied_at_least(engine, len(written)), 30, message="caught up")
    finally:
        producing = False
        relay.stop()
        consumer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)

    async with engine.connect() as conn:
        applied = Counter(await conn.scalars(select(effects.effects.c.event_id)))
    assert set(applied) == set(written)  # none lost
    assert max(applied.values()) == 1  # none applied twice
    published = await stream_messages(js, EVENTS_STREAM, event_subject(event_type), within=30)
    ids = Counter(Envelope.FromString(msg.data).id for msg in published)
    assert set(ids) == set(written) and max(ids.values()) == 1  # none published twice
    await nc.close()


async def _applied_at_least(engine: AsyncEngine, n: int) -> bool:
    return await effects.count(engine) >= n
