"""What klik adds to a streamed reply's time to first token: prints figures, asserts
nothing.

    .venv/bin/python -m bench.stream_ttft [--streams 1,200] [--seconds 10] [--words 200]
        [--rate 20] [--client-processes 2] [--workers N]

The real stack, each piece its own process (bench/stack.py: nats-server, sandbox,
wallet, one generation replica, the gateway; PostgreSQL at $KLIK_TEST_DATABASE_URL,
SQLite when unreachable). At each stream count, `--client-processes` client
processes (httpx, their CPU share printed) keep that many streams going, closed
loop, each stream a user of its own:
  - through klik in one request: `POST /v1/generations:stream` (kind TEXT; the job
    and its reply as Server-Sent Events) read to its end; the time to first token
    is from just before the POST to the first text received (a `delta`);
  - through klik in two: `POST /v1/generations`, then
    `GET /v1/generations/{job_id}:watch` read to its end, timed the same way (the
    first text may come as a `snapshot` when the reply had begun before the watch
    was open: counted, and printed);
  - the baseline, the same prompt and model straight from the sandbox:
    `POST /v1/chat/completions` with `"stream": true`, to the first content chunk.
Rounds of the three alternate, so a neighbour's load falls on all alike. Printed:
time to first token p50/p99 of each and what klik adds (klik's minus the direct
call's, at the same stream count: the sandbox's own time to first token is the
direct call's); the goal is on the one-request route, the one a streaming client
uses. The prompt carries `[[fault:rate=N]]`: the sandbox streams one
chunk per word, N a second after the first (which it sends at once). At one stream
the reply is the sandbox's usual ~25 words (a second or so: many samples); beyond
it, `--words` (200, a usual chat answer: ten seconds at 20 a second), so that 200
streams are 200 replies streaming at once, 20 new a second, and not 200 new jobs a
second, which would measure the job rate (bench.generation_jobs does) rather than
what a stream's first token waits for; those streams start spread over one reply's
length (a ramp), then each starts the next when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import httpx

from bench.common import Clients, Row, Sample, cores_used, in_tmp, levels, table
from bench.stack import stack
from tests.databases import backend

ROUNDS = 2


TARGETS = ("direct", "klik", "klik-watch")


class StreamClient(NamedTuple):
    target: str  # "direct", "klik" (one request: `:stream`) or "klik-watch" (two)
    base: str  # the gateway's or the sandbox's URL
    model: str  # for the direct call
    tokens: list[str]  # one per stream of this process
    rate: int
    words: int  # the reply's length; 0: the sandbox's usual short reply


async def ok(reply: httpx.Response) -> None:
    """An error status as a RuntimeError (httpx's own do not cross processes)."""
    if reply.status_code >= 400:
        body = (await reply.aread()).decode(errors="replace")[:300]
        request = reply.request
        raise RuntimeError(f"{request.method} {request.url}: {reply.status_code} {body}")


def prompt(rate: int, words: int = 0) -> str:
    length = f",words={words}" if words else ""
    return f"bench ttft {uuid.uuid4().hex} [[fault:rate={rate}{length}]]"


async def klik_stream(
    client: httpx.AsyncClient, token: str, rate: int, words: int = 0, *, watch: bool = False
) -> tuple[float, bool]:
    """(seconds to the first text, whether it came as a snapshot); `watch`: create,
    then watch (two requests), rather than `:stream` (one)."""
    headers = {"Authorization": f"Bearer {token}"}
    text = prompt(rate, words)
    body = {"kind": "TEXT", "prompt": text, "idempotency_key": text}
    began = time.monotonic()
    if watch:
        reply = await client.post("/v1/generations", json=body, headers=headers)
        await ok(reply)
        job_id = reply.json()["id"]
        request = client.stream("GET", f"/v1/generations/{job_id}:watch", headers=headers)
    else:
        job_id = "(created by :stream)"
        request = client.stream("POST", "/v1/generations:stream", json=body, headers=headers)
    first: float | None = None
    snapshot = False
    event = ""
    async with request as stream:
        await ok(stream)
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and first is None:
                if event == "delta" or (event == "snapshot" and json.loads(line[6:]).get("text")):
                    first, snapshot = time.monotonic() - began, event == "snapshot"
            elif line.startswith("data: ") and event == "error":
                raise RuntimeError(f"the watch ended in an error: {line}")
    if first is None:
        raise RuntimeError(f"job {job_id}: its stream ended with no text")
    return first, snapshot


async def direct_stream(
    client: httpx.AsyncClient, model: str, rate: int, words: int = 0
) -> tuple[float, bool]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt(rate, words)}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    began = time.monotonic()
    first: float | None = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        await ok(reply)
        async for line in reply.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.monotonic() - began
    if first is None:
        raise RuntimeError("a direct stream ended with no text")
    return first, False


