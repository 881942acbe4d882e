"""Job links: where a generation job meets what it was started for (see
`services.content.job_links`): one row per CHAT/TEXT job, written by whichever side
comes first (the RPC that learnt the job id, or the event that carries its outcome)
and completed by the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.store.tables import job_links, upsert_insert


@dataclass(frozen=True)
class JobLink:
    job_id: str
    target_kind: str | None
    target_id: str | None
    outcome: str | None
    text: str
    error: str
    applied: bool

    @property
    def ready(self) -> bool:
        """Both halves are known and the outcome is not yet applied."""
        return self.target_kind is not None and self.outcome is not None and not self.applied


def _link(row: Row[Any]) -> JobLink:
    return JobLink(
        row.job_id, row.target_kind, row.target_id, row.outcome, row.text, row.error, row.applied
    )


async def link_target(
    session: AsyncSession, job_id: str, kind: str, target_id: str, now: datetime
) -> JobLink:
    """Record what the job was started for; returns the row as it now is, with the
    outcome if the job's event got here first. The upsert waits on (and then sees) a
    concurrent event transaction writing the same row, so one of the two always
    sees both halves."""
    statement = upsert_insert(session)(job_links).values(
        job_id=job_id,
        target_kind=kind,
        target_id=target_id,
        outcome=None,
        text="",
        error="",
        applied=False,
        updated_at=now,
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id"],
                set_={"target_kind": kind, "target_id": target_id, "updated_at": now},
            ).returning(*job_links.c)
        )
    ).one()
    return _link(row)


async def link_outcome(
    session: AsyncSession, job_id: str, outcome: str, text: str, error: str, now: datetime
) -> JobLink:
    """Record how the job ended; returns the row with its target if one is known.
    A job ends once, so a repeated outcome writes the same values again."""
    statement = upsert_insert(session)(job_links).values(
        job_id=job_id,
        target_kind=None,
        target_id=None,
        outcome=outcome,
        text=text,
        error=error,
        applied=False,
        updated_at=now,
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id"],
                set_={
                    "outcome": statement.excluded.outcome,
                    "text": statement.excluded.text,
                    "error": statement.excluded.error,
                    "updated_at": now,
                },
            ).returning(*job_links.c)
        )
    ).one()
    return _link(row)


async def mark_applied(session: AsyncSession, job_id: str) -> None:
    await session.execute(
        update(job_links).where(job_links.c.job_id == job_id).values(applied=True)
    )
