"""Failure drills (issue 17, item 9), run with the suite: the wallet process killed
with SIGKILL while generation is under load, and a provider that hangs.

The wallet runs as a real subprocess (`python -m services.wallet`) on the test's
wallet database, with a broker of its own (it needs no events here), and
generation reaches it there; the in-process wallet of the jobs stack opens the
users' wallets and reads the money back."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from klik.generation.v1 import generation_pb2
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from services.generation import store
from tests.generation.jobs.conftest import TERMINAL, JobsStack, MakeJobsStack
from tests.helpers import ROOT, free_port, wait_for
from tests.integration.test_drill_bus import broker  # noqa: F401  (a fixture)
from tests.natsserver import NatsServer
from tests.tokens import JwksServer, Metadata
from tests.wallet.support import books

USERS = 4
CALLS = 32  # IMAGE jobs of 5 credits: 8 a user, within the bonus of 100
CONCURRENCY = 8
KILL_AT = 8  # answered calls before the wallet is killed
FAST = 5.0  # seconds: a call while the wallet is down answers within this


class WalletProcess:
    """`python -m services.wallet` on a fixed port, killed and restarted at will."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = int(env["KLIK_WALLET_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.wallet"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def serving(self, who: Metadata) -> None:
        """Wait until it answers a user's GetWallet."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = wallet_pb2_grpc.WalletServiceStub(channel)

            async def answers() -> bool:
                assert self.process is not None and self.process.poll() is None, (
                    self.log.read_text()[-3000:]
                )
                try:
                    await stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=who, timeout=2)
                except grpc.aio.AioRpcError:
                    return False
                return True

            await wait_for(answers, 60, interval=0.1, message="the wallet process serves")


@pytest.fixture
def wallet_process(
    database_url: str,
    broker: NatsServer,  # noqa: F811  (the fixture)
    jwks: JwksServer,
    tmp_path: Path,
) -> Iterator[WalletProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
    env.update(
        KLIK_WALLET_PORT=str(free_port()),
        KLIK_WALLET_METRICS_PORT="0",
        KLIK_WALLET_DATABASE_URL=database_url,
        KLIK_NATS_URL=broker.url,
        KLIK_AUTH_PORT=str(jwks.port),
        # The identities the jobs stack's wallet fixture wrote (generation's among them).
        KLIK_SERVICE_KEYS_DIR=str(tmp_path / "keys"),
        KLIK_GRACE_SECONDS="1",
        KLIK_LOG_LEVEL="WARNING",
    )
    process = WalletProcess(env, tmp_path / "wallet.log")
    yield process
    process.stop()


@pytest.mark.drill
@pytest.mark.slow  # a subprocess
async def test_the_wallet_killed_under_load_answers_503_fast_and_recovers(
    make_jobs_stack: MakeJobsStack, wallet_process: WalletProcess
) -> None:
    stack = await make_jobs_stack(
        deadline=20.0, wallet_addr=f"127.0.0.1:{wallet_process.port}", max_in_flight=8
    )
    users = [await stack.user() for _ in range(USERS)]
    wallet_process.start()
    await wallet_process.serving(users[0][1])

    answered = 0
    outcomes: Counter[str] = Counter()
    down_latencies: list[float] = []
    refused: list[int] = []  # calls told UNAVAILABLE, retried afterwards
    killed = asyncio.Event()

    async def create(n: int) -> generation_pb2.Job:
        _, who = users[n % USERS]
        return await stack.create(
            who,
            kind="IMAGE",
            prompt=f"drill picture {n}",
            options=generation_pb2.JobOptions(width=64, height=64),
            idempotency_key=f"drill-{n}",
        )

    slots = asyncio.Semaphore(CONCURRENCY)

    async def call(n: int) -> None:
        nonlocal answered
        async with slots:
            began, during_outage = time.monotonic(), killed.is_set()
            try:
                await create(n)
                outcomes["created"] += 1
            except grpc.aio.AioRpcError as error:
                outcomes[error.code().name] += 1
                if error.code() is grpc.StatusCode.UNAVAILABLE:
                    refused.append(n)
            finally:
                if during_outage:
                    down_latencies.append(time.monotonic() - began)
                answered += 1

    async def killer() -> None:
        await wait_for(lambda: answered >= KILL_AT, 60, message=f"{KILL_AT} answered")
        wallet_process.kill()
        killed.set()

    await asyncio.gather(killer(), *(call(n) for n in range(CALLS)))
    assert set(outcomes) <= {"created", "UNAVAILABLE"}, outcomes  # never INTERNAL, no hang
    assert outcomes["created"] >= KILL_AT and outcomes["UNAVAILABLE"] >= 1, outcomes
    assert down_latencies and max(down_latencies) < FAST, down_latencies

    # Restarted: every refused call, retried with its key, makes its one job.
    wallet_process.start()
    await wallet_process.serving(users[0][1])

    async def retried(n: int) -> bool:
        try:
            await create(n)
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE, error
            return False
        return True

    for n in refused:
        await wait_for(functools.partial(retried, n), 30, message=f"call {n} retried")

    # Every job finishes, each charged once; nothing held, nothing half-written.
    async def all_finished() -> list[generation_pb2.Job] | None:
        jobs = []
        for _, who in users:
            listed = await stack.stub().ListJobs(
                generation_pb2.ListJobsRequest(page_size=100), metadata=who, timeout=10
            )
            jobs.extend(listed.jobs)
        done = len(jobs) == CALLS and all(job.status in TERMINAL for job in jobs)
        return jobs if done else None

    jobs = await wait_for(all_finished, 60, message="every job finished")
    assert jobs is not None
    assert Counter(job.status for job in jobs) == {"SUCCEEDED": CALLS}
    for user_id, _ in users:
        mine = [job for job in jobs if job.user_id == user_id]
        spent = sum(job.cost_credits for job in mine)
        await stack.settled(user_id, 100 - spent)
        assert sorted(await stack.charges(user_id)) == sorted(-job.cost_credits for job in mine)

    async def no_pending() -> bool:
        async with stack.engine.connect() as conn:
            statuses = (await conn.execute(store.jobs.select())).all()
        return {row.status for row in statuses} == {"SUCCEEDED"}

    await wait_for(no_pending, 20, message="no creation left half-done")
    assert await stack.rows() == CALLS
    report = await books(stack.wallet.engine, [user_id for user_id, _ in users])
    assert report.violations == []  # the wallet's ledger balances
    assert all(held == 0 for held in report.held.values())


@pytest.mark.drill
async def test_a_hanging_provider_fails_its_jobs_by_their_deadline_and_releases_the_holds(
    make_jobs_stack: MakeJobsStack,
) -> None:
    deadline = 2.0
    stack: JobsStack = await make_jobs_stack(deadline=deadline)
    # Every poll of an image hangs; replies stall after their first tokens.
    await stack.sandbox.fault("hang", "/api/rest/v1/generations/")
    user_id, who = await stack.user()
    began = time.monotonic()
    jobs = [await stack.create(who, kind="IMAGE", prompt=f"never ready {n}") for n in range(3)] + [
        await stack.create(who, kind="TEXT", prompt="a b c d e f g h [[fault:stall=2]]")
    ]
    assert (await stack.money(user_id))[1] > 0, "held while they run"

    done = [await stack.finished(who, job.id, within=deadline + 10) for job in jobs]
    elapsed = time.monotonic() - began
    assert [job.status for job in done] == ["FAILED"] * 4
    assert {job.error.code for job in done[:3]} == {"PROVIDER_TIMEOUT"}, [j.error for j in done]
    # The stalled reply: interrupted, its text so far charged.
    assert done[3].error.code == "STREAM_INTERRUPTED", done[3].error
    assert elapsed < deadline + 6, f"failed by the deadline, not after {elapsed:.1f} s"
    await stack.settled(user_id, 100 - done[3].cost_credits)
    assert await stack.charges(user_id) == [-done[3].cost_credits], "the images' holds released"
