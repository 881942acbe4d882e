"""Job links: where a generation job meets what it was started for (see
`services.content.job_links`): one row per CHAT/TEXT job, written by whichever side
comes first (the RPC that learnt the job id, or the event that carries its outcome)
and completed by the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import dialect_insert
from services.content.store.tables import job_links


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
    return await _write_half(session, job_id, now, target_kind=kind, target_id=target_id)


async def link_outcome(
    session: AsyncSession, job_id: str, outcome: str, text: str, error: str, now: datetime
) -> JobLink:
    """Record how the job ended; returns the row with its target if one is known.
    A job ends once, so a repeated outcome writes the same values again."""
    return await _write_half(session, job_id, now, outcome=outcome, text=text, error=error)


_EMPTY = {"target_kind": None, "target_id": None, "outcome": None, "text": "", "error": ""}


async def _write_half(session: AsyncSession, job_id: str, now: datetime, **half: Any) -> JobLink:
    """Insert the link with one half, or write that half into the existing row."""
    statement = dialect_insert(session, job_links).values(
        job_id=job_id, applied=False, updated_at=now, **{**_EMPTY, **half}
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id"], set_={**half, "updated_at": now}
            ).returning(*job_links.c)
        )
    ).one()
    return _link(row)


async def mark_applied(session: AsyncSession, job_id: str) -> None:
    await session.execute(
        update(job_links).where(job_links.c.job_id == job_id).values(applied=True)
    )


async def prune_job_links(session: AsyncSession, before: datetime) -> int:
    """Forget the links last written before `before`: applied ones, outcomes of jobs
    no chat or lesson claimed, and targets whose job never reported (its hold, and
    so the job, expired long before). Returns how many were removed."""
    result = await session.execute(delete(job_links).where(job_links.c.updated_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
