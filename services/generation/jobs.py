"""The use cases of generation jobs: create, read, cancel, and the transitions
workers make. Each state change is one transaction with its event (outbox); the
wallet's hold follows the state, never the other way round.

Creating a job spans two systems (this database and the wallet), so it is done in
three steps, each safe to repeat:

1. the job row is stored PENDING (invisible to the API), unique by (user, key);
2. the hold is placed with the job id in its idempotency key, so any repeat of this
   step (a concurrent copy of the request, a client retry, the reaper) finds the
   same hold instead of placing a second;
3. PENDING -> QUEUED, with `generation.job.queued`, in one transaction. When this
   replica's workers would claim the job next anyway (a claim loop is idle: nothing
   else is claimable; and the job's user and provider have room here), the same
   transaction also leases and starts it (QUEUED -> RUNNING, both events): one
   commit instead of two, and no wait for a loop to wake and claim it (`Handoff`).

A crash between 1 and 3 leaves a PENDING row: a retry of the request finishes it;
otherwise, after `pending_timeout_seconds`, the reaper abandons it, releasing the
hold if one was placed, and deletes the row. A refusal by the wallet (no credits)
deletes the row at once: no job exists, and the key may be used again.

Finishing works the same way round: the terminal status commits first and names
the money action (`settlement`: capture or release); the action follows, keyed by
the job id, and the settler repeats it until the wallet confirms (settlement.py,
which also has the reaper). Of a worker's SUCCEEDED and a user's CANCELLED, only the
first to commit happens, so a hold is never both captured and released."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utc_now
from kit.db import UnitOfWork
from kit.errors import DomainError, InvalidArgument, Unavailable
from kit.idempotency import check_key, check_replay
from kit.paging import SeqCursor
from services.generation import metrics, store
from services.generation.catalogue import Model, Provider, require_premium
from services.generation.domain import (
    Failure,
    Job,
    Kind,
    NewJob,
    Options,
    Result,
    Settlement,
    Status,
    can_start,
    charged,
    check_listed,
    check_options,
    check_prompt,
    finished_error,
    hold_expiry,
    job_not_found,
)
from services.generation.events import job_transitioned
from services.generation.pricing import Request
from services.generation.providers.errors import ProviderError
from services.generation.providers.registry import Providers
from services.generation.replies import priced_reply
from services.generation.settings import GenerationSettings
from services.generation.settlement import Settler
from services.generation.wallet_client import Holds, WalletUnavailable

log = logging.getLogger(__name__)

LIST_JOBS = SeqCursor("generation.ListJobs")


class Handoff(Protocol):
    """This replica's workers, as the queueing step sees them (worker.Workers)."""

    def reserve(self, job: Job) -> str | None:
        """The lease owner to start `job` under now, its place held; None when the
        workers would not take it next (it goes through the queue)."""

    def adopt(self, job: Job, owner: str) -> None:
        """Work on `job`, leased to `owner` and started in its queueing commit."""

    def unreserve(self, job: Job) -> None:
        """Give back the place `reserve` held: the job was not started."""


async def _nothing(_: object) -> None:
    return None


