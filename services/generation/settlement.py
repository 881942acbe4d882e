"""Settlement: the wallet's side of a job, done after the transaction that decided it.

A finished job's status names its money action (`settlement`: capture or release);
`settle` does it, keyed by the job id, right after the job finished, and the settler
(`settle_due`, run by background.py) repeats it for the jobs whose settlement did not
get through until the wallet confirms. The reaper (`reap`) undoes job creations
interrupted before the job was queued (jobs.py, steps 1-3): the hold they may have
placed is released and the row deleted. Every step is safe to repeat, in any
replica."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from kit.db import UnitOfWork
from kit.errors import DomainError, PermissionDenied
from services.generation import store
from services.generation.domain import Job, Settlement, Status
from services.generation.settings import JobSettings
from services.generation.wallet_client import Holds, WalletUnavailable

log = logging.getLogger(__name__)


class Settler:
    def __init__(self, uow: UnitOfWork, settings: JobSettings, holds: Holds) -> None:
        self.uow = uow
        self.settings = settings
        self.holds = holds

    async def settle(self, job: Job) -> None:
        """Capture or release the finished job's hold, as its status chose. Safe to
        repeat; left for the settler when the wallet cannot be reached."""
        if job.settlement not in (Settlement.CAPTURE, Settlement.RELEASE):
            return
        outcome = Settlement.DONE
        try:
            if job.settlement is Settlement.CAPTURE:
                await self.holds.capture(job, job.cost_credits)
            else:
                await self.holds.release(job)
        except (WalletUnavailable, PermissionDenied) as error:
            # PermissionDenied: the wallet did not recognise our identity (keys being
            # rotated, a misconfiguration) — about the caller, not the hold; repeat.
            log.warning("hold left to settle later", extra={"job_id": job.id, "why": error.reason})
            return
        except DomainError as error:
            # Only if the hold expired before the job finished (or a bug): the wallet
            # will not do it, and repeating cannot change that.
            log.error(
                "hold could not be settled",
                extra={"job_id": job.id, "settlement": job.settlement, "reason": error.reason},
            )
            outcome = Settlement.LOST
        async with self.uow.write() as session:
            await store.mark_settled(session, job.id, job.settlement, outcome)

    async def settle_due(self, limit: int = 100) -> int:
        """The settler: holds of finished jobs still to capture or release."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.sweep_seconds)
        async with self.uow.read() as session:
            due = await store.unsettled(session, cutoff, limit)
        for job in due:
            await self.settle(job)
        return len(due)

    async def reap(self, limit: int = 100) -> int:
        """The reaper: abandon PENDING rows nobody finished in time. The hold is
        placed again with the same key and request — which returns the hold if the
        first attempt placed one (and places one, briefly, if it did not) — and
        released; then the row is deleted. A refusal means nothing is held."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.pending_timeout_seconds)
        async with self.uow.read() as session:
            stale = await store.stale_internal(session, cutoff, limit)
        undone = 0
        for job in stale:
            async with self.uow.write() as session:
                abandoned = await store.transition(
                    session,
                    job.id,
                    expect=[Status.PENDING, Status.ABANDONED],
                    status=Status.ABANDONED,
                )
            if abandoned is None:
                continue
            try:
                hold_id = await self.holds.place(job)
                await self.holds.release(job, hold_id)
            except (WalletUnavailable, PermissionDenied):
                continue  # next sweep: the row stays ABANDONED until the wallet answers
            except DomainError as error:
                log.info(
                    "abandoned job held nothing", extra={"job_id": job.id, "why": error.reason}
                )
            async with self.uow.write() as session:
                await store.delete_internal(session, job.id)
            undone += 1
        return undone
