"""How many open `GET /v1/events` streams one gateway replica holds, and how fast it
fans an event out to them: prints figures, asserts nothing.

    .venv/bin/python -m bench.events_fanout [--streams 5000] [--baseline 100]
        [--per-user 50] [--rounds 10] [--paced-rounds 10] [--interval 0.5]
        [--client-processes 2]

A nats-server, a JWKS server standing in for auth (this process) and the real
gateway (`python -m gateway`, its own process, KLIK_GATEWAY_SSE_MAX_PER_USER
raised to `--per-user`); nothing else. Client processes (raw asyncio streams on
uvloop, whole reads split into lines: the cheapest HTTP client there is; their CPU
share printed) open `--streams` event streams, `--per-user` of them for each user,
and wait until the gateway's `klik_gateway_event_streams` gauge says they are all
open. Then this process publishes rounds, `--interval` apart, of one
`wallet.changed` per user onto KLIK_EVENTS as the wallet's outbox relay would (the
publish time inside the event): first `--rounds` bursts (every user's event back to
back, so each round reaches every stream at once: the worst case), then
`--paced-rounds` with the same events spread evenly over the interval (independent
users' events, as they arrive in use). Each stream records, per event, publish ->
its `data:` line read by the client. Printed: fan-out latency p50/p99 over every
delivery of each kind of round, deliveries missing, and the gateway's resident set
(VmRSS, and its peak VmHWM) with the streams open. The baseline: the same,
`--baseline` streams (same fan-out per user), first, on the same gateway process.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import httpx
import uvloop

from bench.common import Clients, Row, Sample, cores_used, in_tmp, table
from bench.stack import rss_bytes, stack
from kit import bus
from klik.events.v1.events_pb2 import WalletChanged
from tests.helpers import envelope, publish_envelope, wait_for

STAMP = re.compile(rb'"balance":"(\d+)"')
CONNECTING = 100  # connections one client process opens at once


class StreamsClient(NamedTuple):
    host: str
    port: int
    tokens: list[str]  # one per stream of this process
    events: int  # what each stream waits for before it ends


async def one_stream(
    p: StreamsClient,
    token: str,
    stop: float,
    gate: asyncio.Semaphore,
    opened: list[asyncio.StreamWriter],
) -> list[float]:
    """Open one stream (into `opened`, left open: see streams_client) and read it
    until `p.events` events or `stop`: each event's publish -> read latency (the
    publish time, in microseconds, is its balance)."""
    async with gate:
        reader, writer = await asyncio.open_connection(p.host, p.port)
        opened.append(writer)
        writer.write(
            f"GET /v1/events HTTP/1.1\r\nHost: {p.host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"GET /v1/events: {status.decode().strip()}")
        while (await reader.readline()).strip():
            pass  # the headers
    latencies: list[float] = []
    pending = b""
    try:
        # Whole reads split into lines, under one timeout: a wait_for per line would
        # make a task per line, and the client, not the gateway, would be measured.
        async with asyncio.timeout(max(0.0, stop - time.time())):
            while len(latencies) < p.events:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    raise RuntimeError("a stream ended before its events")
                read_at = time.time()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.startswith(b"data: ") and (stamp := STAMP.search(line)):
                        latencies.append(read_at - int(stamp.group(1)) / 1e6)
    except TimeoutError:
        pass  # the window ended: what was read counts, what was not is missing
    return latencies


def streams_client(payload: StreamsClient, start_at: float, seconds: float) -> Sample:
    """One client process: its streams, opened `CONNECTING` at a time, read until each
    has its events or the window (from `start_at`, monotonic) ends, then all closed
    together (a stream closed as soon as it is done would have the gateway tear
    down connections while it still delivers the last round to the others). Records
    each stream's delivery count."""

    async def go() -> Sample:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        stop = time.time() + seconds
        gate = asyncio.Semaphore(CONNECTING)
        cpu, began = time.process_time(), time.monotonic()
        opened: list[asyncio.StreamWriter] = []
        try:
            got = await asyncio.gather(
                *(one_stream(payload, t, stop, gate, opened) for t in payload.tokens)
            )
        finally:
            for writer in opened:
                writer.close()
        sample = Sample(cpu=time.process_time() - cpu, elapsed=time.monotonic() - began)
        sample.latencies = [x for stream in got for x in stream]
        sample.records = list(got)  # each stream's latencies, in round order
        return sample

    return uvloop.run(go())  # the cheapest loop there is: the client must not be the limit


class Fanout(NamedTuple):
    streams: int
    p50_ms: float  # the burst rounds
    p99_ms: float
    paced_p50_ms: float  # the paced rounds
    paced_p99_ms: float
    delivered: int
    expected: int
    rss: int
    peak: int
    client: str


