"""Job summaries for the operators' dashboard: jobs per day by status and by kind,
and each provider's recent error rate. Read-only, one read transaction (GROUP BY
in the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kit import daily
from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from services.generation import store
from services.generation.domain import Kind, Status

# What "recent" means for a provider's error rate.
RECENT = timedelta(hours=24)
STATUSES = tuple(s.value for s in Status if s not in (Status.PENDING, Status.ABANDONED))
KINDS = tuple(kind.value for kind in Kind)


@dataclass(frozen=True)
class JobsDay:
    day: date
    by_status: dict[str, int]
    by_kind: dict[str, int]

    @property
    def jobs(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class ProviderErrors:
    provider: str
    jobs: int  # ended in the last RECENT
    failed: int

    @property
    def error_rate(self) -> float:
        return self.failed / self.jobs if self.jobs else 0.0


class JobsSummary:
    def __init__(self, uow: UnitOfWork, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    async def summary(
        self, days: int, providers: tuple[str, ...] = ()
    ) -> tuple[list[JobsDay], list[ProviderErrors]]:
        """Jobs per day of the window (INVALID_DAYS), and the error rate of every
        provider in `providers` or with a job ended in the last RECENT, by name."""
        now = self._clock()
        window = daily.window(days, now)

        async def read(
            session: AsyncSession,
        ) -> tuple[list[tuple[str, str, str, int]], list[tuple[str, str, int]]]:
            return (
                await store.jobs_per_day(session, window.start),
                await store.ended_by_provider(session, now - RECENT),
            )

        per_day, ended = await self._uow.run_read(read)
        by_status = daily.pivot(window, ((d, status, n) for d, status, _, n in per_day), STATUSES)
        by_kind = daily.pivot(window, ((d, kind, n) for d, _, kind, n in per_day), KINDS)
        days_out = [
            JobsDay(day, statuses, kinds)
            for (day, statuses), (_, kinds) in zip(by_status, by_kind, strict=True)
        ]
        counts: dict[str, list[int]] = {name: [0, 0] for name in providers}
        for provider, status, n in ended:
            entry = counts.setdefault(provider, [0, 0])
            entry[0] += n
            if status == Status.FAILED.value:
                entry[1] += n
        errors = [
            ProviderErrors(name, jobs, failed) for name, (jobs, failed) in sorted(counts.items())
        ]
        return days_out, errors
