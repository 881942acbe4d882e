"""The job queue that every replica's workers share: the `jobs` table itself.

Why a database queue rather than a JetStream work queue: a job's state and its
place in the queue are the same row, so queuing a job is the same transaction that
stores it QUEUED and records `generation.job.queued` in the outbox — there is no
second system to write to, and so no window where the job exists but is not
queued (or the reverse). Claiming, finishing and cancelling are conditional updates
of that one row, which is also what makes a cancel and a finish exclude each other.
The cost is polling, which is cheap at generation's rates (jobs take seconds to
minutes on the provider) and mostly avoided: in-process, a new job rings a bell
that wakes one idle worker at once; the poll every `poll_seconds` is the safety net
for jobs queued by other replicas and for leases that expired.

A claim takes a lease: `lease_owner` and `lease_expires_at`. The worker renews it
while it works; a worker that dies stops renewing, and once the lease has expired
any replica's worker claims the job again and resumes it (runner.py). On PostgreSQL
the claim selects with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on several
replicas each take a different row without waiting on one another. SQLite (the
single-process embedded default) has no SKIP LOCKED and needs none: every
transaction there holds the database write lock from BEGIN IMMEDIATE, so claims
are serialised anyway."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import UnitOfWork, is_postgres
from services.generation import store
from services.generation.domain import Job


class Claimed(NamedTuple):
    job: Job  # as `then` left it
    started: bool  # `then` started it (QUEUED -> RUNNING) in the claim's transaction
    more: bool  # another job was claimable too


async def _as_claimed(_session: AsyncSession, job: Job) -> tuple[Job, bool]:
    return job, False


class JobQueue:
    def __init__(self, uow: UnitOfWork, lease_seconds: float) -> None:
        self.uow = uow
        self.lease = timedelta(seconds=lease_seconds)
        # Idle workers, each waiting on its own future: a ring wakes ONE of them (a
        # shared event would send every idle worker to the database for one job).
        self._idle: deque[asyncio.Future[None]] = deque()
        self._rung = False

    def ring(self) -> None:
        """A job was queued (or more may be claimable): wake one idle worker now, or
        if none is idle, the next one that would wait."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._rung = True

    @property
    def idle(self) -> bool:
        """A worker waits for the bell: at its last look nothing was claimable, and
        no job was queued since (a ring would have woken it)."""
        return not self._rung and any(not waiter.done() for waiter in self._idle)

    async def wait(self, at_most: float) -> None:
        """Until rung, or `at_most` seconds (the safety-net poll)."""
        if self._rung:
            self._rung = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=at_most)
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._idle.remove(waiter)

    async def claim(
        self,
        owner: str,
        *,
        skip_providers: Iterable[str] = (),
        skip_users: Iterable[str] = (),
        then: Callable[[AsyncSession, Job], Awaitable[tuple[Job, bool]]] = _as_claimed,
    ) -> Claimed | None:
        """Lease the next claimable job to `owner` (interactive kinds first, then the
        oldest; none on `skip_providers` or of `skip_users`), and run `then` on it in
        the same transaction (it returns the job and whether it started it: one
        commit where there were two); None when there is none.

        Two candidates are read, so the claim also says whether more are waiting:
        the worker wakes another loop only then (waking one on every claim sent a
        loop to the database for nothing after each job). On PostgreSQL the second
        is locked until this commit, so another replica's claim skips it meanwhile;
        this replica's next loop takes it at once."""
        now = datetime.now(UTC)
        async with self.uow.write() as session:
            query = store.claimable(
                now, skip_providers=skip_providers, skip_users=skip_users
            ).limit(2)
            if is_postgres(session.get_bind()):  # type: ignore[arg-type]
                query = query.with_for_update(skip_locked=True)
            found = list((await session.execute(query)).scalars())
            if not found:
                return None
            leased = await store.lease(session, found[0], owner, now + self.lease)
            if leased is None:
                return None
            job, started = await then(session, leased)
            return Claimed(job, started, len(found) > 1)

    async def release(self, replica: str) -> int:
        """Hand the jobs of `replica`'s workers back to the queue (it drains and its
        workers have stopped): another replica resumes them now rather than when the
        leases run out. Returns how many."""
        async with self.uow.write() as session:
            return await store.release_leases(session, replica, datetime.now(UTC))

    async def renew(self, job_id: str, owner: str) -> bool:
        """Extend `owner`'s lease; False when the job is no longer its to work on
        (finished, cancelled, or claimed by another after the lease ran out)."""
        now = datetime.now(UTC)
        async with self.uow.write() as session:
            return await store.renew(session, job_id, owner, now + self.lease)

    async def renew_all(self, leases: Mapping[str, str]) -> set[str]:
        """Extend every lease in `leases` (job id -> owner) in one statement; the
        ids whose lease was kept."""
        now = datetime.now(UTC)
        async with self.uow.write() as session:
            return await store.renew_all(session, leases, now + self.lease)
