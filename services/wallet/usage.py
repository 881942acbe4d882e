"""Usage summaries: a user's own credits spent per day, and every wallet's money per
day for the operators' dashboard. Read-only, answered from the ledger and the
payments in one read transaction each (GROUP BY day in the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from kit import daily
from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from services.wallet import store
from services.wallet.domain import Kind


@dataclass(frozen=True)
class UsageDay:
    day: date
    by_kind: dict[str, int]  # generation kind → credits spent

    @property
    def credits(self) -> int:
        return sum(self.by_kind.values())


@dataclass(frozen=True)
class SummaryDay:
    day: date
    spent_by_kind: dict[str, int]
    revenue: dict[str, int]  # currency → amount in minor units
    granted: int
    purchased: int


class Usage:
    def __init__(self, uow: UnitOfWork, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    async def of_user(self, user_id: str, days: int, group_by: str = "") -> list[UsageDay]:
        """GetUsage: `user_id`'s spending per day (INVALID_DAYS, INVALID_GROUP_BY)."""
        daily.group_by_day(group_by)
        window = daily.window(days, self._clock())
        rows = await self._uow.run_read(
            lambda session: store.spent_per_day(session, window.start, user_id)
        )
        return [UsageDay(day, kinds) for day, kinds in daily.pivot(window, rows)]

    async def summary(self, days: int) -> list[SummaryDay]:
        """GetWalletSummary: every wallet's spending, revenue and credits in per day."""
        window = daily.window(days, self._clock())
        credited = (Kind.GRANT.value, Kind.PURCHASE.value)

        async def read(session: AsyncSession) -> tuple[daily.Rows, daily.Rows, daily.Rows]:
            return (
                await store.spent_per_day(session, window.start),
                await store.revenue_per_day(session, window.start),
                await store.credited_per_day(session, window.start, credited),
            )

        spent, revenue, credits = await self._uow.run_read(read)
        by_day = zip(
            daily.pivot(window, spent),
            daily.pivot(window, revenue),
            daily.pivot(window, credits, credited),
            strict=True,
        )
        return [
            SummaryDay(
                day,
                spent_by_kind,
                money,
                granted=credit[Kind.GRANT.value],
                purchased=credit[Kind.PURCHASE.value],
            )
            for (day, spent_by_kind), (_, money), (_, credit) in by_day
        ]
