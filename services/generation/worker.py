"""The workers of one replica: claim loops that take jobs from the shared queue and
start each in a task of its own, its lease renewed while it runs (all of the
replica's leases in one statement).

A worker that is cancelled leaves its job exactly as it was: RUNNING. If the
replica dies, another worker resumes the job once its lease has expired; if the
replica drains, it ends its leases once its workers have stopped (service.py), and
another replica resumes the job at once. Cancelling a job (CancelJob) stops the
local worker on it at once; a worker on another replica notices at its next lease
renewal, and its finishing transition could not have applied anyway (the job is no
longer active)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from kit.bus import unsubscribe_quietly
from services.generation.domain import Failure, Job, Status
from services.generation.jobs import Jobs
from services.generation.progress import ReplySaver, StreamProgress
from services.generation.queue import JobQueue
from services.generation.runner import JobFailed, Runner, StartLookupFailed
from services.generation.settings import JobSettings
from services.generation.streams import JobStreams

log = logging.getLogger(__name__)


def replica_id() -> str:
    """Names this replica (its workers lease as `<replica>/<n>`): host, process and a
    random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Workers:
    """The replica's claim loops and the jobs they started.

    A claim loop only claims: each claimed job runs in a task of its own, so a job
    waiting for its provider (a poll interval, a render of minutes) holds no loop,
    only its task's timer on the event loop. How many jobs are in flight is bounded
    by `max_in_flight` (memory), the per-provider limits and the per-user cap: a
    loop claims no job of a provider or user at its limit (store.claimable), and
    interactive kinds are claimed before media, so a user's hundred videos never
    hold up anyone's chat reply. A resumed job is claimed and waits the same way."""

    def __init__(
        self,
        jobs: Jobs,
        queue: JobQueue,
        runner: Runner,
        settings: JobSettings,
        streams: JobStreams,
    ) -> None:
        self.jobs = jobs
        self.queue = queue
        self.runner = runner
        self.settings = settings
        self.streams = streams
        # Each claim leases under its own name (`<replica>/<n>`): a job one claim lost
        # (its renewals failed until the lease ran out) and another took over must not
        # still look like the first one's, even in the same process.
        self.replica = replica_id()
        self._claims = itertools.count()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._replies: dict[str, StreamProgress] = {}  # the TEXT/CHAT jobs streaming here
        self._saver = ReplySaver(jobs.save_partial_texts, settings.stream_save_seconds)
        self._leases: dict[str, str] = {}  # job id -> owner, of the jobs in flight here
        self._by_provider: Counter[str] = Counter()
        self._by_user: Counter[str] = Counter()
        self._room = asyncio.Event()  # set when a job in flight finished
        self._reserved = 0  # places held for jobs being started as they are queued
        self._adopted: set[asyncio.Task[None]] = set()  # those jobs, once started
        self._renewer: asyncio.Task[None] | None = None

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        """One coroutine per claim loop, and the listener for cancel requests and
        provider callbacks, for ServiceSpec.background."""
        claims = [self.loop() for _ in range(self.settings.workers)]
        return [*claims, self.listen()] if claims else []

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def stop(self, job_id: str) -> None:
        """The job was cancelled: stop working on it here, if it is here."""
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()

    def cancel_reply(self, job_id: str) -> None:
        """CancelJob asks a streaming job to stop: if it streams here, close its
        stream and end it with the text so far (charged)."""
        progress = self._replies.get(job_id)
        if progress is not None:
            progress.cancel.set()

    async def listen(self) -> None:
        """Hear every replica's cancel requests (CancelJob on a streaming job) and
        provider callbacks (they wake the polls of their jobs here) until cancelled."""
        subscriptions = [
            await self.streams.cancel_requests(self.cancel_reply),
            await self.streams.wakes(self.runner.providers.wakeups.wake),
        ]
        try:
            await asyncio.Event().wait()
        finally:
            for subscription in subscriptions:
                if subscription is not None:
                    await unsubscribe_quietly(subscription, "cancel requests and wakes")

    def _full(self) -> tuple[list[str], list[str]] | None:
        """The providers and users at their limit here, or None when this replica
        has no room for another job at all."""
        if len(self._running) + self._reserved >= self.settings.max_in_flight:
            return None
        limits = self.settings.provider_in_flight
        providers = [p for p, n in self._by_provider.items() if n >= limits.get(p, n + 1)]
        users = [u for u, n in self._by_user.items() if n >= self.settings.per_user]
        return providers, users

    def _limited(self, job: Job) -> bool:
        """Whether the job's provider or user is at its limit here."""
        limit = self.settings.provider_in_flight.get(job.provider)
        return self._by_user[job.user_id] >= self.settings.per_user or (
            limit is not None and self._by_provider[job.provider] >= limit
        )

    async def loop(self) -> None:
        """Claim jobs and start each in its own task, until cancelled; then stop the
        jobs it started (they stay RUNNING, for a resume)."""
        mine: set[asyncio.Task[None]] = set()
        try:
            while True:
                # Cleared before looking: a job that finishes meanwhile sets it again.
                self._room.clear()
                full = self._full()
                if full is None:
                    await self._room.wait()
                    continue
                owner = f"{self.replica}/{next(self._claims)}"
                try:
                    claimed = await self.queue.claim(
                        owner, skip_providers=full[0], skip_users=full[1], then=self.jobs.start_in
                    )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("cannot claim a job")
                    claimed = None
                    await asyncio.sleep(self.settings.poll_seconds)
                if claimed is None:
                    # Nothing claimable: until a new job, a job here finishing that
                    # had its provider or user at a limit (both ring the queue's
                    # bell), or the safety-net poll.
                    await self.queue.wait(self.settings.poll_seconds)
                    continue
                if claimed.more:
                    self.queue.ring()  # let an idle loop take the next
                if claimed.started:
                    await self.jobs.started(claimed.job)
                task = self._start(claimed.job, owner, started=claimed.started)
                mine.add(task)
                task.add_done_callback(mine.discard)
        finally:
            # The loops stop together (shutdown): the first to go stops the jobs
            # started as they were queued too.
            mine |= self._adopted
            for task in mine:
                task.cancel()
            if mine:
                await asyncio.gather(*mine, return_exceptions=True)

    # ---- jobs started as they are queued (jobs.Handoff) -------------------------------

    def reserve(self, job: Job) -> str | None:
        """A place here for `job`, about to be queued, when these workers would claim
        it next anyway: a claim loop waits for the bell (at its last look nothing was
        claimable, and nothing was queued since), the replica has room, and so do the
        job's provider and user. The queueing transaction then leases and starts it
        under the owner returned; the place is held until `adopt` or `unreserve`.
        None: the job goes through the queue."""
        if not self.queue.idle or self._full() is None or self._limited(job):
            return None
        self._reserved += 1
        self._count(job, 1)
        return f"{self.replica}/{next(self._claims)}"

    def adopt(self, job: Job, owner: str) -> None:
        self._reserved -= 1
        task = self._start(job, owner, started=True, counted=True)
        self._adopted.add(task)
        task.add_done_callback(self._adopted.discard)

    def unreserve(self, job: Job) -> None:
        self._reserved -= 1
        self._count(job, -1)
        self._room.set()

    def _count(self, job: Job, change: int) -> None:
        for counts, key in ((self._by_provider, job.provider), (self._by_user, job.user_id)):
            counts[key] += change
            if counts[key] <= 0:
                del counts[key]

    def _start(
        self, job: Job, owner: str, *, started: bool, counted: bool = False
    ) -> asyncio.Task[None]:
        """Work on `job` in a task of its own; `counted`: its place is already held."""
        task = asyncio.create_task(self.work(job, owner, started=started), name=f"job-{job.id}")
        if not counted:
            self._count(job, 1)

        def done(_: asyncio.Task[None]) -> None:
            limited = self._limited(job)
            self._count(job, -1)
            # Loops waiting for room (the replica was full) look again...
            self._room.set()
            if limited:
                # ...and one idle loop, if this job's provider or user was at its
                # limit: their queued jobs are claimable again. (Waking every loop
                # on every finished job would send them all to the database.)
                self.queue.ring()

        task.add_done_callback(done)
        return task

    async def work(self, job: Job, owner: str, *, started: bool = False) -> None:
        """Process one claimed job (`started`: its claim started it), its lease
        renewed meanwhile (with every other lease of this replica, by one
        statement)."""
        task = asyncio.create_task(
            self._process(job, owner, started=started), name=f"job-{job.id}-run"
        )
        self._running[job.id] = task
        self._leases[job.id] = owner
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="job-leases")
        try:
            await asyncio.wait([task])
        finally:
            # Reached by cancellation too: the job's task must not outlive its worker.
            task.cancel()
            if self._running.get(job.id) is task:
                del self._running[job.id]
                self._leases.pop(job.id, None)
            if not self._running and self._renewer is not None:
                self._renewer.cancel()
                self._renewer = None
        if not task.cancelled() and (error := task.exception()) is not None:
            # A bug or the database: the lease runs out and the job is tried again,
            # at most `max_attempts` times.
            log.error("job failed unexpectedly", exc_info=error, extra={"job_id": job.id})

    async def _renew(self) -> None:
        """Every third of a lease, extend the leases of all jobs in flight here; a
        job whose lease was not kept (cancelled, or taken over) is stopped."""
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            leases = dict(self._leases)
            try:
                kept = await self.queue.renew_all(leases)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot renew the leases", extra={"jobs": len(leases)})
                continue
            for job_id, owner in leases.items():
                if job_id not in kept and self._leases.get(job_id) == owner:
                    # Cancelled, or another worker took over: a late result is discarded.
                    self.stop(job_id)

    async def _process(self, job: Job, owner: str, *, started: bool) -> None:
        if job.attempts > self.settings.max_attempts:
            await self.jobs.fail(
                job, owner, Failure.INTERNAL, "the job could not be run; it was not charged"
            )
            return
        resumed = job.status is Status.RUNNING and not started
        if job.status is Status.QUEUED:
            # Its claim did not start it: the hold would expire before its deadline.
            await self.jobs.fail(
                job,
                owner,
                Failure.HOLD_EXPIRED,
                "the job waited in the queue too long to finish before its hold expires",
            )
            return
        owned = job

        jobs = self.jobs

        class Starts:
            async def intent(self) -> bool:
                return await jobs.record_start_intent(owned, owner)

            async def started(self, provider_job_id: str) -> bool:
                return await jobs.record_provider_job(owned, owner, provider_job_id)

            async def unclaimed(self, provider_job_ids: list[str]) -> str | None:
                return await jobs.unclaimed(owned, provider_job_ids)

        async def record_served(provider: str, model: str) -> bool:
            return await self.jobs.record_served(owned, owner, provider, model)

        progress = None
        if job.kind.is_text:
            progress = StreamProgress(job.id, owner, self.streams, self._saver)
            self._replies[job.id] = progress
        try:
            outcome = await self.runner.run(
                job,
                resumed=resumed,
                starts=Starts(),
                progress=progress,
                record_served=record_served,
            )
        except StartLookupFailed as error:
            # No verdict: the job stays RUNNING, and its next claim looks it up again.
            log.warning(str(error), extra={"job_id": job.id, "attempts": job.attempts})
            return
        except JobFailed as failure:
            partial = failure.partial
            await self.jobs.fail(
                job,
                owner,
                failure.code,
                failure.message,
                result=None if partial is None else partial.result,
                cost=0 if partial is None else partial.cost,
            )
            return
        finally:
            if progress is not None:
                await progress.close()
                self._replies.pop(job.id, None)
        if outcome is None:
            return
        if outcome.cancelled:
            await self.jobs.end_cancelled(job, owner, outcome.result, outcome.cost)
        else:
            await self.jobs.succeed(job, owner, outcome.result, outcome.cost)
