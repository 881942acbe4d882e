"""How fast the outbox reaches JetStream: prints figures, asserts nothing.

    .venv/bin/python -m bench.outbox_relay [--events 5000] [--aggregates 50]

Against a fresh database on the PostgreSQL at $KLIK_TEST_DATABASE_URL (default the
local server; SQLite when unreachable) and a throwaway nats-server, it measures:
  - add_event: events written per second, one per transaction (the cost a service
    pays inside its own transaction);
  - relay throughput: a backlog drained by 1 and by 2 relay replicas, events/s;
  - commit → delivered latency (p50/p99) of single events trickling in with
    `notify()`, as a subscriber sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nats
from google.protobuf import wrappers_pb2
from nats.aio.msg import Msg

from bench.common import Row, table
from kit import bus, db
from kit.outbox import OutboxRelay, add_event
from tests.databases import Databases, backend
from tests.helpers import free_port, wait_for
from tests.natsserver import NatsServer, nats_server_binary

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "wallet" / "migrations"


async def write_events(url: str, count: int, aggregates: int) -> float:
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    started = time.perf_counter()
    for i in range(count):
        async with sessions() as session, session.begin():
            await add_event(
                session,
                "bench.tick",
                wrappers_pb2.Int64Value(value=i),
                aggregate_id=f"agg-{i % aggregates}",
            )
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return count / elapsed


async def drain(url: str, nats_url: str, replicas: int, expected: int) -> float:
    engines = [db.make_engine(url) for _ in range(replicas)]
    connections = [await nats.connect(nats_url) for _ in range(replicas)]
    relays = [
        OutboxRelay(engine, nc.jetstream(), poll_interval=0.05)
        for engine, nc in zip(engines, connections, strict=True)
    ]
    started = time.perf_counter()
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    await wait_for(
        lambda: sum(relay.stats.published for relay in relays) >= expected, 600, interval=0.005
    )
    elapsed = time.perf_counter() - started
    for relay in relays:
        relay.stop()
    await asyncio.gather(*tasks)
    for nc in connections:
        await nc.close()
    for engine in engines:
        await engine.dispose()
    return expected / elapsed


async def latency(url: str, nats_url: str, samples: int) -> list[float]:
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    nc = await nats.connect(nats_url)
    relay = OutboxRelay(engine, nc.jetstream(), poll_interval=1.0)
    running = asyncio.create_task(relay.run())
    arrived: dict[int, float] = {}
    got = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        arrived[len(arrived)] = time.perf_counter()
        got.set()

    sub = await nc.subscribe(bus.event_subject("bench.latency"), cb=on_message)
    delays = []
    for i in range(samples):
        got.clear()
        async with sessions() as session, session.begin():
            await add_event(
                session, "bench.latency", wrappers_pb2.Int64Value(value=i), aggregate_id="a"
            )
        committed = time.perf_counter()
        relay.notify()
        await asyncio.wait_for(got.wait(), 10)
        delays.append(arrived[i] - committed)
    await sub.unsubscribe()
    relay.stop()
    await running
    await nc.close()
    await engine.dispose()
    return delays


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_relay")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--aggregates", type=int, default=50)
    parser.add_argument("--samples", type=int, default=300)
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> list[Row]:
    rates: dict[int, float] = {}
    first_writes = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(nats_server_binary(), free_port(), Path(tmp) / "js", Path(tmp) / "log")
        server.start()
        databases = Databases(Path(tmp))
        try:
            nc = await nats.connect(server.url)
            await bus.ensure_streams(nc.jetstream())
            await nc.close()
            print(f"database: {backend().describe()}; nats-server: {nats_server_binary()}")
            for replicas in (1, 2):
                url = databases.create()
                engine = db.make_engine(url)
                await db.migrate(engine, MIGRATIONS)
                await engine.dispose()
                writes = await write_events(url, args.events, args.aggregates)
                rate = rates[replicas] = await drain(url, server.url, replicas, args.events)
                if replicas == 1:
                    first_writes = writes
                    print(f"add_event, one event per transaction: {writes:,.0f} events/s")
                print(
                    f"relay, {args.events} events over {args.aggregates} aggregates, "
                    f"{replicas} replica(s): {rate:,.0f} events/s"
                )
            url = databases.create()
            engine = db.make_engine(url)
            await db.migrate(engine, MIGRATIONS)
            await engine.dispose()
            delays = await latency(url, server.url, args.samples)
            print(
                f"commit -> delivered, {args.samples} single events: "
                f"p50 {pct(delays, 50):.2f} ms, p99 {pct(delays, 99):.2f} ms"
            )
        finally:
            databases.drop_all()
            server.stop()
    return [
        Row("outbox add_event, 1 per transaction", first_writes, "events/s"),
        Row("outbox relay, 2 replicas", rates[2], "events/s", rates[1], "1 replica"),
        Row("outbox commit -> delivered p50", pct(delays, 50), "ms"),
        Row("outbox commit -> delivered p99", pct(delays, 99), "ms"),
    ]


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return asyncio.run(measure(parse(argv)))


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
