"""The workers of one replica: each claims a job from the shared queue, works on it
while renewing its lease, and claims the next.

A worker that is cancelled leaves its job exactly as it was: RUNNING. If the
replica dies, another worker resumes the job once its lease has expired; if the
replica drains, it ends its leases once its workers have stopped (service.py), and
another replica resumes the job at once. Cancelling a job (CancelJob) stops the
local worker on it at once; a worker on another replica notices at its next lease
renewal, and its finishing transition could not have applied anyway (the job is no
longer active)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Coroutine
from typing import Any

from services.generation.domain import Failure, Job, Status
from services.generation.jobs import Jobs
from services.generation.queue import JobQueue
from services.generation.runner import JobFailed, Runner
from services.generation.settings import JobSettings

log = logging.getLogger(__name__)


def replica_id() -> str:
    """Names this replica (its workers lease as `<replica>/<n>`): host, process and a
    random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Workers:
    def __init__(self, jobs: Jobs, queue: JobQueue, runner: Runner, settings: JobSettings) -> None:
        self.jobs = jobs
        self.queue = queue
        self.runner = runner
        self.settings = settings
        # Each worker leases under its own name (`<replica>/<n>`): a job one worker lost
        # (its renewals failed until the lease ran out) and another took over must not
        # still look like the first one's, even in the same process.
        self.replica = replica_id()
        self._running: dict[str, asyncio.Task[None]] = {}

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        """One coroutine per worker, for ServiceSpec.background."""
        return [self.loop(f"{self.replica}/{n}") for n in range(self.settings.workers)]

    def stop(self, job_id: str) -> None:
        """The job was cancelled: stop working on it here, if it is here."""
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()

    async def loop(self, owner: str) -> None:
        while True:
            try:
                job = await self.queue.claim(owner)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot claim a job")
                job = None
                await asyncio.sleep(self.settings.poll_seconds)
            if job is None:
                await self.queue.wait(self.settings.poll_seconds)
                continue
            # There may be more: let an idle worker look.
            self.queue.ring()
            await self.work(job, owner)

    async def work(self, job: Job, owner: str) -> None:
        """Process one claimed job, renewing `owner`'s lease meanwhile."""
        task = asyncio.create_task(self._process(job, owner), name=f"job-{job.id}")
        self._running[job.id] = task
        renewing = asyncio.create_task(self._renew(job.id, owner, task))
        try:
            await asyncio.wait([task])
        finally:
            # Reached by cancellation too: the job's task must not outlive its worker.
            renewing.cancel()
            task.cancel()
            if self._running.get(job.id) is task:
                del self._running[job.id]
        if not task.cancelled() and (error := task.exception()) is not None:
            # A bug or the database: the lease runs out and the job is tried again,
            # at most `max_attempts` times.
            log.error("job failed unexpectedly", exc_info=error, extra={"job_id": job.id})

    async def _renew(self, job_id: str, owner: str, task: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            try:
                kept = await self.queue.renew(job_id, owner)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot renew a lease", extra={"job_id": job_id})
                continue
            if not kept:
                # Cancelled, or another worker took over: a late result is discarded.
                task.cancel()
                return

    async def _process(self, job: Job, owner: str) -> None:
        if job.attempts > self.settings.max_attempts:
            await self.jobs.fail(
                job, owner, Failure.INTERNAL, "the job could not be run; it was not charged"
            )
            return
        resumed = job.status is Status.RUNNING
        if not resumed:
            if not self.jobs.can_start(job):
                await self.jobs.fail(
                    job,
                    owner,
                    Failure.HOLD_EXPIRED,
                    "the job waited in the queue too long to finish before its hold expires",
                )
                return
            running = await self.jobs.start_running(job, owner)
            if running is None:
                return
            job = running
        owned = job

        async def record_started(provider_job_id: str) -> bool:
            return await self.jobs.record_provider_job(owned, owner, provider_job_id)

        try:
            outcome = await self.runner.run(job, resumed=resumed, record_started=record_started)
        except JobFailed as failure:
            await self.jobs.fail(job, owner, failure.code, failure.message)
            return
        if outcome is not None:
            await self.jobs.succeed(job, owner, outcome.result, outcome.cost)
