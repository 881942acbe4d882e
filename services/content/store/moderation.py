"""Reports and the moderation audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc
from services.content.domain import ModerationAction, Report, ReportStatus
from services.content.store.tables import after, moderation_actions, reports


def _report(row: Row[Any]) -> Report:
    return Report(
        id=row.id,
        reporter_id=row.reporter_id,
        target_kind=row.target_kind,
        target_id=row.target_id,
        reason=row.reason,
        status=ReportStatus(row.status),
        created_at=as_utc(row.created_at),
    )


async def add_report(session: AsyncSession, report: Report) -> None:
    await session.execute(
        insert(reports).values(
            id=report.id,
            reporter_id=report.reporter_id,
            target_kind=report.target_kind,
            target_id=report.target_id,
            reason=report.reason,
            status=report.status.value,
            created_at=report.created_at,
        )
    )


async def get_report(session: AsyncSession, report_id: str) -> Report | None:
    row = (
        await session.execute(select(reports).where(reports.c.id == report_id).with_for_update())
    ).first()
    return None if row is None else _report(row)


async def open_reports(
    session: AsyncSession, *, after_: tuple[datetime, str] | None, limit: int
) -> list[Report]:
    """Open reports, oldest first; `limit + 1` at most."""
    query = select(reports).where(reports.c.status == ReportStatus.OPEN.value)
    if after_ is not None:
        query = query.where(after(reports.c.created_at, reports.c.id, *after_))
    query = query.order_by(reports.c.created_at, reports.c.id).limit(limit + 1)
    return [_report(row) for row in (await session.execute(query)).all()]


async def resolve_reports(
    session: AsyncSession,
    *,
    status: ReportStatus,
    moderator_id: str,
    now: datetime,
    report_id: str = "",
    target: tuple[str, str] | None = None,
) -> None:
    """Close one open report, or every open report of a target."""
    statement = update(reports).where(reports.c.status == ReportStatus.OPEN.value)
    if report_id:
        statement = statement.where(reports.c.id == report_id)
    if target is not None:
        statement = statement.where(
            reports.c.target_kind == target[0], reports.c.target_id == target[1]
        )
    await session.execute(
        statement.values(status=status.value, resolved_at=now, resolved_by=moderator_id)
    )


async def audit(
    session: AsyncSession,
    *,
    moderator_id: str,
    action: str,
    target: tuple[str, str],
    reason: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(moderation_actions).values(
            moderator_id=moderator_id,
            action=action,
            target_kind=target[0],
            target_id=target[1],
            reason=reason,
            created_at=now,
        )
    )


async def list_actions(
    session: AsyncSession, *, before_seq: int | None, limit: int
) -> list[ModerationAction]:
    """The audit, newest first; `limit + 1` at most."""
    query = select(moderation_actions)
    if before_seq is not None:
        query = query.where(moderation_actions.c.seq < before_seq)
    query = query.order_by(moderation_actions.c.seq.desc()).limit(limit + 1)
    return [
        ModerationAction(
            seq=row.seq,
            moderator_id=row.moderator_id,
            action=row.action,
            target_kind=row.target_kind,
            target_id=row.target_id,
            reason=row.reason,
            created_at=as_utc(row.created_at),
        )
        for row in (await session.execute(query)).all()
    ]


async def moderated(
    session: AsyncSession,
    *,
    moderator_id: str,
    action: str,
    target: tuple[str, str],
    reason: str,
    now: datetime,
) -> None:
    """A moderator acted on a post or comment: the audit row, and its open reports
    closed as `actioned`."""
    await audit(
        session, moderator_id=moderator_id, action=action, target=target, reason=reason, now=now
    )
    await resolve_reports(
        session, status=ReportStatus.ACTIONED, moderator_id=moderator_id, now=now, target=target
    )
