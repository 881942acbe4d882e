"""How many slow media jobs one generation replica keeps in flight, and whether TEXT
jobs still go through at their usual speed meanwhile: prints figures, asserts
nothing.

    .venv/bin/python -m bench.media_inflight [--media 1000] [--seconds 30]
        [--text-jobs 30] [--per-user 16]

The real processes (bench/stack.py: nats-server, sandbox, wallet, ONE generation
replica at its default settings; PostgreSQL at $KLIK_TEST_DATABASE_URL, SQLite when
unreachable). In one run:
  1. the baseline: one client process, one client, `--text-jobs` TEXT jobs one
     after the other (CreateJob over gRPC -> its `generation.job.succeeded` event,
     bench.generation_jobs' client), with nothing else running;
  2. `--media` IMAGE jobs created (32 CreateJob calls at a time, `--per-user` jobs
     per user: KLIK_JOBS_PER_USER's default, so the per-user cap does not hold them
     back), each made slow by the sandbox: `[[fault:polls=N]]`, N the polls the
     replica's default poll schedule (1 s, x1.5, at most 10 s) makes last
     `--seconds`;
  3. once they are all created, or as soon as the first of them ends, the same
     TEXT client again.
The replica's in-flight count is read from its database (IMAGE jobs QUEUED or
RUNNING, every 0.5 s), and is printed at its peak and at its lowest while the TEXT
jobs ran (if media jobs finished before the TEXT jobs did, that lowest count says
so). Then the media jobs are waited for: how many succeeded, and their time,
created -> finished. Printed: the TEXT p50 under media load beside the TEXT p50
without (the goal: within 2x), and the in-flight figures (the goal: >= 1,000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import grpc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import Clients, Load, Row, combine, in_tmp, table
from bench.generation_jobs import JobClient, job_client
from bench.stack import stack
from kit import db
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from services.generation.providers.backoff import PollSchedule
from tests.databases import backend
from tests.helpers import wait_for

CREATING = 32  # CreateJob calls at once
SAMPLE_SECONDS = 0.5


def polls_for(seconds: float, schedule: PollSchedule | None = None) -> tuple[int, float]:
    """The sandbox's `polls=N` that makes a job last at least `seconds` under the
    replica's poll schedule (the first poll at once, then its waits), and how long
    that is."""
    schedule = schedule or PollSchedule()
    polls, spent = 1, 0.0
    while spent < seconds:
        spent += schedule.delay(polls)
        polls += 1
    return polls, spent


async def in_flight(engine: AsyncEngine) -> int:
    """IMAGE jobs QUEUED or RUNNING (accepted and not finished)."""
    async with engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                "SELECT count(*) FROM jobs WHERE kind = 'IMAGE' AND status IN ('QUEUED', 'RUNNING')"
            )
        )
        return int(found.scalar_one())


async def measure(args: argparse.Namespace, root: Path) -> list[Row]:
    polls, lasting = polls_for(args.seconds)
    media_users = math.ceil(args.media / args.per_user)
    services = ("sandbox", "wallet", "generation")
    async with stack(root, users=media_users + 1, services=services) as s:
        engine = db.make_engine(s.generation_database)
        text_token, media_tokens = s.tokens[-1], s.tokens[:-1]

        with Clients(1) as clients:

            async def text(first: int) -> Load:
                payload = JobClient(
                    s.generation, s.nats_url, "TEXT", [text_token], first, 1, args.text_jobs, 1
                )
                return combine(await clients.samples(job_client, [payload], 0.0))

            await text(10**6)  # warm up: connections, caches
            alone = await text(0)

            counts: list[tuple[float, int]] = []
            sampling = True

            async def sample() -> None:
                while sampling:
                    counts.append((time.monotonic(), await in_flight(engine)))
                    await asyncio.sleep(SAMPLE_SECONDS)

            sampler = asyncio.create_task(sample())
            creating = asyncio.create_task(create_media(args, s.generation, media_tokens, polls))

            # TEXT under media load: once every media job is in, or as soon as the
            # first of them ends (they would only get fewer from then on).
            async def loaded_enough() -> bool:
                return creating.done() or bool(await finished_media(engine))

            await wait_for(loaded_enough, 3600, interval=SAMPLE_SECONDS)
            began = time.monotonic()
            loaded = await text(args.text_jobs)
            ended = time.monotonic()
            created = await creating
            sampling = False
            await sampler
        during = [n for at, n in counts if began <= at <= ended] or [await in_flight(engine)]
        peak = max(n for _, n in counts)
        finished = await drain(engine, args.seconds * 4 + 60)
        await engine.dispose()
    succeeded = [seconds for status, seconds in finished if status == "SUCCEEDED"]
    print(
        f"cpus: {os.cpu_count()}; database: {backend().describe()}; one generation replica "
        f"(default settings); media: {args.media} IMAGE jobs, sandbox polls={polls} "
        f"(~{lasting:.0f} s on the default poll schedule), {args.per_user} per user, "
        f"created in {created:.1f} s ({args.media / created:,.1f}/s); TEXT: one client, "
        f"{args.text_jobs} jobs each run, its process's CPU {alone.client} / {loaded.client}"
    )
    print(
        f"media in flight: peak {peak}; while the TEXT jobs ran, {during[0]} at first, "
        f"{during[-1]} at last, lowest {min(during)}; "
        f"{len(succeeded)} of {args.media} succeeded"
        + (f", created -> finished p50 {statistics.median(succeeded):.1f} s" if succeeded else "")
    )
    print(alone.line("TEXT, one client, no media load"))
    print(loaded.line(f"TEXT, one client, {during[0]}->{during[-1]} media"))
    return [
        Row(
            f"media jobs in flight, one replica, ~{lasting:.0f} s each (before: 4; goal >= 1,000)",
            peak,
            "jobs",
            client=loaded.client,
        ),
        Row(
            f"  ... TEXT one-client p50, {during[0]}->{during[-1]} media in flight (goal <= 2x)",
            loaded.p50_ms,
            "ms",
            alone.p50_ms,
            "TEXT p50, no media load",
        ),
    ]


async def create_media(
    args: argparse.Namespace, address: str, tokens: Sequence[str], polls: int
) -> float:
    """Create the media jobs; the seconds it took."""
    began = time.monotonic()
    jobs = iter(range(args.media))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)

        async def creator() -> None:
            for i in jobs:
                prompt = f"bench media {i} {uuid.uuid4().hex} [[fault:polls={polls}]]"
                await stub.CreateJob(
                    generation_pb2.CreateJobRequest(
                        kind="IMAGE", prompt=prompt, idempotency_key=prompt
                    ),
                    metadata=(("authorization", f"Bearer {tokens[i // args.per_user]}"),),
                    timeout=60,
                )

        await asyncio.gather(*(creator() for _ in range(CREATING)))
    return time.monotonic() - began


async def finished_media(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                "SELECT count(*) FROM jobs WHERE kind = 'IMAGE' "
                "AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')"
            )
        )
        return int(found.scalar_one())


async def drain(engine: AsyncEngine, within: float) -> list[tuple[str, float]]:
    """Until no media job is in flight (or `within` seconds): each one's status and
    seconds from created to last updated."""

    async def drained() -> bool:
        return not await in_flight(engine)

    with contextlib.suppress(AssertionError):  # what did not finish is counted below
        await wait_for(drained, within, interval=1.0)
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT status, created_at, updated_at FROM jobs WHERE kind = 'IMAGE'")
        )
        return [(status, seconds(made, updated)) for status, made, updated in rows]


def seconds(made: datetime | str, updated: datetime | str) -> float:
    """PostgreSQL gives datetimes, SQLite (through a text query) their ISO text."""
    if isinstance(made, str) and isinstance(updated, str):
        made, updated = datetime.fromisoformat(made), datetime.fromisoformat(updated)
    assert isinstance(made, datetime) and isinstance(updated, datetime)
    return (updated - made).total_seconds()


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.media_inflight")
    parser.add_argument("--media", type=int, default=1000, help="IMAGE jobs put in flight")
    parser.add_argument("--seconds", type=float, default=30.0, help="each media job's length")
    parser.add_argument("--text-jobs", type=int, default=30, help="TEXT jobs per measurement")
    parser.add_argument("--per-user", type=int, default=16, help="media jobs per user")
    return parser.parse_args(argv)


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return in_tmp(measure, parse(argv), "bench-media-")


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