async def open_streams(gateway: str) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            text = (await client.get(gateway + "/metrics")).text
        except httpx.TimeoutException:  # busy opening streams: not all there yet
            return 0
    found = re.search(r"^klik_gateway_event_streams (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


async def fanout(
    args: argparse.Namespace,
    clients: Clients,
    where: tuple[str, str, int],
    users: Sequence[str],
    tokens: Sequence[str],
    streams: int,
) -> Fanout:
    nats_url, gateway, gateway_pid = where
    host, port = gateway.removeprefix("http://").split(":")
    users_here = math.ceil(streams / args.per_user)
    mine = [tokens[i % users_here] for i in range(streams)]
    n = clients.processes
    rounds = args.rounds + args.paced_rounds
    payloads = [StreamsClient(host, int(port), mine[i::n], rounds) for i in range(n)]
    window = args.connect_seconds + rounds * args.interval + 10
    running = asyncio.ensure_future(clients.samples(streams_client, payloads, window))
    deadline = time.monotonic() + args.connect_seconds + 5  # +5: the clients' start
    while (opened := await open_streams(gateway)) < streams:
        if running.done():
            await running  # a client's error, raised here
        if running.done() or time.monotonic() > deadline:
            running.cancel()
            raise SystemExit(f"only {opened} of {streams} streams opened")
        await asyncio.sleep(0.5)
    nc = await bus.connect(nats_url, name="bench-publisher")
    js = nc.jetstream()
    try:
        for round_ in range(rounds):
            began = time.monotonic()
            # A burst (every user's event back to back, the worst case: each reaches
            # all of its user's streams at once), then paced rounds (the same events
            # spread evenly over the interval, as independent users' events arrive).
            gap = args.interval / users_here if round_ >= args.rounds else 0.0
            for k, user in enumerate(users[:users_here]):
                stamp = time.time_ns() // 1000
                env = envelope("wallet.changed", WalletChanged(user_id=user, balance=stamp))
                env.user_id = user
                await publish_envelope(js, env)
                if gap:
                    await asyncio.sleep(max(0.0, began + (k + 1) * gap - time.monotonic()))
            await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - began)))
        rss = rss_bytes(gateway_pid)
    finally:
        await nc.close()
    samples = await running
    per_stream = [stream for s in samples for stream in s.records]
    burst = [x for stream in per_stream for x in stream[: args.rounds]]
    paced = [x for stream in per_stream for x in stream[args.rounds :]]
    if len(burst) < 2 or len(paced) < 2:
        raise SystemExit(f"{len(burst)} + {len(paced)} events delivered to {streams} streams")
    cuts = statistics.quantiles(burst, n=100)
    paced_cuts = statistics.quantiles(paced, n=100)
    busy = [s for s in samples if s.elapsed]
    share = cores_used(sum(s.cpu for s in busy), max(s.elapsed for s in busy))
    busiest = max(s.cpu / s.elapsed for s in busy)
    return Fanout(
        streams,
        cuts[49] * 1e3,
        cuts[98] * 1e3,
        paced_cuts[49] * 1e3,
        paced_cuts[98] * 1e3,
        len(burst) + len(paced),
        streams * rounds,
        rss,
        rss_bytes(gateway_pid, "VmHWM"),
        f"{share}, busiest {busiest:.0%}",
    )


async def measure(args: argparse.Namespace, root: Path) -> list[Row]:
    users = math.ceil(args.streams / args.per_user)
    env = {"KLIK_GATEWAY_SSE_MAX_PER_USER": str(args.per_user)}
    async with stack(root, users=users, services=("gateway",), env=env) as s:
        pid = s.children["gateway"].pid
        nc = await bus.connect(s.nats_url, name="bench")
        await bus.ensure_streams(nc.jetstream())
        await nc.close()
        idle = rss_bytes(pid)
        where = (s.nats_url, s.gateway, pid)
        with Clients(args.client_processes) as clients:
            base = await fanout(args, clients, where, s.users, s.tokens, args.baseline)

            async def closed() -> bool:  # the baseline's streams, on the gateway too
                return not await open_streams(s.gateway)

            await wait_for(closed, 60, interval=0.2, message="the baseline's streams closed")
            full = await fanout(args, clients, where, s.users, s.tokens, args.streams)
    print(
        f"cpus: {os.cpu_count()}; one gateway replica (its own process), {args.per_user} "
        f"streams per user, rounds of one wallet.changed per user {args.interval} s apart: "
        f"{args.rounds} bursts (published back to back), then {args.paced_rounds} paced "
        f"(spread over the interval); clients in {args.client_processes} processes (raw "
        f"asyncio streams); gateway RSS with no stream open {idle / 2**20:.0f} MB"
    )
    for f in (base, full):
        print(
            f"{f.streams:>6} streams: fan-out, bursts p50 {f.p50_ms:6.1f} ms  p99 "
            f"{f.p99_ms:6.1f} ms; paced p50 {f.paced_p50_ms:6.1f} ms  p99 "
            f"{f.paced_p99_ms:6.1f} ms; {f.delivered} of {f.expected} delivered; "
            f"gateway RSS {f.rss / 2**20:.0f} MB "
            f"(peak {f.peak / 2**20:.0f} MB); client CPU {f.client}"
        )
    return [
        Row(
            f"/v1/events fan-out p99, {full.streams} streams, bursts (goal <= 100 ms)",
            full.p99_ms,
            "ms",
            base.p99_ms,
            f"{base.streams} streams",
            full.client,
        ),
        Row("  ... p50", full.p50_ms, "ms", base.p50_ms, f"{base.streams} streams"),
        Row(
            f"/v1/events fan-out p99, {full.streams} streams, paced",
            full.paced_p99_ms,
            "ms",
            base.paced_p99_ms,
            f"{base.streams} streams",
        ),
        Row("  ... p50", full.paced_p50_ms, "ms", base.paced_p50_ms, f"{base.streams} streams"),
        Row(
            f"  ... gateway RSS, {full.streams} streams open (goal <= 400 MB)",
            full.rss / 2**20,
            "MB",
            base.rss / 2**20,
            f"{base.streams} streams",
        ),
    ]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.events_fanout")
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--baseline", type=int, default=100, help="streams of the baseline")
    parser.add_argument("--per-user", type=int, default=50, help="streams each user holds")
    parser.add_argument("--rounds", type=int, default=10, help="burst rounds")
    parser.add_argument("--paced-rounds", type=int, default=10, help="paced rounds, after")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between rounds")
    parser.add_argument(
        "--connect-seconds", type=float, default=120.0, help="the most opening may take"
    )
    parser.add_argument("--client-processes", type=int, default=2)
    return parser.parse_args(argv)


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return in_tmp(measure, parse(argv), "bench-events-")


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