def stream_client(payload: StreamClient, start_at: float, seconds: float) -> Sample:
    """One client process: a stream per token, each the next as soon as one ends.
    Records, per stream, whether its first text came as a snapshot."""
    p = payload

    async def go() -> Sample:
        limits = httpx.Limits(max_connections=2 * len(p.tokens) + 4)
        timeout = httpx.Timeout(60.0)
        async with httpx.AsyncClient(base_url=p.base, limits=limits, timeout=timeout) as client:
            sample = Sample()
            # Long replies: the streams start spread over one reply's length (a ramp,
            # as users do not all press enter in the same millisecond), so the job
            # rate is streams / reply length from the start, not a burst of all.
            ramp = p.words / p.rate if p.words else 0.0
            stop = start_at + ramp + seconds

            async def worker(index: int, token: str) -> None:
                await asyncio.sleep(ramp * index / len(p.tokens))
                while time.monotonic() < stop:
                    try:
                        if p.target != "direct":
                            first, snapshot = await klik_stream(
                                client, token, p.rate, p.words, watch=p.target == "klik-watch"
                            )
                        else:
                            first, snapshot = await direct_stream(client, p.model, p.rate, p.words)
                    except (RuntimeError, httpx.HTTPError) as error:
                        # Counted and shown, not fatal: past what the machine holds,
                        # how many streams fail is the figure.
                        sample.records.append(str(error)[:200])
                        continue
                    sample.latencies.append(first)
                    sample.records.append(snapshot)

            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            cpu, began = time.process_time(), time.monotonic()
            await asyncio.gather(*(worker(i, token) for i, token in enumerate(p.tokens)))
            sample.cpu, sample.elapsed = time.process_time() - cpu, time.monotonic() - began
            return sample

    return asyncio.run(go())


class Figure(NamedTuple):
    p50_ms: float
    p99_ms: float
    streams: int
    snapshots: int
    failed: int
    first_failure: str
    client: str


def figure(samples: Sequence[Sample]) -> Figure:
    latencies = [x for sample in samples for x in sample.latencies]
    if len(latencies) < 2:
        raise SystemExit(f"only {len(latencies)} streams completed in the window")
    cuts = statistics.quantiles(latencies, n=100)
    busy = [s for s in samples if s.latencies and s.elapsed]  # processes given streams
    wall = max(s.elapsed for s in busy)
    share = cores_used(sum(s.cpu for s in busy), wall)
    busiest = max(s.cpu / s.elapsed for s in busy)
    records = [record for s in samples for record in s.records]
    failures = [record for record in records if isinstance(record, str)]
    return Figure(
        cuts[49] * 1e3,
        cuts[98] * 1e3,
        len(latencies),
        sum(1 for record in records if record is True),
        len(failures),
        failures[0] if failures else "",
        f"{share}, busiest {busiest:.0%}",
    )