class Jobs:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: GenerationSettings,
        providers: Providers,
        holds: Holds,
        settler: Settler,
        *,
        queued: Callable[[], None] = lambda: None,
        cancelled: Callable[[str], None] = lambda job_id: None,
        stop_reply: Callable[[str], Awaitable[None]] = _nothing,
        changed: Callable[[Job], Awaitable[None]] = _nothing,
        drop_files: Callable[[Job], Awaitable[None]] = _nothing,
    ) -> None:
        """Each use case is one transaction of `uow` per step (its commits wake the
        relay); `settler` settles a job's hold once it finished; `queued` is called
        after a job was queued (wakes workers), `cancelled` with the id of a job just
        cancelled (stops a local worker on it), `stop_reply` with the id of a
        streaming job CancelJob wants stopped (asks its worker, wherever it runs),
        `changed` with a job whose status just changed (tells its watchers),
        `drop_files` with a job of a deleted user whose result files were stored
        after the purge (removes them)."""
        self.uow = uow
        self.settings = settings
        self.providers = providers
        self.holds = holds
        self.settler = settler
        self._queued = queued
        self._cancelled = cancelled
        self._stop_reply = stop_reply
        self._changed = changed
        self._drop_files = drop_files
        # Bound late (the workers need the jobs first): see `Handoff`.
        self.handoff: Handoff | None = None

    # ---- create ---------------------------------------------------------------------

    async def create(self, user_id: str, request: NewJob, *, premium: bool = False) -> Job:
        # A first request, the common case, is priced and inserted straight away: the
        # insert itself finds a replay (the unique key), so no read goes before it.
        # A replay that `_prepare` would now refuse (its provider's circuit opened
        # since, say) still gets the job its key created.
        keyed = check_key(request.idempotency_key)
        try:
            job = await self._prepare(user_id, request, premium)
        except DomainError:
            if keyed:
                async with self.uow.read() as session:
                    existing = await store.by_key(session, user_id, request.idempotency_key)
                if existing is not None:
                    return await self._replay(existing, request.fingerprint)
            raise
        async with self.uow.write() as session:
            inserted = await store.add_pending(session, job)
            if not inserted:
                existing = await store.by_key(session, user_id, request.idempotency_key)
        if not inserted:
            if existing is None:  # inserted and deleted (refused) meanwhile: try afresh
                raise Unavailable("UNAVAILABLE", "a copy of this request just failed; retry")
            return await self._replay(existing, request.fingerprint)
        return await self._confirm(job)

    async def estimate(self, user_id: str, request: NewJob, *, premium: bool = False) -> Job:
        """The job CreateJob would create (its estimate is the hold), unsaved."""
        return await self._prepare(user_id, request, premium)

    async def _prepare(self, user_id: str, request: NewJob, premium: bool = False) -> Job:
        """Validate and price the request, in the order the proto documents;
        `premium`: the caller's role unlocks premium-only models."""
        kind = Kind.parse(request.kind)
        prompt = check_prompt(request.prompt)
        route = self.settings.catalogue.route(kind, request.provider, request.model)
        require_premium(route, premium)
        provider, model = self._first_available(route.candidates)
        options = check_options(kind, request.options)
        if kind is Kind.AVATAR_VIDEO and (options.avatar_id or options.voice_id):
            try:
                listing = await self.providers.videos(provider.name).listing()
            except ProviderError:
                # The documented refusal: retry later (nothing was held yet).
                raise Unavailable(
                    "PROVIDER_UNAVAILABLE",
                    f"{provider.name}: cannot check avatar_id and voice_id right now",
                ) from None
            check_listed("avatar_id", options.avatar_id, tuple(a.id for a in listing.avatars))
            check_listed("voice_id", options.voice_id, tuple(v.id for v in listing.voices))
        if options.input_job_id:
            await self._check_input(user_id, options)
        text = options.system_prompt + "".join(t.content for t in options.history) + prompt
        priced = Request(
            text=text,
            messages=len(options.history) + (2 if options.system_prompt else 1),
            max_tokens=options.max_tokens,
            num_images=options.num_images,
            max_video_seconds=options.max_video_seconds,
            hd=options.quality == "1080p",
        )
        # An alias holds its dearest candidate's estimate: any fallback is covered.
        estimate = max(self.settings.prices.estimate(kind, m, priced) for _, m in route.candidates)
        now = utc_now()
        return Job(
            id=_new_id(),
            seq=0,
            user_id=user_id,
            kind=kind,
            status=Status.PENDING,
            prompt=prompt,
            provider=provider.name,
            model=model.id,
            options=options,
            estimate=estimate,
            cost_credits=estimate,
            hold_id="",
            hold_expires_at=hold_expiry(
                now, self.settings.deadlines[kind], self.settings.jobs.max_queue_seconds
            ),
            created_at=now,
            updated_at=now,
            idempotency_key=request.idempotency_key,
            fingerprint=request.fingerprint,
            alias=route.alias,
        )

    def _first_available(
        self, candidates: tuple[tuple[Provider, Model], ...]
    ) -> tuple[Provider, Model]:
        """The first candidate whose circuit is not open; PROVIDER_UNAVAILABLE (no
        hold placed) when every one's is."""
        for provider, model in candidates:
            if not self.providers.is_open(provider.name):
                return provider, model
        raise self.providers.unavailable(candidates[0][0].name)

    async def _check_input(self, user_id: str, options: Options) -> None:
        """The input image must be one of the caller's own results: an image of a
        SUCCEEDED IMAGE job of theirs (INVALID_OPTIONS otherwise, never whose it is)."""
        async with self.uow.read() as session:
            source = await store.get(session, options.input_job_id)
        images = 0
        if (
            source is not None
            and source.user_id == user_id
            and source.kind is Kind.IMAGE
            and source.status is Status.SUCCEEDED
            and source.result is not None
            and source.result.asset_url
        ):
            images = max(source.result.usage.images, 1)
        if options.input_index >= images:
            raise InvalidArgument(
                "INVALID_OPTIONS",
                "input_job_id must name one of your succeeded IMAGE jobs, and input_index "
                "one of its images",
                details={"option": "input_job_id"},
            )

    async def _replay(self, job: Job, fingerprint: str) -> Job:
        check_replay(job.fingerprint, fingerprint)
        if job.status is Status.PENDING:
            return await self._confirm(job)
        if job.status is Status.ABANDONED:
            raise Unavailable(
                "UNAVAILABLE", "an earlier attempt with this key is being undone; retry shortly"
            )
        return job

    async def _confirm(self, job: Job) -> Job:
        """Steps 2 and 3: hold, then queue."""
        try:
            hold_id = await self.holds.place(job)
        except WalletUnavailable:
            raise  # the row stays PENDING: a retry finishes it, or the reaper undoes it
        except DomainError:
            # Refused (INSUFFICIENT_CREDITS, no wallet): nothing is held, no job exists.
            async with self.uow.write() as session:
                await store.delete_internal(session, job.id)
            raise
        now = utc_now()
        handoff = self.handoff if self.handoff is not None and self.can_start(job) else None
        owner = handoff.reserve(job) if handoff is not None else None
        try:
            async with self.uow.write() as session:
                if owner is None:
                    queued = await store.transition(
                        session,
                        job.id,
                        expect=[Status.PENDING],
                        status=Status.QUEUED,
                        hold_id=hold_id,
                        updated_at=now,
                    )
                    if queued is not None:
                        await job_transitioned(session, queued, None)
                else:
                    queued = await self._queue_and_start(session, job, hold_id, owner)
                current = queued or await store.get(session, job.id)
        except BaseException:
            if owner is not None and handoff is not None:
                handoff.unreserve(job)
            raise
        if owner is not None and handoff is not None:
            if queued is None:
                handoff.unreserve(job)
            else:
                metrics.JOBS.labels(job.kind.value, Status.QUEUED.value).inc()
                await self.started(queued)
                handoff.adopt(queued, owner)
                return queued
        if queued is not None:
            self._queued()
            metrics.JOBS.labels(job.kind.value, Status.QUEUED.value).inc()
            return queued
        if current is not None and current.status.public:
            return current  # a copy of the request queued it first
        # Undone under us (the reaper abandoned it, or a copy was refused): the hold
        # must not outlive the job that was never queued.
        await self._release_quietly(job, hold_id)
        raise Unavailable("UNAVAILABLE", "the job could not be created; retry")

    # ---- read -----------------------------------------------------------------------

    async def get(self, user_id: str, job_id: str) -> Job:
        async with self.uow.read() as session:
            job = await store.get(session, job_id)
        if job is None or job.user_id != user_id or not job.status.public:
            raise job_not_found(job_id)
        return job

    async def page(
        self, user_id: str, status: Status | None, token: str, size: int
    ) -> tuple[list[Job], str]:
        before = LIST_JOBS.decode(token)
        async with self.uow.read() as session:
            found = await store.page(session, user_id, status, before, size + 1)
        more = len(found) > size
        found = found[:size]
        next_token = LIST_JOBS.encode(found[-1].seq if more else None)
        return found, next_token

    # ---- cancel ---------------------------------------------------------------------

    async def cancel(self, user_id: str, job_id: str) -> Job:
        while True:
            job = await self.get(user_id, job_id)
            if job.status is Status.CANCELLED:
                return job
            if job.status.finished:
                raise finished_error(job.status)
            if job.status is Status.RUNNING and job.kind.is_text:
                stopped = await self._stop_streaming(job)
                if stopped is not None:
                    return stopped
                continue
            cancelled = await self._finish(
                job,
                None,
                Status.CANCELLED,
                settlement=Settlement.RELEASE,
                cost_credits=0,
            )
            if cancelled is not None:
                self._cancelled(job.id)
                await self.settler.settle(cancelled)
                return cancelled
            # It moved on meanwhile (started, finished): look again.

    async def _stop_streaming(self, job: Job) -> Job | None:
        """Cancel a RUNNING TEXT/CHAT job: its worker closes the stream and charges
        the text so far (`end_cancelled`); if no worker does within
        `cancel_wait_seconds` (it died), end the job here with the text last saved.
        None when the job moved on otherwise meanwhile."""
        await self._stop_reply(job.id)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.jobs.cancel_wait_seconds
        pause = 0.005
        while loop.time() < give_up:
            await asyncio.sleep(pause)  # the worker's answer is a row change: poll it
            pause = min(pause * 2, 0.1)
            current = await self.get(job.user_id, job.id)
            if current.status is Status.CANCELLED:
                return current
            if current.status.finished:
                raise finished_error(current.status)
        current = await self.get(job.user_id, job.id)
        if current.status is not Status.RUNNING:
            return None
        values: dict[str, Any] = {"settlement": Settlement.RELEASE, "cost_credits": 0}
        if current.partial_text:
            result, cost = await priced_reply(self.settings, current, current.partial_text, None)
            values = {"settlement": Settlement.CAPTURE, "cost_credits": cost, "result": result}
        cancelled = await self._finish(current, None, Status.CANCELLED, **values)
        if cancelled is not None:
            self._cancelled(job.id)
            await self.settler.settle(cancelled)
        return cancelled

    # ---- worker transitions ------------------------------------------------------------

    def can_start(self, job: Job) -> bool:
        """Whether the queued job's hold still outlives its deadline."""
        return can_start(utc_now(), self.settings.deadlines[job.kind], job.hold_expires_at)

    async def start_in(self, session: AsyncSession, job: Job) -> tuple[Job, bool]:
        """In the transaction that just leased `job` (JobQueue.claim's `then`):
        QUEUED -> RUNNING with its event, its deadline fixed from now, when its hold
        still outlives that deadline (`can_start`). Returns the job and whether it
        started; a RUNNING job (a resume, which keeps its deadline) and one that can
        no longer start (the worker fails it) are returned as they are, and so is
        one claimed too often (the worker fails it too). Call `started` once the
        transaction committed."""
        if (
            job.status is not Status.QUEUED
            or job.attempts > self.settings.jobs.max_attempts
            or not self.can_start(job)
        ):
            return job, False
        now = utc_now()
        deadline = now + timedelta(seconds=self.settings.deadlines[job.kind])
        running = await store.transition(
            session,
            job.id,
            expect=[Status.QUEUED],  # the lease, just taken, holds the row's lock
            status=Status.RUNNING,
            deadline_at=deadline,
            updated_at=now,
        )
        if running is None:
            return job, False
        await job_transitioned(session, running, Status.QUEUED)
        return running, True

    async def _queue_and_start(
        self, session: AsyncSession, job: Job, hold_id: str, owner: str
    ) -> Job | None:
        """PENDING -> RUNNING, leased to `owner`, in one statement, with the events
        of both steps (`generation.job.queued`, then `.running`): what the queueing
        commit and a claim would have written, in one transaction."""
        now = utc_now()
        running = await store.transition(
            session,
            job.id,
            expect=[Status.PENDING],
            status=Status.RUNNING,
            hold_id=hold_id,
            updated_at=now,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=self.settings.jobs.lease_seconds),
            attempts=job.attempts + 1,
            deadline_at=now + timedelta(seconds=self.settings.deadlines[job.kind]),
        )
        if running is not None:
            await job_transitioned(session, replace(running, status=Status.QUEUED), None)
            await job_transitioned(session, running, Status.QUEUED)
        return running

    async def started(self, job: Job) -> None:
        """After the commit of `start_in` that started `job`: tell its watchers."""
        await self._changed(job)
        metrics.JOBS.labels(job.kind.value, Status.RUNNING.value).inc()
        metrics.QUEUE_SECONDS.labels(job.kind.value).observe(
            (job.updated_at - job.created_at).total_seconds()
        )

    async def record_provider_job(self, job: Job, owner: str, provider_job_id: str) -> bool:
        """Store the provider's job id before polling it; False when the job is no
        longer this worker's (cancelled, or its lease lost)."""
        return await self._update_running(job, owner, provider_job_id=provider_job_id)

    async def record_start_intent(self, job: Job, owner: str) -> bool:
        """Store that this worker is about to ask the provider to start the job (the
        paid call), before it does; False when the job is no longer this worker's."""
        return await self._update_running(job, owner, start_requested_at=utc_now())

    async def unclaimed(self, job: Job, provider_job_ids: list[str]) -> str | None:
        """The first of the provider's job ids (matches of the job's reference) that
        no job stored as its own yet."""
        async with self.uow.read() as session:
            taken = await store.stored_provider_jobs(session, job.provider, provider_job_ids)
        return next((found for found in provider_job_ids if found not in taken), None)

    async def record_served(self, job: Job, owner: str, provider: str, model: str) -> bool:
        """Name the provider and model whose reply began (an alias's fallback); False
        when the job is no longer this worker's."""
        return await self._update_running(job, owner, provider=provider, model=model)

    async def _update_running(self, job: Job, owner: str, **values: Any) -> bool:
        async with self.uow.write() as session:
            stored = await store.transition(
                session, job.id, expect=[Status.RUNNING], owner=owner, **values
            )
        return stored is not None

    async def save_partial_texts(self, replies: list[tuple[str, str, str]]) -> None:
        """Save streaming jobs' replies so far, (job id, lease owner, text) each, in
        one transaction; a job no longer its owner's to run is left as it is."""
        async with self.uow.write() as session:
            await store.save_partial_texts(session, replies)

    async def end_cancelled(self, job: Job, owner: str, result: Result, cost: int) -> Job | None:
        """A streaming job stopped by CancelJob: CANCELLED, with the text so far as
        its result, and that text charged (nothing when there was none)."""
        done = await self._finish(
            job,
            owner,
            Status.CANCELLED,
            settlement=Settlement.CAPTURE if cost else Settlement.RELEASE,
            cost_credits=cost,
            result=result if result.text else None,
        )
        if done is not None:
            await self.settler.settle(done)
        return done

    async def succeed(self, job: Job, owner: str, result: Result, actual: int) -> Job | None:
        done = await self._finish(
            job,
            owner,
            Status.SUCCEEDED,
            settlement=Settlement.CAPTURE,
            cost_credits=charged(job.estimate, actual),
            result=result,
        )
        if done is not None:
            await self.settler.settle(done)
        return done

    async def fail(
        self,
        job: Job,
        owner: str | None,
        code: Failure | str,
        message: str,
        *,
        result: Result | None = None,
        cost: int = 0,
    ) -> Job | None:
        """FAILED: nothing charged, unless a reply had streamed (`result`) before
        the failure; then its text is kept and `cost` charged."""
        done = await self._finish(
            job,
            owner,
            Status.FAILED,
            settlement=Settlement.CAPTURE if cost else Settlement.RELEASE,
            cost_credits=charged(job.estimate, cost),
            result=result,
            error_code=str(code),
            error_message=message[:1000],
        )
        if done is not None:
            await self.settler.settle(done)
        return done

    async def _finish(
        self, job: Job, owner: str | None, status: Status, **values: Any
    ) -> Job | None:
        now = utc_now()
        async with self.uow.write() as session:
            done = await store.transition(
                session,
                job.id,
                expect=[job.status] if owner is None else [Status.QUEUED, Status.RUNNING],
                owner=owner,
                status=status,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                **values,
            )
            stored = None if done is None else done.result
            if done is not None and done.purged and stored is not None:
                # Its user was deleted while it ran: what it got back is not kept.
                done = await store.blank_result(session, done)
            if done is not None:
                await job_transitioned(session, done, job.status)
        if done is not None:
            if done.purged and stored is not None and stored.asset_url:
                await self._drop_files(replace(done, result=stored))
            await self._changed(done)
            metrics.JOBS.labels(job.kind.value, status.value).inc()
        return done

    # ---- steps shared by the use cases ----------------------------------------------

    async def _release_quietly(self, job: Job, hold_id: str) -> None:
        try:
            await self.holds.release(replace(job, hold_id=hold_id))
        except DomainError as error:
            log.warning(
                "could not release a stray hold", extra={"job_id": job.id, "why": error.reason}
            )


def _new_id() -> str:
    return str(uuid.uuid4())
