"""How many generation jobs per second go end to end, and what the job machinery adds
to the provider's own time: prints figures, asserts nothing.

    .venv/bin/python -m bench.generation_jobs [--jobs 1000] [--concurrency 32]
        [--workers 16] [--users 50] [--kind TEXT] [--client-processes 2]
        [--sweep 1,4,16,32 [--sweep-jobs 40]]

Everything real, like the tests: a nats-server, the wallet service (its own
process) and one generation replica (this process's event loop) over real gRPC, each
with its own database on the PostgreSQL at $KLIK_TEST_DATABASE_URL (SQLite when
unreachable), and the provider sandbox over real HTTP with no injected latency.
`--concurrency` clients, spread over `--client-processes` client processes (their
CPU share printed), each create a job (CreateJob, over gRPC, with a user token)
and wait for its `generation.job.succeeded` event (a core NATS subscription on the
subject the outbox relay publishes to), then create the next. Each job is: a
PENDING row, a wallet PlaceHold, QUEUED + event, a worker's claim, RUNNING +
event, the provider call(s), SUCCEEDED + event, a wallet CaptureHold, and the
relay publishing three events.

Printed: jobs per second (CreateJob sent -> succeeded event received); that
end-to-end latency p50/p99; the provider's own time per job (measured around the
adapter calls inside the worker: the chat completion for TEXT; start + polls for
IMAGE, whose sandbox jobs complete on their second poll); and the added latency,
end-to-end minus the job's own provider time, p50/p99. With `--sweep`, the same
again at each client count, and a PNG chart of latency (p50, p99) against the
load achieved, in bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import uvicorn
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.msg import Msg

from bench.chart import write_chart
from bench.common import Clients, Row, Sample, combine, levels, table
from kit import bus, db
from kit.assets import AssetSettings
from kit.config import ServiceSettings
from kit.server import Server
from klik.events.v1.envelope_pb2 import Envelope
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from sandbox.app import create_app
from sandbox.serving import Sandbox
from services.generation.providers.backoff import PollSchedule
from services.generation.providers.registry import Providers
from services.generation.service import make_spec as generation_spec
from services.generation.settings import (
    GenerationSettings,
    JobSettings,
    ProviderPolicy,
    catalogue_from_env,
)
from services.wallet.events import open_wallet
from services.wallet.service import MIGRATIONS as WALLET_MIGRATIONS
from services.wallet.service import make_spec as wallet_spec
from tests.databases import Databases, backend
from tests.helpers import free_port, wait_for
from tests.natsserver import NatsServer, nats_server_binary
from tests.tokens import TokenAuthority, service_identities

FUNDS = 10**12


class Timed:
    """Wraps a provider adapter: the time each job spends in its provider calls,
    keyed by the job's prompt (unique per job here)."""

    def __init__(self, adapter: Any, spent: dict[str, float]) -> None:
        self._adapter = adapter
        self._spent = spent
        self._prompts: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    async def complete(self, request: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._adapter.complete(request, **kwargs)
        finally:
            self._add(request.prompt, time.perf_counter() - started)

    async def start(self, request: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await self._adapter.start(request, **kwargs)
            self._prompts[result.job_id] = request.prompt
            return result
        finally:
            self._add(request.prompt, time.perf_counter() - started)

    async def wait(self, job_id: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._adapter.wait(job_id, **kwargs)
        finally:
            self._add(self._prompts.get(job_id, job_id), time.perf_counter() - started)

    def _add(self, prompt: str, seconds: float) -> None:
        self._spent[prompt] = self._spent.get(prompt, 0.0) + seconds


async def serving_health(address: str, within: float = 60.0) -> None:
    """Until the gRPC server at `address` says SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def serving() -> bool:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        await wait_for(serving, within, interval=0.1, message=f"{address} serving")


async def funded_wallets(databases: Databases, users: Sequence[str]) -> str:
    """A fresh wallet database (its URL) where every one of `users` holds FUNDS."""
    url = databases.create()
    engine = db.make_engine(url)
    await db.migrate(engine, WALLET_MIGRATIONS)
    async with db.session_factory(engine)() as session, session.begin():
        for user_id in users:
            await open_wallet(session, user_id, FUNDS)
    await engine.dispose()
    return url


def quantiles_ms(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


class JobClient(NamedTuple):
    """What one client process is given: its share of the jobs and of the clients."""

    address: str
    nats_url: str
    kind: str
    tokens: list[str]
    first: int  # its jobs are first, first + step, ... (`jobs` of them)
    step: int
    jobs: int
    concurrency: int


def job_client(payload: JobClient, start_at: float, seconds: float) -> Sample:
    """One client process: `concurrency` clients, each creating a job (CreateJob with
    a user token) and waiting for its terminal event, then the next. Records
    (prompt, job id, sent, terminal event received) in time.time()."""
    p = payload

    async def go() -> Sample:
        nc = await bus.connect(p.nats_url, name="bench-client")
        arrived: dict[str, float] = {}
        waiting: dict[str, asyncio.Future[float]] = {}

        async def on_event(message: Msg) -> None:
            job_id = Envelope.FromString(message.data).aggregate_id
            now = time.time()
            future = waiting.pop(job_id, None)
            if future is None:
                arrived[job_id] = now
            elif not future.done():
                future.set_result(now)

        for outcome in ("generation.job.succeeded", "generation.job.failed"):
            await nc.subscribe(bus.event_subject(outcome), cb=on_event)
        channel = grpc.aio.insecure_channel(p.address)
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        loop = asyncio.get_running_loop()
        sample = Sample()
        counter = iter(range(p.first, p.first + p.step * p.jobs, p.step))

        async def one(i: int) -> None:
            prompt = f"bench job {i} {uuid.uuid4().hex}"
            started = time.time()
            reply = await stub.CreateJob(
                generation_pb2.CreateJobRequest(kind=p.kind, prompt=prompt, idempotency_key=prompt),
                metadata=(("authorization", f"Bearer {p.tokens[i % len(p.tokens)]}"),),
                timeout=30,
            )
            job_id = reply.job.id
            if job_id in arrived:
                finished = arrived.pop(job_id)
            else:
                future: asyncio.Future[float] = loop.create_future()
                waiting[job_id] = future
                finished = await asyncio.wait_for(future, 60)
            sample.latencies.append(finished - started)
            sample.records.append((prompt, job_id, started, finished))

        async def client() -> None:
            for i in counter:
                await one(i)

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu, began = time.process_time(), time.monotonic()
        await asyncio.gather(*(client() for _ in range(p.concurrency)))
        sample.cpu, sample.elapsed = time.process_time() - cpu, time.monotonic() - began
        await channel.close()
        await nc.close()
        return sample

    return asyncio.run(go())


async def run(args: argparse.Namespace, root: Path) -> list[Row]:
    nats = NatsServer(nats_server_binary(), free_port(), root / "nats", root / "nats.log")
    nats.start()
    databases = Databases(root)
    servers: list[Server] = []
    wallet_process: asyncio.subprocess.Process | None = None
    sandbox_server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    try:
        authority = TokenAuthority()
        keys = root / "keys"
        service_identities(keys, "wallet", "generation")
        async with authority.serve() as jwks:
            # The sandbox, with no latency injected.
            sandbox_port = free_port()
            sandbox_server = uvicorn.Server(
                uvicorn.Config(
                    create_app(Sandbox()),
                    host="127.0.0.1",
                    port=sandbox_port,
                    log_config=None,
                    log_level="warning",
                )
            )
            serving = asyncio.create_task(sandbox_server.serve())
            await wait_for(lambda: sandbox_server.started, message="sandbox started")

            # The wallet, with funded wallets.
            users = [str(uuid.uuid4()) for _ in range(args.users)]
            wallet_url = await funded_wallets(databases, users)
            wallet_port = free_port()
            env = {
                "KLIK_AUTH_PORT": str(jwks.port),
                "KLIK_SERVICE_KEYS_DIR": str(keys),
                "KLIK_WALLET_ADDR": f"127.0.0.1:{wallet_port}",
                "KLIK_LOG_LEVEL": "WARNING",
            }
            wallet_settings = dataclasses.replace(
                ServiceSettings.from_env("wallet", env=env),
                port=wallet_port,
                metrics_port=0,
                database_url=wallet_url,
                nats_url=nats.url,
            )
            if args.wallet_process:
                wallet_process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "services.wallet",
                    env={
                        **os.environ,
                        **env,
                        "KLIK_WALLET_PORT": str(wallet_port),
                        "KLIK_WALLET_METRICS_PORT": "0",
                        "KLIK_WALLET_DATABASE_URL": wallet_url,
                        "KLIK_NATS_URL": nats.url,
                    },
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                await serving_health(f"127.0.0.1:{wallet_port}")
            else:
                servers.append(Server(wallet_spec(), wallet_settings))

            # One generation replica, its adapters timed.
            settings = GenerationSettings(
                catalogue_from_env({"KLIK_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}"}),
                policy=ProviderPolicy(
                    polling=PollSchedule(initial_seconds=0.01, factor=1.0, max_seconds=0.01)
                ),
                jobs=JobSettings(workers=args.workers),
            )
            providers = Providers(settings.catalogue, settings.policy)
            spent: dict[str, float] = {}
            adapters: dict[str, Any] = (
                providers._text if args.kind in ("TEXT", "CHAT") else providers._images
            )
            adapters["sandbox"] = Timed(adapters["sandbox"], spent)
            generation_settings = dataclasses.replace(
                ServiceSettings.from_env("generation", env=env),
                port=0,
                metrics_port=0,
                database_url=databases.create(),
                nats_url=nats.url,
            )
            assets = AssetSettings.from_env({"KLIK_ASSET_DIR": str(root / "assets")})
            servers.append(
                Server(generation_spec(settings, providers, assets), generation_settings)
            )
            for server in servers:
                await server.start()
            await asyncio.gather(*(asyncio.wait_for(s.ready.wait(), 60) for s in servers))
            generation = servers[-1]

            # The job events' commit times, for the breakdown (the clients, in their
            # own processes, wait for their jobs' terminal events themselves).
            nc = await bus.connect(nats.url, name="bench")
            stages: dict[str, dict[str, float]] = {}

            async def on_event(message: Msg) -> None:
                envelope = Envelope.FromString(message.data)
                stages.setdefault(envelope.aggregate_id, {})[envelope.type] = (
                    envelope.occurred_at.ToNanoseconds() / 1e9
                )

            await nc.subscribe("klik.events.generation.job.>", cb=on_event)
            tokens = [authority.access_token(user_id, lifetime=3600) for user_id in users]
            address = f"127.0.0.1:{generation.port}"

            async def drive(
                clients: Clients, total: int, base: int, concurrency: int
            ) -> list[Sample]:
                # Processes beyond the client count get no client and no job.
                n = min(clients.processes, concurrency)
                payloads = [
                    JobClient(
                        address,
                        nats.url,
                        args.kind,
                        tokens,
                        base + i,
                        n,
                        len(range(i, total, n)) if i < n else 0,
                        len(range(i, concurrency, n)) if i < n else 0,
                    )
                    for i in range(clients.processes)
                ]
                return await clients.samples(job_client, payloads, 0.0)

            sweep: list[tuple[int, float, float, float]] = []  # clients, jobs/s, p50, p99
            with Clients(args.client_processes) as clients:
                # Warm pools and caches.
                await drive(clients, min(100, args.jobs), args.jobs, args.concurrency)
                samples = await drive(clients, args.jobs, 0, args.concurrency)
                base = 2 * args.jobs
                for level in args.sweep:
                    count = max(args.sweep_jobs, level * 4)
                    swept = await drive(clients, count, base, level)
                    base += count
                    records = [r for sample in swept for r in sample.records]
                    latencies = [end - began for _, _, began, end in records]
                    span = max(e for *_, e in records) - min(b for _, _, b, _ in records)
                    s50, s99 = quantiles_ms(latencies)
                    sweep.append((level, len(records) / span, s50, s99))
                    print(
                        f"sweep: {level} clients: {len(records) / span:,.1f} jobs/s, "
                        f"p50 {s50:.1f} ms, p99 {s99:.1f} ms",
                        flush=True,
                    )
            await nc.close()
            if sweep:
                print(
                    write_chart(
                        OUT / f"generation_{args.kind.lower()}_latency.png",
                        {
                            "p50 ms": [(rate, p50) for _, rate, p50, _ in sweep],
                            "p99 ms": [(rate, p99) for _, rate, _, p99 in sweep],
                        },
                    )
                    + f"; x: jobs/s achieved (offered by {', '.join(str(c) for c, *_ in sweep)}"
                    " closed-loop clients), y: CreateJob -> succeeded event, ms"
                )

        client = combine(samples)
        records = [record for sample in samples for record in sample.records]
        created: dict[str, float] = {job_id: began for _, job_id, began, _ in records}
        received: dict[str, float] = {job_id: end for _, job_id, _, end in records}
        results = [(end - began, spent.get(prompt, 0.0)) for prompt, _, began, end in records]
        elapsed = max(received.values()) - min(created.values())

        def finished_at(job_id: str) -> float:
            return received.get(job_id, 0.0)

        end_to_end = [e for e, _ in results]
        provider = [p for _, p in results]
        added = [e - p for e, p in results]
        e50, e99 = quantiles_ms(end_to_end)
        p50, p99 = quantiles_ms(provider)
        a50, a99 = quantiles_ms(added)
        print(
            f"cpus: {os.cpu_count()}; database: {backend().describe()}; kind {args.kind}; "
            f"{args.jobs} jobs, {args.concurrency} clients, {args.workers} workers, "
            f"one generation replica (with the sandbox in this process), the clients in "
            f"{args.client_processes} processes (client CPU {client.client}), "
            f"the wallet {'in its own process' if args.wallet_process else 'in this process'}"
        )
        rate = args.jobs / elapsed
        print(f"jobs per second, CreateJob -> succeeded event: {rate:,.1f}")
        print(f"end-to-end latency         p50 {e50:8.1f} ms  p99 {e99:8.1f} ms")
        print(f"provider's own time        p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
        print(f"added by the job machinery p50 {a50:8.1f} ms  p99 {a99:8.1f} ms")
        print("where the time goes, p50 (commit times of the job's events):")
        steps = (
            ("CreateJob sent -> QUEUED committed", "", "generation.job.queued"),
            ("QUEUED -> RUNNING (queue wait)", "generation.job.queued", "generation.job.running"),
            ("RUNNING -> SUCCEEDED (worker)", "generation.job.running", "generation.job.succeeded"),
            ("SUCCEEDED -> event received", "generation.job.succeeded", "received"),
        )
        for label, begin, end in steps:
            spans = []
            for job_id, times in stages.items():
                times = {**times, "": created.get(job_id, 0.0), "received": finished_at(job_id)}
                if times.get(begin) and times.get(end):
                    spans.append(times[end] - times[begin])
            if len(spans) > 1:
                print(f"  {label:<40} {statistics.median(spans) * 1000:8.1f} ms")
        before = BEFORE.get((args.kind, args.concurrency))
        label = f" (before: {before})" if before else ""
        if args.concurrency == 1:
            goal = GOAL_ONE_CLIENT.get(args.kind, "")
            return [
                Row(
                    f"generation {args.kind}, one client, end-to-end p50{label}{goal}",
                    e50,
                    "ms",
                    p50,
                    "provider's own p50",
                    client.client,
                ),
                Row("  ... p99", e99, "ms", p99, "provider's own p99"),
            ]
        return [
            Row(
                f"generation {args.kind} jobs end to end, {args.concurrency} clients{label}"
                " (goal >= 60)",
                rate,
                "jobs/s",
                client=client.client,
            ),
            Row("  ... end-to-end p50", e50, "ms", p50, "provider's own p50"),
        ]
    finally:
        for server in reversed(servers):
            await server.shutdown()
        if wallet_process is not None and wallet_process.returncode is None:
            wallet_process.terminate()
            await wallet_process.wait()
        if sandbox_server is not None and serving is not None:
            sandbox_server.should_exit = True
            await asyncio.wait_for(serving, 10)
        databases.drop_all()
        nats.stop()


# The figures (issue 12) before waiting stopped holding workers: jobs/s at
# 32 clients, end-to-end p50 for one client.
BEFORE = {
    ("TEXT", 32): "8 jobs/s",
    ("IMAGE", 32): "2.7 jobs/s",
    ("TEXT", 1): "125 ms p50",
    ("IMAGE", 1): "1,200 ms p50",
}
GOAL_ONE_CLIENT = {"TEXT": " (goal <= 25 ms)", "IMAGE": " (goal <= 50 ms)"}
OUT = Path(__file__).parent / "out"
# What `make bench` runs (rows() with no arguments): the four figures, and
# the latency-against-load chart of each kind.
DEFAULT_RUNS: tuple[tuple[str, ...], ...] = (
    ("--kind", "TEXT", "--sweep", "1,4,16,32"),
    ("--kind", "IMAGE", "--jobs", "300", "--sweep", "1,4,16,32"),
    ("--kind", "TEXT", "--concurrency", "1", "--jobs", "100"),
    ("--kind", "IMAGE", "--concurrency", "1", "--jobs", "100"),
)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.generation_jobs")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--kind", choices=("TEXT", "CHAT", "IMAGE"), default="TEXT")
    parser.add_argument(
        "--sweep",
        type=levels,
        default=[],
        help="client counts (e.g. 1,4,16,32) to run after the main run: latency against "
        "offered load, charted to bench/out/generation_<kind>_latency.png",
    )
    parser.add_argument("--sweep-jobs", type=int, default=40, help="jobs per sweep level")
    parser.add_argument(
        "--wallet-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the wallet as its own process (python -m services.wallet), as deployed",
    )
    return parser.parse_args(argv)


def rows(argv: Sequence[str] = ()) -> list[Row]:
    """The figures of `argv`'s run; with none, of every run in DEFAULT_RUNS."""
    found: list[Row] = []
    for each in [argv] if argv else DEFAULT_RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            found += asyncio.run(run(parse(each), Path(tmp)))
    return found


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