async def measure(args: argparse.Namespace, root: Path) -> list[Row]:
    users = max(args.streams)
    env = {"KLIK_GATEWAY_STREAM_MAX_PER_USER": "100"}
    if args.workers:
        env["KLIK_GENERATION_WORKERS"] = str(args.workers)
    async with stack(root, users=users, env=env) as s:
        # One job first: warms every connection and cache, and names the model.
        async with httpx.AsyncClient(base_url=s.gateway, timeout=60) as client:
            await klik_stream(client, s.tokens[0], args.rate)
            await klik_stream(client, s.tokens[0], args.rate, watch=True)
            text = prompt(args.rate)
            reply = await client.post(
                "/v1/generations",
                json={"kind": "TEXT", "prompt": text, "idempotency_key": text},
                headers={"Authorization": f"Bearer {s.tokens[0]}"},
            )
            reply.raise_for_status()
            model = reply.json()["model"]
        results: dict[tuple[int, str], list[Sample]] = {}
        with Clients(args.client_processes) as clients:
            for streams in args.streams:
                n = min(clients.processes, streams)
                for _ in range(ROUNDS):
                    for target in TARGETS:
                        base = s.sandbox if target == "direct" else s.gateway
                        payloads = [
                            StreamClient(
                                target,
                                base,
                                model,
                                list(s.tokens[i:streams:n]) if i < n else [],
                                args.rate,
                                0 if streams == 1 else args.words,
                            )
                            for i in range(clients.processes)
                        ]
                        got = await clients.samples(stream_client, payloads, args.seconds / ROUNDS)
                        results.setdefault((streams, target), []).extend(got)
    print(
        f"cpus: {os.cpu_count()}; database: {backend().describe()}; model {model}; "
        f"sandbox rate {args.rate} tokens/s; replies of {args.words or 'the usual'} words "
        f"beyond one stream (the usual ~25 at one); {args.seconds:.0f} s per target per stream "
        f"count in {ROUNDS} alternating rounds; clients in {args.client_processes} "
        f"processes (httpx); generation workers {args.workers or 'default'}; one replica "
        "of each service, gateway and sandbox processes of their own"
    )
    out: list[Row] = []
    names = {"direct": "direct sandbox", "klik": "klik, :stream", "klik-watch": "klik, POST+watch"}
    for streams in args.streams:
        figures = {target: figure(results[(streams, target)]) for target in TARGETS}
        direct = figures["direct"]
        for target, f in figures.items():
            print(
                f"{streams:>4} streams, {names[target]:<17} time to first token p50 "
                f"{f.p50_ms:8.1f} ms  p99 {f.p99_ms:8.1f} ms  ({f.streams} streams, "
                f"client CPU {f.client})"
            )
            if f.failed:
                print(
                    f"{streams:>4} streams, {names[target]}: {f.failed} failed, "
                    f"first: {f.first_failure}"
                )
        for target in ("klik", "klik-watch"):
            f = figures[target]
            print(
                f"{streams:>4} streams, added by {names[target]:<17} p50 "
                f"{f.p50_ms - direct.p50_ms:8.1f} ms  p99 {f.p99_ms - direct.p99_ms:8.1f} ms"
                f"  ({f.snapshots} of {f.streams} began with a snapshot)"
            )
        klik, watched = figures["klik"], figures["klik-watch"]
        tried = klik.streams + klik.failed + watched.streams + watched.failed
        goal = " (goal < 30 ms)" if streams == 1 else ""
        out += [
            Row(
                f"stream TTFT added by klik (:stream), {streams} streams, p50{goal}",
                klik.p50_ms - direct.p50_ms,
                "ms",
                direct.p50_ms,
                "direct sandbox TTFT p50",
                klik.client,
            ),
            Row(
                f"  ... p99, {streams} streams",
                klik.p99_ms - direct.p99_ms,
                "ms",
                direct.p99_ms,
                "direct p99",
            ),
            Row(
                f"  ... POST + :watch (two requests), p50, {streams} streams",
                watched.p50_ms - direct.p50_ms,
                "ms",
                direct.p50_ms,
                "direct sandbox TTFT p50",
                watched.client,
            ),
            Row(
                f"  ... streams that failed, {streams} streams",
                klik.failed + watched.failed,
                "streams",
                direct.failed,
                f"direct failures (of {tried} through klik)",
            ),
        ]
    return out


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_ttft")
    parser.add_argument("--streams", type=levels, default=[1, 200], help="e.g. 1,200")
    parser.add_argument("--seconds", type=float, default=10.0, help="per target, per count")
    parser.add_argument("--rate", type=int, default=20, help="the sandbox's tokens a second")
    parser.add_argument(
        "--words",
        type=int,
        default=200,
        help="reply length beyond one stream (0: the sandbox's short reply)",
    )
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=0, help="KLIK_GENERATION_WORKERS (0: the service's default)"
    )
    return parser.parse_args(argv)


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return in_tmp(measure, parse(argv), "bench-ttft-")


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
